package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretFromEnv(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(strings.Repeat("k", 40)+"\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("0123456789\n"), 0o600)
	cases := []struct {
		name    string
		env     map[string]string
		wantLen int
		wantErr string
	}{
		{"value", map[string]string{"SECRET_KEY": strings.Repeat("a", 32)}, 32, ""},
		{"file, trailing newline dropped", map[string]string{"SECRET_KEY_FILE": good}, 40, ""},
		{"short value", map[string]string{"SECRET_KEY": "too-short"}, 0, "SECRET_KEY is 9 bytes long; at least 32"},
		{"short file", map[string]string{"SECRET_KEY_FILE": short}, 0, "is 10 bytes long; at least 32"},
		{"missing file", map[string]string{"SECRET_KEY_FILE": filepath.Join(dir, "nope")}, 0, "no such file"},
		{"both", map[string]string{"SECRET_KEY": strings.Repeat("a", 32), "SECRET_KEY_FILE": good}, 0, "set only one"},
		{"none", nil, 0, ErrNoSecret.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := SecretFromEnv(func(k string) string { return tc.env[k] }, "SECRET_KEY")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(key) != tc.wantLen {
				t.Fatalf("key of %d bytes, err %v; want %d bytes", len(key), err, tc.wantLen)
			}
		})
	}
}

func TestLoadOrCreateSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secret_key")
	k1, created, err := LoadOrCreateSecretFile(path)
	if err != nil || !created || len(k1) < MinSecretBytes {
		t.Fatalf("first call: %d bytes, created %v, err %v", len(k1), created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateSecretFile(path)
	if err != nil || created || string(k2) != string(k1) {
		t.Fatalf("second call: created %v, err %v, same key %v", created, err, string(k1) == string(k2))
	}
	k3, _, _ := LoadOrCreateSecretFile(filepath.Join(t.TempDir(), "secret_key"))
	if string(k3) == string(k1) {
		t.Fatal("two generated keys are equal")
	}
	// A short key in the file is an error, not a reason to generate another.
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, _, err := LoadOrCreateSecretFile(path); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("short key file: err = %v", err)
	}
}
