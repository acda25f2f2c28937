package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MinSecretBytes is the shortest signing key the gateway accepts.
const MinSecretBytes = 32

// ErrNoSecret means no signing key was configured anywhere.
var ErrNoSecret = errors.New("no signing key: set SECRET_KEY (at least 32 bytes, e.g. `openssl rand -hex 32`) or SECRET_KEY_FILE")

// CheckSecret refuses a key shorter than MinSecretBytes; source names where
// the key came from, for the message.
func CheckSecret(key []byte, source string) error {
	if len(key) < MinSecretBytes {
		return fmt.Errorf("%s is %d bytes long; at least %d are required (generate one with `openssl rand -hex 32`)",
			source, len(key), MinSecretBytes)
	}
	return nil
}

// FromEnvOrFile returns the value of the environment variable name or, when
// it is empty, the content of the file named by name+"_FILE" (Docker and
// Kubernetes secrets) without the trailing line break editors and `echo`
// add; source says where the value came from, for messages. It returns an
// error when both are set or the file is empty, and a nil value when neither
// is set.
func FromEnvOrFile(getenv func(string) string, name string) (val []byte, source string, err error) {
	v, file := getenv(name), getenv(name+"_FILE")
	switch {
	case v != "" && file != "":
		return nil, "", fmt.Errorf("both %s and %s_FILE are set; set only one", name, name)
	case v != "":
		return []byte(v), name, nil
	case file == "":
		return nil, "", nil
	}
	b, err := readTrimmed(file)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s_FILE: %w", name, err)
	}
	if len(b) == 0 {
		return nil, "", fmt.Errorf("%s_FILE %s is empty", name, file)
	}
	return b, "the file " + file, nil
}

func readTrimmed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	return bytes.TrimRight(b, "\r\n"), err
}

// SecretFromEnv reads the signing key from the environment variable name or
// the file named by name+"_FILE" (see FromEnvOrFile). It returns ErrNoSecret
// when neither is set, and an error when both are set or the key is too short.
func SecretFromEnv(getenv func(string) string, name string) ([]byte, error) {
	key, source, err := FromEnvOrFile(getenv, name)
	switch {
	case err != nil:
		return nil, err
	case key == nil:
		return nil, ErrNoSecret
	}
	if err := CheckSecret(key, source); err != nil {
		return nil, err
	}
	return key, nil
}

// ReadSecretFile reads a signing key from a file, without the trailing line
// break editors and `echo` add, and checks its length.
func ReadSecretFile(path string) ([]byte, error) {
	key, err := readTrimmed(path)
	if err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	if err := CheckSecret(key, "the key in "+path); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadOrCreateSecretFile reads the signing key at path, or, when the file does
// not exist, writes a new random one there (mode 0600) and returns it. It is
// meant for local development only; created reports whether a key was made.
func LoadOrCreateSecretFile(path string) (key []byte, created bool, err error) {
	key, err = ReadSecretFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("creating the signing key's directory: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, fmt.Errorf("generating a signing key: %w", err)
	}
	key = []byte(hex.EncodeToString(raw))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs.
		key, err = ReadSecretFile(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating the signing key file: %w", err)
	}
	if _, err := f.Write(append(key, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, fmt.Errorf("writing the signing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("writing the signing key file: %w", err)
	}
	return key, true, nil
}
