// Package sessions is the session domain of the gateway: the Session type,
// its rows in the shared database, its workspace on disk
// (<workspace>/sessions/<id>/{files/, .claude/history.json, metadata.json}),
// file access confined to files/, the shared history, and idle expiry.
//
// Create and Delete order their steps so that a crash leaves only states the
// repair pass (Store.Repair, run at start-up and with every reaper tick)
// recognises and finishes: a create commits a not-ready row, builds the
// directory under a staging name, renames it into place and marks the row
// ready; a delete renames the directory aside, deletes the row, then deletes
// the directory.
package sessions

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"time"
)

// IDPrefix starts every session id; the id is also the name of the
// session's directory under <workspace>/sessions/.
const IDPrefix = "session-"

var idPattern = regexp.MustCompile(`^session-[0-9a-f]{32}$`)

// Errors the store returns; callers match them with errors.Is.
var (
	// ErrNotFound means the session does not exist or belongs to someone else.
	ErrNotFound = errors.New("session not found")
	// ErrLimitReached means a create would exceed max_sessions or
	// max_sessions_per_user.
	ErrLimitReached = errors.New("session limit reached")
	// ErrInvalidPath means a file path is malformed or leaves the session's files.
	ErrInvalidPath = errors.New("invalid path")
	// ErrFileNotFound means the file or directory does not exist.
	ErrFileNotFound = errors.New("file not found")
	// ErrFileTooLarge means an upload is over max_file_size.
	ErrFileTooLarge = errors.New("file too large")
	// ErrQuotaExceeded means an upload would take the session over its quota.
	ErrQuotaExceeded = errors.New("session quota exceeded")
	// ErrHistoryTooLarge means a history append would take the history
	// over max_history_size.
	ErrHistoryTooLarge = errors.New("history too large")
	// ErrIsDirectory means a file operation named a directory.
	ErrIsDirectory = errors.New("is a directory")
	// ErrNotDirectory means a directory operation named something else.
	ErrNotDirectory = errors.New("not a directory")
	// ErrInvalidHistory means a history entry is not a JSON value.
	ErrInvalidHistory = errors.New("invalid history entry")
)

// Session is one user's workspace.
type Session struct {
	// ID is "session-" followed by 32 hex digits.
	ID string `json:"id"`
	// UserID is the owner's user id.
	UserID string `json:"user_id"`
	// CreatedAt is when the session was created.
	CreatedAt time.Time `json:"created_at"`
	// LastActiveAt is the last recorded access (written at most every
	// Config.TouchInterval).
	LastActiveAt time.Time `json:"last_active_at"`
	// ExpiresAt is when the session expires if nothing touches it again.
	ExpiresAt time.Time `json:"expires_at"`
}

// ValidID reports whether id has the form of a session id. Every id that
// reaches the file system passes through it first.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("sessions: crypto/rand failed: " + err.Error())
	}
	return IDPrefix + hex.EncodeToString(b)
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
