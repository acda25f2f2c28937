package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// ReadHistory returns the JSON array in session id's .claude/history.json,
// as a whole: appends replace the file in one rename, so a reader never
// sees half of one.
func (s *Store) ReadHistory(id string) (json.RawMessage, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	b, err := s.root.ReadFile(path.Join(id, historyFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := s.root.Stat(id); serr == nil {
			return json.RawMessage("[]"), nil
		}
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: reading the history of %s: %w", id, err)
	}
	return json.RawMessage(bytes.TrimSpace(b)), nil
}

// AppendHistory appends one JSON value to session id's history and returns
// the number of entries after it. Appends to one session are serialized
// within the process (a mutex) and across processes on the host (flock on
// .claude/history.lock), so none is lost.
func (s *Store) AppendHistory(id string, entry []byte) (int, error) {
	if !ValidID(id) {
		return 0, ErrNotFound
	}
	entry = bytes.TrimSpace(entry)
	if len(entry) == 0 || !json.Valid(entry) {
		return 0, ErrInvalidHistory
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, entry); err != nil {
		return 0, ErrInvalidHistory
	}
	unlock := s.locks.lock(id)
	defer unlock()
	lock, err := s.root.OpenFile(path.Join(id, historyLock), os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("sessions: locking the history of %s: %w", id, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("sessions: locking the history of %s: %w", id, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	var entries []json.RawMessage
	b, err := s.root.ReadFile(path.Join(id, historyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("sessions: reading the history of %s: %w", id, err)
	default:
		if err := json.Unmarshal(b, &entries); err != nil {
			return 0, fmt.Errorf("sessions: the history of %s is not a JSON array: %w", id, err)
		}
	}
	entries = append(entries, json.RawMessage(compact.Bytes()))
	out, err := json.Marshal(entries)
	if err != nil {
		return 0, fmt.Errorf("sessions: encoding the history of %s: %w", id, err)
	}
	if err := writeAtomic(s.root, path.Join(id, historyFile), append(out, '\n'), true); err != nil {
		return 0, fmt.Errorf("sessions: writing the history of %s: %w", id, err)
	}
	return len(entries), nil
}
