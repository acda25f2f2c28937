package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The history is .claude/history.json, a JSON array operators can read
// as it is, that always ends in "]\n". An append never reads it: it
// writes ",<entry>]\n" over the final "]\n" (bytes before it are never
// touched again), syncs, and then records the array's new length and
// entry count in .claude/history.state. That record is the commit: bytes
// past the recorded length are an append that did not finish, which the
// next append cuts off (restoring the "]\n"), and a reader streams only
// the recorded length, so it never sees half an entry.

// historyTail ends every history file; emptyHistory is a new one.
const (
	historyTail  = "]\n"
	emptyHistory = "[]\n"
)

// historyState is the committed length and entry count of a history file.
type historyState struct {
	size  int64
	count int
}

// historyStateLen is the fixed length of the state record, so a rewrite
// is one small write at offset 0.
const historyStateLen = 42

func (st historyState) encode() []byte {
	return fmt.Appendf(nil, "%020d %020d\n", st.size, st.count)
}

func parseHistoryState(b []byte) (historyState, bool) {
	if len(b) != historyStateLen || b[historyStateLen-1] != '\n' {
		return historyState{}, false
	}
	sizeS, countS, ok := strings.Cut(string(b[:historyStateLen-1]), " ")
	size, err1 := strconv.ParseInt(sizeS, 10, 64)
	count, err2 := strconv.Atoi(countS)
	if !ok || err1 != nil || err2 != nil || size < int64(len(emptyHistory)) || count < 0 {
		return historyState{}, false
	}
	return historyState{size: size, count: count}, true
}

// historySize returns the committed length in bytes of the history file in
// dir (a session's directory), as counted in its quota.
func historySize(dir *os.Root, id string) (int64, error) {
	b, err := dir.ReadFile(historyStateFile)
	if err == nil {
		if st, ok := parseHistoryState(b); ok {
			return st.size, nil
		}
	}
	info, err := dir.Stat(historyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sessions: measuring the history of %s: %w", id, err)
	}
	return info.Size(), nil
}

