package imagefs

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func layout(t *testing.T) Layout {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"bin": "\x7fELF binary", "Caddyfile": "{\n}\n", "snippets.caddyfile": "(edge) {\n}\n", "ca.pem": "-----BEGIN CERTIFICATE-----\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return Layout{Binary: filepath.Join(dir, "bin"), Caddyfile: filepath.Join(dir, "Caddyfile"), Snippets: filepath.Join(dir, "snippets.caddyfile"), CABundle: filepath.Join(dir, "ca.pem")}
}

func TestWriteTar(t *testing.T) {
	var buf bytes.Buffer
	if err := layout(t).WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		hdr  *tar.Header
		body string
	}
	got := map[string]entry{}
	seen := map[string]bool{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(h.Name, "/")
		if parent := filepath.Dir(name); parent != "/" && !seen[parent] {
			t.Errorf("%s comes before its parent %s", name, parent)
		}
		seen[name] = true
		b, _ := io.ReadAll(tr)
		got[name] = entry{h, string(b)}
	}

	tests := []struct {
		path     string
		mode     int64
		uid, gid int
		dir      bool
		contains string
	}{
		{BinaryPath, 0o755, 0, 0, false, "\x7fELF"},
		{CaddyfilePath, 0o644, 0, 0, false, "{"},
		{SnippetsPath, 0o644, 0, 0, false, "(edge)"},
		{CABundlePath, 0o644, 0, 0, false, "BEGIN CERTIFICATE"},
		{"/etc/passwd", 0o644, 0, 0, false, "gateway:x:1000:1000:"},
		{"/etc/group", 0o644, 0, 0, false, "gateway:x:1000:"},
		{"/etc/nsswitch.conf", 0o644, 0, 0, false, "hosts: files dns"},
		{"/tmp", 0o1777, 0, 0, true, ""},
		{"/data", 0o750, UID, GID, true, ""},
		{"/config", 0o750, UID, GID, true, ""},
		{"/workspace", 0o750, UID, GID, true, ""},
		{"/run/claude-gateway", 0o750, UID, GID, true, ""},
		{Home, 0o750, UID, GID, true, ""},
		{"/etc", 0o755, 0, 0, true, ""},
		{"/run", 0o755, 0, 0, true, ""},
	}
	for _, tt := range tests {
		e, ok := got[tt.path]
		if !ok {
			t.Errorf("%s missing", tt.path)
			continue
		}
		if e.hdr.Mode != tt.mode || e.hdr.Uid != tt.uid || e.hdr.Gid != tt.gid || (e.hdr.Typeflag == tar.TypeDir) != tt.dir {
			t.Errorf("%s: mode %o uid %d gid %d type %c; want %o %d %d dir=%v", tt.path, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.hdr.Typeflag, tt.mode, tt.uid, tt.gid, tt.dir)
		}
		if !strings.Contains(e.body, tt.contains) {
			t.Errorf("%s: %q does not contain %q", tt.path, e.body, tt.contains)
		}
	}
	// Nothing but the listed paths is writable by the gateway user.
	for name, e := range got {
		if e.hdr.Uid == UID && !strings.HasPrefix(name, "/data") && !strings.HasPrefix(name, "/config") &&
			!strings.HasPrefix(name, "/workspace") && !strings.HasPrefix(name, "/run/claude-gateway") && !strings.HasPrefix(name, Home) {
			t.Errorf("%s belongs to the gateway user", name)
		}
	}
}

func TestWriteTarRefusesMissingFiles(t *testing.T) {
	for _, mutate := range []func(*Layout){
		func(l *Layout) { l.Binary = "" },
		func(l *Layout) { l.Caddyfile = filepath.Join(t.TempDir(), "missing") },
		func(l *Layout) { l.Snippets = "" },
		func(l *Layout) { l.CABundle = t.TempDir() }, // a directory
	} {
		l := layout(t)
		mutate(&l)
		if err := l.WriteTar(io.Discard); err == nil {
			t.Errorf("%+v: no error", l)
		}
	}
}
