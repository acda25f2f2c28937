package executor

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInstanceFromDir: a data directory keeps its generated name; another
// directory on the same host gets another one.
func TestInstanceFromDir(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	first, err := InstanceFromDir(filepath.Join(a, "claude"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := InstanceFromDir(filepath.Join(a, "claude"))
	other, _ := InstanceFromDir(filepath.Join(b, "claude"))
	host, _ := os.Hostname()
	if first != again || first == other || first == host {
		t.Errorf("instances %q, %q (same directory), %q (another), host %q", first, again, other, host)
	}
	os.WriteFile(filepath.Join(a, "claude", InstanceFile), []byte("../bad name\n"), 0o600)
	if _, err := InstanceFromDir(filepath.Join(a, "claude")); err == nil {
		t.Error("a malformed instance file was accepted")
	}
}
