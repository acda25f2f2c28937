package sessions

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Files is the files/ directory of one session, opened as an os.Root: every
// operation resolves inside it, symbolic links included, or fails. It comes
// from Handle.Files and lives as long as its handle.
type Files struct {
	h    *Handle
	root *os.Root
}

// Entry is one item of a directory listing.
type Entry struct {
	// Name is the item's name in its directory.
	Name string `json:"name"`
	// Type is "file", "dir", "symlink" or "other".
	Type string `json:"type"`
	// Size is the size in bytes (of the link itself for a symlink).
	Size int64 `json:"size"`
	// ModifiedAt is the modification time.
	ModifiedAt time.Time `json:"modified_at"`
}

// Open opens the regular file rel for reading.
func (f *Files) Open(rel string) (*os.File, fs.FileInfo, error) {
	info, err := f.root.Stat(rel)
	if err != nil {
		return nil, nil, classify(err)
	}
	if info.IsDir() {
		return nil, nil, ErrIsDirectory
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: not a regular file", ErrInvalidPath)
	}
	// O_NONBLOCK: should rel have become a FIFO since the Stat, opening it
	// must not hang the request.
	file, err := f.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, classify(err)
	}
	info, err = file.Stat()
	if err != nil || !info.Mode().IsRegular() {
		file.Close()
		return nil, nil, fmt.Errorf("%w: not a regular file", ErrInvalidPath)
	}
	return file, info, nil
}

// List returns the entries of directory rel ("." for files/ itself), sorted
// by name, without the temporary files of uploads in flight.
func (f *Files) List(rel string) ([]Entry, error) {
	d, err := f.root.Open(rel)
	if err != nil {
		return nil, classify(err)
	}
	defer d.Close()
	info, err := d.Stat()
	if err != nil {
		return nil, classify(err)
	}
	if !info.IsDir() {
		return nil, ErrNotDirectory
	}
	des, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("sessions: listing %s: %w", rel, err)
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		if isTempName(de.Name()) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Entry{Name: de.Name(), Type: entryType(fi.Mode()), Size: fi.Size(), ModifiedAt: fi.ModTime().UTC()})
	}
	sortEntries(out)
	return out, nil
}

// Mkdir creates directory rel and its missing parents.
func (f *Files) Mkdir(rel string) error {
	if rel == "." {
		return nil
	}
	if err := checkName(rel); err != nil {
		return err
	}
	return classify(f.root.MkdirAll(rel, 0o755))
}

// Put replaces (or creates) file rel with the bytes of body. size is the
// announced length, or -1. The bytes go to a temporary file in the same
// directory, which is synced and renamed over rel only once body ended
// cleanly within max_file_size and the quota: on any failure rel keeps its
// old content and no temporary file stays behind. created reports that rel
// did not exist before.
func (f *Files) Put(rel string, body io.Reader, size int64) (created bool, written int64, err error) {
	cfg := f.h.s.Config()
	if rel == "." {
		return false, 0, ErrIsDirectory
	}
	if err := checkName(rel); err != nil {
		return false, 0, err
	}
	if size > cfg.MaxFileSize {
		return false, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrFileTooLarge, size, cfg.MaxFileSize)
	}
	var old int64
	switch info, err := f.root.Stat(rel); {
	case err == nil && info.IsDir():
		return false, 0, ErrIsDirectory
	case err == nil:
		old = info.Size()
	case errors.Is(err, fs.ErrNotExist):
		created = true
	default:
		return false, 0, classify(err)
	}
	limit, overErr := cfg.MaxFileSize, ErrFileTooLarge
	if cfg.Quota > 0 {
		used, err := f.h.Usage()
		if err != nil {
			return false, 0, err
		}
		if used-old > cfg.Quota {
			return false, 0, fmt.Errorf("%w: the session holds %d bytes of %d", ErrQuotaExceeded, used, cfg.Quota)
		}
		if room := cfg.Quota - (used - old); room < limit {
			limit, overErr = max(room, 0), ErrQuotaExceeded
		}
		if size > limit {
			return false, 0, fmt.Errorf("%w: %d bytes do not fit in the %d left", ErrQuotaExceeded, size, limit)
		}
	}
	dir := path.Dir(rel)
	if err := f.root.MkdirAll(dir, 0o755); err != nil {
		return false, 0, classify(err)
	}
	tmp := path.Join(dir, tempPrefix+randomSuffix())
	sessDir, err := f.h.root()
	if err != nil {
		return false, 0, err
	}
	marker, err := journalUpload(sessDir, f.h.sess.ID, f.h.s.instance, tmp)
	if err != nil {
		return false, 0, err
	}
	defer sessDir.Remove(marker)
	out, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, 0, classify(err)
	}
	fail := func(err error) (bool, int64, error) {
		out.Close()
		f.root.Remove(tmp)
		return false, 0, err
	}
	written, err = copyFull(&writeback{f: out}, io.LimitReader(body, limit+1))
	if err != nil {
		return fail(fmt.Errorf("sessions: receiving %s: %w", rel, err))
	}
	if written > limit {
		return fail(fmt.Errorf("%w: more than %d bytes", overErr, limit))
	}
	if err := out.Sync(); err != nil {
		return fail(fmt.Errorf("sessions: writing %s: %w", rel, err))
	}
	if err := out.Close(); err != nil {
		f.root.Remove(tmp)
		return false, 0, fmt.Errorf("sessions: writing %s: %w", rel, err)
	}
	if err := f.root.Rename(tmp, rel); err != nil {
		f.root.Remove(tmp)
		return false, 0, classify(err)
	}
	f.h.s.adjustUsage(f.h.sess.ID, written-old)
	if err := syncDir(f.root, dir); err != nil {
		return false, 0, fmt.Errorf("sessions: writing %s: %w", rel, err)
	}
	return created, written, nil
}

