package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Names inside a session's directory, and the prefixes of the transient
// directories beside the sessions.
const (
	filesDir    = "files"
	claudeDir   = ".claude"
	historyFile = ".claude/history.json"
	historyLock = ".claude/history.lock"
	// historyStateFile records the committed length and entry count of
	// history.json (see history.go).
	historyStateFile = ".claude/history.state"
	metadataFile     = "metadata.json"
	uploadsDir       = ".uploads" // journal of uploads in flight, one marker each
	creatingPrefix   = ".creating-"
	deletingPrefix   = ".deleting-"
	tempPrefix       = ".claude-tmp-"
	orphanedDir      = ".orphaned" // workspaces found without a row, kept for an operator
)

// buildWorkspace builds the session's directory under a staging name and
// renames it into place, so <id>/ is either absent or complete.
func (s *Store) buildWorkspace(sess Session) error {
	staging := creatingPrefix + sess.ID
	if err := s.root.Mkdir(staging, 0o755); err != nil {
		return fmt.Errorf("creating the workspace: %w", err)
	}
	for _, d := range []string{filesDir, claudeDir, uploadsDir} {
		if err := s.root.Mkdir(path.Join(staging, d), 0o755); err != nil {
			s.root.RemoveAll(staging)
			return fmt.Errorf("creating the workspace: %w", err)
		}
	}
	meta, err := metadataJSON(sess)
	if err != nil {
		s.root.RemoveAll(staging)
		return err
	}
	for name, data := range map[string][]byte{historyFile: []byte("[]\n"), metadataFile: meta} {
		if err := writeSynced(s.root, path.Join(staging, name), data); err != nil {
			s.root.RemoveAll(staging)
			return fmt.Errorf("creating the workspace: %w", err)
		}
	}
	for _, d := range []string{path.Join(staging, claudeDir), staging} {
		if err := syncDir(s.root, d); err != nil {
			s.root.RemoveAll(staging)
			return fmt.Errorf("creating the workspace: %w", err)
		}
	}
	if err := s.root.Rename(staging, sess.ID); err != nil {
		s.root.RemoveAll(staging)
		return fmt.Errorf("moving the workspace into place: %w", err)
	}
	return syncDir(s.root, ".")
}

// removeWorkspace deletes a session's directory (a create being undone).
func (s *Store) removeWorkspace(id string) {
	if trash, err := s.trashWorkspace(id); err != nil {
		s.logger.Warn("removing a session workspace", zap.String("session", id), zap.Error(err))
	} else {
		s.purge(trash)
	}
}

// trashWorkspace moves <id>/ aside in one rename, to a .deleting- name that
// records when; it returns "" if there was no directory. A crash after it
// leaves a trash directory that the repair pass finishes deleting, row included.
func (s *Store) trashWorkspace(id string) (string, error) {
	trash := fmt.Sprintf("%s%s-%d-%s", deletingPrefix, id, time.Now().UnixMilli(), s.instance)
	err := s.root.Rename(id, trash)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sessions: moving the workspace of %s aside: %w", id, err)
	}
	return trash, nil
}

// restoreWorkspace moves a trashed directory back, undoing trashWorkspace.
func (s *Store) restoreWorkspace(trash, id string) {
	if trash == "" {
		return
	}
	if err := s.root.Rename(trash, id); err != nil {
		s.logger.Error("restoring a session workspace", zap.String("session", id), zap.Error(err))
	}
}

// purge deletes a trashed directory.
func (s *Store) purge(trash string) {
	if trash == "" {
		return
	}
	if err := s.root.RemoveAll(trash); err != nil {
		s.logger.Warn("deleting a session workspace", zap.String("dir", trash), zap.Error(err))
	}
}

// parseTrash reads a trash directory's name,
// ".deleting-<id>-<unix millis>-<instance>": the session id, when the delete
// started and by which process.
func parseTrash(name string) (id string, at time.Time, instance string, ok bool) {
	rest, found := strings.CutPrefix(name, deletingPrefix)
	if !found || len(rest) < len(IDPrefix)+32+2 {
		return "", time.Time{}, "", false
	}
	id, rest = rest[:len(IDPrefix)+32], rest[len(IDPrefix)+32:]
	ms, instance, _ := strings.Cut(strings.TrimPrefix(rest, "-"), "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ValidID(id) || err != nil {
		return "", time.Time{}, "", false
	}
	return id, time.UnixMilli(n), instance, true
}

// writeMetadata replaces <id>/metadata.json atomically. A session whose
// directory is gone (deleted meanwhile) is not an error.
func (s *Store) writeMetadata(sess Session) error {
	meta, err := metadataJSON(sess)
	if err != nil {
		return err
	}
	// Not synced: the row is the record; metadata.json mirrors it.
	err = writeAtomic(s.root, path.Join(sess.ID, metadataFile), meta, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sessions: writing metadata of %s: %w", sess.ID, err)
	}
	return nil
}

func metadataJSON(sess Session) ([]byte, error) {
	b, err := json.MarshalIndent(sess, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding metadata: %w", err)
	}
	return append(b, '\n'), nil
}

// writeAtomic writes data to a temporary file beside name and renames it
// over name, so readers see the old or the new content, whole. durable also
// syncs the file and the directory, so the new content survives a power loss.
func writeAtomic(root *os.Root, name string, data []byte, durable bool) error {
	tmp := path.Join(path.Dir(name), tempPrefix+randomSuffix())
	var err error
	if durable {
		err = writeSynced(root, tmp, data)
	} else {
		err = root.WriteFile(tmp, data, 0o644)
	}
	if err != nil {
		root.Remove(tmp)
		return err
	}
	if err := root.Rename(tmp, name); err != nil {
		root.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(root, path.Dir(name))
}

// writeSynced creates name (which must not exist) with data and syncs it.
func writeSynced(root *os.Root, name string, data []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the entries of a directory (creations, renames) durable.
func syncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomSuffix() string { return newID()[len(IDPrefix):][:16] }