// openHistory returns a reader of the history in dir, session id's
// directory (see Handle.OpenHistory).
func (s *Store) openHistory(dir *os.Root, id string) (io.ReadCloser, int64, error) {
	var (
		f  *os.File
		st historyState
	)
	err := withHistoryLock(dir, id, syscall.LOCK_SH, func() error {
		var err error
		f, err = dir.Open(historyFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sessions: reading the history of %s: %w", id, err)
		}
		b, err := dir.ReadFile(historyStateFile)
		var ok bool
		if err == nil {
			st, ok = parseHistoryState(b)
		}
		if !ok {
			// Written before the state record existed, or by hand: an
			// append recovers it; until then the file is taken whole.
			info, err := f.Stat()
			if err != nil {
				f.Close()
				return fmt.Errorf("sessions: reading the history of %s: %w", id, err)
			}
			st = historyState{size: info.Size(), count: -1}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if f == nil {
		return io.NopCloser(strings.NewReader("[]")), 2, nil
	}
	if st.count < 0 {
		// Not ours: serve it as it is, without the final newline.
		body := io.Reader(io.LimitReader(f, st.size))
		return readCloser{body, f}, st.size, nil
	}
	// Everything before the final "]\n" is never rewritten by a later
	// append, so this snapshot stays whole without holding the lock.
	body := io.MultiReader(io.NewSectionReader(f, 0, st.size-int64(len(historyTail))), strings.NewReader("]"))
	return readCloser{body, f}, st.size - 1, nil
}

// appendHistory appends entry to the history in dir, session id's
// directory (see Handle.AppendHistory).
func (s *Store) appendHistory(dir *os.Root, id string, entry []byte) (int, error) {
	entry = bytes.TrimSpace(entry)
	if len(entry) == 0 || !json.Valid(entry) {
		return 0, ErrInvalidHistory
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, entry); err != nil {
		return 0, ErrInvalidHistory
	}
	// Escaped as encoding/json escapes for HTML, so the array can be
	// served as it is stored.
	json.HTMLEscape(&escaped, compact.Bytes())
	cfg := s.Config()
	if int64(escaped.Len())+int64(len(emptyHistory)) > cfg.MaxHistorySize {
		return 0, fmt.Errorf("%w: an entry of %d bytes, the limit is %d", ErrHistoryTooLarge, escaped.Len(), cfg.MaxHistorySize)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	var count int
	err := withHistoryLock(dir, id, syscall.LOCK_EX, func() error {
		f, err := dir.OpenFile(historyFile, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("sessions: opening the history of %s: %w", id, err)
		}
		defer f.Close()
		stf, err := dir.OpenFile(historyStateFile, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("sessions: opening the history state of %s: %w", id, err)
		}
		defer stf.Close()
		st, err := s.recoverHistory(id, f, stf)
		if err != nil {
			return err
		}
		add := []byte{','}
		if st.count == 0 {
			add = add[:0]
		}
		add = append(append(add, escaped.Bytes()...), historyTail...)
		next := historyState{size: st.size - int64(len(historyTail)) + int64(len(add)), count: st.count + 1}
		if next.size > cfg.MaxHistorySize {
			return fmt.Errorf("%w: %d bytes, the limit is %d", ErrHistoryTooLarge, next.size, cfg.MaxHistorySize)
		}
		if cfg.Quota > 0 {
			files, err := s.filesUsage(dir, id)
			if err != nil {
				return err
			}
			if used := files + next.size - int64(len(emptyHistory)); used > cfg.Quota {
				return fmt.Errorf("%w: the history would take the session to %d bytes of %d", ErrQuotaExceeded, used, cfg.Quota)
			}
		}
		if _, err := f.WriteAt(add, st.size-int64(len(historyTail))); err != nil {
			return fmt.Errorf("sessions: writing the history of %s: %w", id, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sessions: writing the history of %s: %w", id, err)
		}
		if err := writeHistoryState(stf, next); err != nil {
			return fmt.Errorf("sessions: writing the history of %s: %w", id, err)
		}
		count = next.count
		return nil
	})
	return count, err
}

// recoverHistory returns the committed state of an open history file and
// makes the file end there in "]\n": what an append left unfinished is cut
// off. A file without a valid state record (written before the record
// existed) is read once, as a stream, to count its entries.
func (s *Store) recoverHistory(id string, f, stf *os.File) (historyState, error) {
	info, err := f.Stat()
	if err != nil {
		return historyState{}, fmt.Errorf("sessions: reading the history of %s: %w", id, err)
	}
	buf := make([]byte, historyStateLen+1)
	n, _ := stf.ReadAt(buf, 0)
	st, ok := parseHistoryState(buf[:n])
	if ok && st.size <= info.Size() {
		tail := make([]byte, len(historyTail))
		if _, err := f.ReadAt(tail, st.size-int64(len(historyTail))); err != nil {
			return historyState{}, fmt.Errorf("sessions: reading the history of %s: %w", id, err)
		}
		if st.size == info.Size() && string(tail) == historyTail {
			return st, nil
		}
		if _, err := f.WriteAt([]byte(historyTail), st.size-int64(len(historyTail))); err != nil {
			return historyState{}, fmt.Errorf("sessions: repairing the history of %s: %w", id, err)
		}
		if err := f.Truncate(st.size); err != nil {
			return historyState{}, fmt.Errorf("sessions: repairing the history of %s: %w", id, err)
		}
		return st, f.Sync()
	}
	st, err = countHistory(f, info.Size())
	if err != nil {
		return historyState{}, fmt.Errorf("sessions: the history of %s is not a JSON array: %w", id, err)
	}
	if err := f.Truncate(st.size - 1); err != nil {
		return historyState{}, fmt.Errorf("sessions: repairing the history of %s: %w", id, err)
	}
	if _, err := f.WriteAt([]byte("\n"), st.size-1); err != nil {
		return historyState{}, fmt.Errorf("sessions: repairing the history of %s: %w", id, err)
	}
	if err := f.Sync(); err != nil {
		return historyState{}, err
	}
	return st, writeHistoryState(stf, st)
}

// countHistory reads a history file of size bytes without a state record as
// a stream and returns the length of its array (from the start to the "]"
// plus a newline) and its number of entries. An empty file is an empty array.
func countHistory(f *os.File, size int64) (historyState, error) {
	if size == 0 {
		if _, err := f.WriteAt([]byte("[]"), 0); err != nil {
			return historyState{}, err
		}
		return historyState{size: 3}, nil
	}
	dec := json.NewDecoder(io.NewSectionReader(f, 0, size))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return historyState{}, errors.New("it does not start with '['")
	}
	count := 0
	for dec.More() {
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return historyState{}, err
		}
		count++
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return historyState{}, errors.New("it does not end with ']'")
	}
	end := dec.InputOffset()
	rest, err := io.ReadAll(io.MultiReader(dec.Buffered(), io.NewSectionReader(f, end, 1<<20)))
	if err != nil || len(bytes.TrimSpace(rest)) > 0 {
		return historyState{}, errors.New("something follows the array")
	}
	return historyState{size: end + 1, count: count}, nil
}

// writeHistoryState records st as the committed state and syncs it.
func writeHistoryState(stf *os.File, st historyState) error {
	if _, err := stf.WriteAt(st.encode(), 0); err != nil {
		return err
	}
	if err := stf.Truncate(historyStateLen); err != nil {
		return err
	}
	return stf.Sync()
}

// withHistoryLock runs fn holding the flock (how: LOCK_SH or LOCK_EX) of
// .claude/history.lock in dir, session id's directory.
func withHistoryLock(dir *os.Root, id string, how int, fn func() error) error {
	lock, err := dir.OpenFile(historyLock, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sessions: locking the history of %s: %w", id, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), how); err != nil {
		return fmt.Errorf("sessions: locking the history of %s: %w", id, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	return fn()
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