// Delete removes file rel, or directory rel with everything in it when dir
// is set. files/ itself cannot be deleted.
func (f *Files) Delete(rel string, dir bool) error {
	if rel == "." {
		return fmt.Errorf("%w: the files directory itself cannot be deleted", ErrInvalidPath)
	}
	info, err := f.root.Lstat(rel)
	if err != nil {
		return classify(err)
	}
	if info.IsDir() != dir {
		if dir {
			return ErrNotDirectory
		}
		return ErrIsDirectory
	}
	if dir {
		defer f.h.s.forgetUsage(f.h.sess.ID)
		return classify(f.root.RemoveAll(rel))
	}
	if err := f.root.Remove(rel); err != nil {
		return classify(err)
	}
	if info.Mode().IsRegular() {
		f.h.s.adjustUsage(f.h.sess.ID, -info.Size())
	}
	return nil
}

// Usage is the total size of the regular files under files/, measured now.
func (f *Files) Usage() (int64, error) {
	dir, err := f.h.root()
	if err != nil {
		return 0, err
	}
	c := f.h.s.counter(f.h.sess.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	return f.h.s.measure(dir, f.h.sess.ID, c)
}

// journalUpload records an upload's temporary file before it exists, in dir
// (session id's directory, the upload by this instance), so the repair pass
// can remove it should the process die mid-upload. It returns the marker's
// name in dir.
func journalUpload(dir *os.Root, id, instance, tmp string) (string, error) {
	marker := path.Join(uploadsDir, instance+"-"+randomSuffix())
	if err := dir.MkdirAll(uploadsDir, 0o755); err != nil {
		return "", fmt.Errorf("sessions: upload journal of %s: %w", id, err)
	}
	// Not synced: the marker matters after a process crash, which keeps the
	// page cache; after a power loss an unlisted temporary file may remain.
	if err := dir.WriteFile(marker, []byte(tmp), 0o644); err != nil {
		return "", fmt.Errorf("sessions: upload journal of %s: %w", id, err)
	}
	return marker, nil
}

// classify maps file system errors to the package's errors: escapes from the
// root and other path errors to ErrInvalidPath, missing files to ErrFileNotFound.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrFileNotFound, err)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %w", ErrNotDirectory, err)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: %w", ErrIsDirectory, err)
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("%w: %w", ErrInvalidPath, err)
	case escapes(err):
		return fmt.Errorf("%w: %w", ErrInvalidPath, err)
	}
	return err
}

// escapes reports whether err is (or wraps) os.Root's error for ".." and
// symbolic links that leave the root; the standard library does not export it.
func escapes(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// checkName refuses names of the gateway's own temporary files.
func checkName(rel string) error {
	for _, seg := range strings.Split(rel, "/") {
		if isTempName(seg) {
			return fmt.Errorf("%w: names starting with %q are reserved", ErrInvalidPath, tempPrefix)
		}
	}
	return nil
}

func isTempName(name string) bool { return strings.HasPrefix(name, tempPrefix) }

func entryType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}

// copyFull copies src to dst in large writes: it fills its buffer (network
// reads return one TLS record or frame at a time) before each write. Only
// io.EOF ends the copy cleanly; any other error, io.ErrUnexpectedEOF of a
// truncated body included, is returned.
func copyFull(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, rerr := 0, error(nil)
		for n < len(buf) && rerr == nil {
			var k int
			k, rerr = src.Read(buf[n:])
			n += k
		}
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// writeback writes to f and starts the disk write-back of every few MiB
// while the rest of the body is still arriving, so receiving and writing to
// disk overlap.
type writeback struct {
	f               *os.File
	written, synced int64
}

const writebackChunk = 2 << 20

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.synced >= writebackChunk {
		startWriteback(w.f, w.synced, w.written-w.synced)
		w.synced = w.written
	}
	return n, err
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
}
