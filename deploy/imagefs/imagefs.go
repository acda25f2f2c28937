// Package imagefs writes the root filesystem of the gateway's container image
// as a tar archive: the static binary, its Caddyfile and the snippets that
// imports, the CA bundle, a passwd
// entry for the unprivileged user and the directories that user writes to.
//
// The Dockerfile's builder stage and the image test both use it, so the image
// that ships and the image that is tested hold the same files with the same
// owners and modes.
package imagefs

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"
)

// Default locations inside the image.
const (
	// BinaryPath is where the gateway binary lives.
	BinaryPath = "/usr/bin/claude-gateway"
	// CaddyfilePath is the config the image runs by default.
	CaddyfilePath = "/etc/caddy/Caddyfile"
	// SnippetsPath is the file of snippets the Caddyfile imports, beside it.
	SnippetsPath = "/etc/caddy/snippets.caddyfile"
	// CABundlePath is the system trust store Go reads on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// UserName is the unprivileged account the gateway runs as.
	UserName = "gateway"
	// UID and GID of UserName.
	UID, GID = 1000, 1000
	// Home is UserName's home directory.
	Home = "/home/gateway"
)

// WritableDirs are the directories owned by the gateway user: Caddy's data
// (certificates, the SQLite default) and config autosave, the session
// workspace, the admin socket's directory and the home directory.
var WritableDirs = []string{"/data", "/config", "/workspace", "/run/claude-gateway", Home}

// Layout names the host files that go into the image.
type Layout struct {
	// Binary is the path of the statically linked gateway binary.
	Binary string
	// Caddyfile is the path of the config to install at CaddyfilePath.
	Caddyfile string
	// Snippets is the path of the snippets file to install at SnippetsPath.
	Snippets string
	// CABundle is the path of a PEM bundle of trusted roots (ACME, upstreams).
	CABundle string
	// ModTime stamps every entry; zero means the Unix epoch, for reproducible archives.
	ModTime time.Time
}

type entry struct {
	name     string
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
	src      string
}

// WriteTar writes the root filesystem to w as an uncompressed tar archive with
// numeric owners, parents before children.
func (l Layout) WriteTar(w io.Writer) error {
	if l.ModTime.IsZero() {
		l.ModTime = time.Unix(0, 0)
	}
	for _, p := range []struct{ name, path string }{{"binary", l.Binary}, {"caddyfile", l.Caddyfile}, {"snippets", l.Snippets}, {"ca bundle", l.CABundle}} {
		if p.path == "" {
			return fmt.Errorf("imagefs: no %s given", p.name)
		}
		if fi, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("imagefs: %s: %w", p.name, err)
		} else if !fi.Mode().IsRegular() {
			return fmt.Errorf("imagefs: %s %s is not a regular file", p.name, p.path)
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:claude-gateway:%s:/sbin/nologin\n", UserName, UID, GID, Home)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
	entries := []entry{
		{name: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "/etc/group", mode: 0o644, data: []byte(group)},
		// Go's resolver reads this: the hosts file first, then DNS (compose service names).
		{name: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: CABundlePath, mode: 0o644, src: l.CABundle},
		{name: CaddyfilePath, mode: 0o644, src: l.Caddyfile},
		{name: SnippetsPath, mode: 0o644, src: l.Snippets},
		{name: BinaryPath, mode: 0o755, src: l.Binary},
		{name: "/tmp", mode: 0o1777, dir: true},
	}
	for _, d := range WritableDirs {
		entries = append(entries, entry{name: d, mode: 0o750, uid: UID, gid: GID, dir: true})
	}
	entries = withParents(entries)

	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := l.writeEntry(tw, e); err != nil {
			return fmt.Errorf("imagefs: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("imagefs: %w", err)
	}
	return nil
}

func (l Layout) writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Name:    e.name[1:],
		Mode:    e.mode,
		Uid:     e.uid,
		Gid:     e.gid,
		ModTime: l.ModTime,
		Format:  tar.FormatPAX,
	}
	if e.dir {
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	if e.src == "" {
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("%s changed size while being archived", e.src)
	}
	return err
}

// withParents adds root-owned 0755 directories for every missing parent and
// orders the entries so each parent precedes its children.
func withParents(entries []entry) []entry {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.name] = true
	}
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "/" && !have[dir]; dir = path.Dir(dir) {
			have[dir] = true
			entries = append(entries, entry{name: dir, mode: 0o755, dir: true})
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries
}
