package sessions

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// Handle is one session opened by Store.Open for its owner, or by
// Store.OpenUnscoped for the gateway's own maintenance. Everything a request
// does to a session's files, history, quota and activity is a method of a
// Handle, so no request can reach a session it was not allowed to open.
// The session's directory is opened on first use and closed by the release
// func Open returns. A Handle is safe for concurrent use until released.
type Handle struct {
	s    *Store
	sess Session

	mu       sync.Mutex
	dir      *os.Root // <workspace>/sessions/<id>, once opened
	files    *Files   // its files/, once opened
	released bool
}

// errReleased is the error of a Handle used after its release.
var errReleased = errors.New("sessions: the session handle was released")

// Open opens session id for userID. A session that does not exist, is not
// ready or belongs to someone else is ErrNotFound, and nothing about it is
// read or changed. Call release once done with the handle.
func (s *Store) Open(ctx context.Context, id, userID string) (h *Handle, release func(), err error) {
	sess, err := s.Get(ctx, id, userID)
	if err != nil {
		return nil, nil, err
	}
	return s.handle(sess)
}

// OpenUnscoped opens session id whoever owns it. It is for the gateway's own
// maintenance (the admin console, measuring a session for an operator),
// never for a request on a user's own session: that is Open. A session that
// does not exist or is not ready is ErrNotFound. Call release once done.
func (s *Store) OpenUnscoped(ctx context.Context, id string) (h *Handle, release func(), err error) {
	if !ValidID(id) {
		return nil, nil, ErrNotFound
	}
	var user string
	var created, active int64
	err = s.db.QueryRowContext(ctx,
		"SELECT user_id, created_at, last_active_at FROM sessions WHERE id = ? AND ready = 1", id,
	).Scan(&user, &created, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sessions: open %s: %w", id, err)
	}
	return s.handle(s.session(id, user, created, active, s.Config()))
}

func (s *Store) handle(sess Session) (*Handle, func(), error) {
	h := &Handle{s: s, sess: sess}
	return h, h.release, nil
}

// release closes what the handle opened; later calls do nothing.
func (h *Handle) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	if h.files != nil {
		h.files.root.Close()
	}
	if h.dir != nil {
		h.dir.Close()
	}
}

// Session returns the session as it was when opened.
func (h *Handle) Session() Session { return h.sess }

// ID returns the session's id.
func (h *Handle) ID() string { return h.sess.ID }

// root returns the session's directory, opening it on first use. A
// directory that is gone (the session was deleted meanwhile) is ErrNotFound.
func (h *Handle) root() (*os.Root, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rootLocked()
}

func (h *Handle) rootLocked() (*os.Root, error) {
	if h.released {
		return nil, errReleased
	}
	if h.dir != nil {
		return h.dir, nil
	}
	dir, err := h.s.root.OpenRoot(h.sess.ID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: opening %s: %w", h.sess.ID, err)
	}
	h.dir = dir
	return dir, nil
}

// Files returns the session's files/, opened on first use; the handle's
// release closes it.
func (h *Handle) Files() (*Files, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.files != nil && !h.released {
		return h.files, nil
	}
	dir, err := h.rootLocked()
	if err != nil {
		return nil, err
	}
	root, err := dir.OpenRoot(filesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: opening the files of %s: %w", h.sess.ID, err)
	}
	h.files = &Files{h: h, root: root}
	return h.files, nil
}

// Touch records an access to the session: it moves last_active_at to now
// (and metadata.json with it), at most once per Config.TouchInterval.
func (h *Handle) Touch(ctx context.Context) error { return h.s.touch(ctx, h.sess.ID) }

// KeepActive touches the session (see Touch) while a long use of it goes
// on, such as a run in its workspace, so that it cannot expire underneath
// that use. It touches until ctx ends or the returned stop is called; stop
// waits for a touch in progress. Call stop before the release.
func (h *Handle) KeepActive(ctx context.Context) (stop func()) {
	return h.s.keepActive(ctx, h.sess.ID)
}

// OpenHistory returns a reader of the JSON array in the session's history,
// as of the last completed append, and its length in bytes. It streams from
// the file: memory does not grow with the history. Close the reader.
func (h *Handle) OpenHistory() (io.ReadCloser, int64, error) {
	dir, err := h.root()
	if err != nil {
		return nil, 0, err
	}
	return h.s.openHistory(dir, h.sess.ID)
}

// ReadHistory returns the JSON array in the session's history as a whole.
// It holds the history in memory: OpenHistory streams it.
func (h *Handle) ReadHistory() (json.RawMessage, error) {
	r, _, err := h.OpenHistory()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("sessions: reading the history of %s: %w", h.sess.ID, err)
	}
	return json.RawMessage(bytes.TrimSpace(b)), nil
}

// AppendHistory appends one JSON value to the session's history and returns
// the number of entries after it. It reads only the state record and the
// final bytes of the file, never the history itself. Past max_history_size
// it fails with ErrHistoryTooLarge, past the session's quota (files and
// history together) with ErrQuotaExceeded, writing nothing. Appends to one
// session are serialized within the process (a mutex) and across processes
// on the host (flock on .claude/history.lock), so none is lost.
func (h *Handle) AppendHistory(entry []byte) (int, error) {
	dir, err := h.root()
	if err != nil {
		return 0, err
	}
	return h.s.appendHistory(dir, h.sess.ID, entry)
}

// Usage returns the bytes the session holds against its quota: its files
// (from the usage counter, measured again when stale) and its history.
func (h *Handle) Usage() (int64, error) {
	dir, err := h.root()
	if err != nil {
		return 0, err
	}
	return h.s.quotaUsage(dir, h.sess.ID)
}

// RefreshUsage measures the session's files/ now (after a run wrote to it)
// and returns the bytes of the session: files and history together.
func (h *Handle) RefreshUsage() (int64, error) {
	dir, err := h.root()
	if err != nil {
		return 0, err
	}
	return h.s.refreshUsage(dir, h.sess.ID)
}

// CheckQuota returns ErrQuotaExceeded when the session holds more than its
// quota (a run wrote past it): until files are removed, it gets no upload
// and no run.
func (h *Handle) CheckQuota() error {
	quota := h.s.Config().Quota
	if quota <= 0 {
		return nil
	}
	used, err := h.Usage()
	if err != nil {
		return err
	}
	if used > quota {
		return fmt.Errorf("%w: the session holds %d bytes of %d", ErrQuotaExceeded, used, quota)
	}
	return nil
}
