package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envKey, fileKey, prevKey, oldKey := strings.Repeat("e", 32), strings.Repeat("f", 40), strings.Repeat("p", 32), strings.Repeat("o", 33)
	keyFile, oldFile, shortFile := write("key", fileKey), write("old", oldKey), write("short", "short")
	cases := []struct {
		name      string
		env       map[string]string
		files     KeyFiles
		signing   string
		verify    []string
		generated bool
		wantErr   string
	}{
		{name: "SECRET_KEY first", env: map[string]string{"SECRET_KEY": envKey}, files: KeyFiles{Secret: keyFile}, signing: envKey},
		{name: "key file", files: KeyFiles{Secret: keyFile, Generate: filepath.Join(dir, "unused")}, signing: fileKey},
		{name: "generated", files: KeyFiles{Generate: filepath.Join(dir, "gen", "key")}, generated: true},
		{name: "no key anywhere", wantErr: ErrNoSecret.Error()},
		{name: "short SECRET_KEY", env: map[string]string{"SECRET_KEY": "short"}, files: KeyFiles{Secret: keyFile}, wantErr: "at least 32"},
		{name: "short key file", files: KeyFiles{Secret: shortFile}, wantErr: "at least 32"},
		{name: "missing key file", files: KeyFiles{Secret: filepath.Join(dir, "nope")}, wantErr: "no such file"},
		{name: "previous and verify files", env: map[string]string{"SECRET_KEY": envKey, "SECRET_KEY_PREVIOUS": prevKey},
			files: KeyFiles{Verify: []string{oldFile}}, signing: envKey, verify: []string{prevKey, oldKey}},
		{name: "short previous", env: map[string]string{"SECRET_KEY": envKey, "SECRET_KEY_PREVIOUS": "short"}, wantErr: "SECRET_KEY_PREVIOUS is 5 bytes"},
		{name: "short verify file", env: map[string]string{"SECRET_KEY": envKey}, files: KeyFiles{Verify: []string{shortFile}}, wantErr: "at least 32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadKeys(func(name string) string { return tc.env[name] }, tc.files)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Generated != tc.generated {
				t.Fatalf("generated = %v, want %v", k.Generated, tc.generated)
			}
			if tc.generated {
				again, err := LoadKeys(func(string) string { return "" }, tc.files)
				if err != nil || again.Generated || string(again.Signing) != string(k.Signing) || len(k.Signing) < MinSecretBytes {
					t.Fatalf("second load of the generated key: %q %v %v, first %q", again.Signing, again.Generated, err, k.Signing)
				}
				return
			}
			if string(k.Signing) != tc.signing {
				t.Fatalf("signing key %q, want %q", k.Signing, tc.signing)
			}
			if len(k.Verify) != len(tc.verify) {
				t.Fatalf("%d verification keys, want %d", len(k.Verify), len(tc.verify))
			}
			for i, v := range tc.verify {
				if string(k.Verify[i]) != v {
					t.Fatalf("verification key %d: %q, want %q", i, k.Verify[i], v)
				}
			}
		})
	}
}

func TestAdminPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-a-file-123\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	cases := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"none: generated", nil, "", ""},
		{"value", map[string]string{"CLAUDE_ADMIN_PASSWORD": "from-the-env-1"}, "from-the-env-1", ""},
		{"file", map[string]string{"CLAUDE_ADMIN_PASSWORD_FILE": file}, "from-a-file-123", ""},
		{"both", map[string]string{"CLAUDE_ADMIN_PASSWORD": "x-long-enough", "CLAUDE_ADMIN_PASSWORD_FILE": file}, "", "set only one"},
		{"short", map[string]string{"CLAUDE_ADMIN_PASSWORD": "short"}, "", "8 to 72 bytes"},
		{"empty file", map[string]string{"CLAUDE_ADMIN_PASSWORD_FILE": empty}, "", "is empty"},
		{"missing file", map[string]string{"CLAUDE_ADMIN_PASSWORD_FILE": filepath.Join(dir, "nope")}, "", "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AdminPassword(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
