package executor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// InstanceFile is the name of the file, in a gateway's data directory, that
// keeps its generated instance name across restarts.
const InstanceFile = "executor-instance"

var instancePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// InstanceFromDir returns the instance name kept in dir/InstanceFile,
// generating and keeping one (the host name and 12 random hex digits) when
// there is none. Two gateways on one host with their own data directories
// thus get their own names, so neither takes the other's runs for orphans,
// while a restarted gateway keeps its name and removes what it left.
func InstanceFromDir(dir string) (string, error) {
	name := filepath.Join(dir, InstanceFile)
	if b, err := os.ReadFile(name); err == nil {
		if inst := strings.TrimSpace(string(b)); instancePattern.MatchString(inst) {
			return inst, nil
		}
		return "", fmt.Errorf("executor: %s does not hold an instance name", name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("executor: reading the instance name: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("executor: keeping the instance name: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || !instancePattern.MatchString(host) {
		host = "gateway"
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	inst := host + "-" + hex.EncodeToString(suffix)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return InstanceFromDir(dir) // another process of this directory was first
	}
	if err != nil {
		return "", fmt.Errorf("executor: keeping the instance name: %w", err)
	}
	_, werr := f.WriteString(inst + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return "", fmt.Errorf("executor: keeping the instance name: %w", werr)
	}
	return inst, nil
}
