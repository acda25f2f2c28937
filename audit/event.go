// Package audit is the gateway's audit trail: security-relevant events
// (sign-ins, bans, account and session changes, runs, admin actions, config
// reloads) written to the database table audit_events and to the JSON log.
// Recording an event never blocks or fails the request it describes: a
// Writer takes events into a bounded buffer and a background loop writes
// them, counting what it had to drop. No event carries a secret: an Event
// has no free-form payload, only names, addresses, reasons and a few short
// details whose keys are checked (see Event.Sanitized).
package audit

import (
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind names what happened. The kinds below are the ones the gateway
// records; the set is open so that a later feature can add its own.
type Kind string

// The kinds of events the gateway records.
const (
	// SignIn is a successful sign-in (API or form).
	SignIn Kind = "sign_in"
	// SignInFailed is a refused sign-in; Outcome says why
	// ("invalid_credentials", "banned").
	SignInFailed Kind = "sign_in_failed"
	// Ban is a username or client address banned after repeated failures;
	// Subject is the banned key ("user:<name>" or "addr:<ip>").
	Ban Kind = "ban"
	// BanLifted is a ban an administrator lifted.
	BanLifted Kind = "ban_lifted"
	// RefreshReused is the re-use of a rotated refresh token: its session was
	// revoked.
	RefreshReused Kind = "refresh_reused"
	// Logout is a sign-out.
	Logout Kind = "logout"
	// UserCreated is a new account; Subject is its username.
	UserCreated Kind = "user_created"
	// PasswordChanged is a password set by an administrator or the CLI.
	PasswordChanged Kind = "password_changed"
	// UserDisabled is an account disabled (its sessions ended).
	UserDisabled Kind = "user_disabled"
	// UserEnabled is an account enabled again.
	UserEnabled Kind = "user_enabled"
	// UserDeleted is an account deleted (its sessions ended).
	UserDeleted Kind = "user_deleted"
	// SessionCreated is a new workspace session; Subject is its id.
	SessionCreated Kind = "session_created"
	// SessionDeleted is a session deleted by its owner or an administrator.
	SessionDeleted Kind = "session_deleted"
	// SessionExpired is a session the reaper removed after its idle timeout.
	SessionExpired Kind = "session_expired"
	// WorkspaceStarted is a session's workspace container started.
	WorkspaceStarted Kind = "workspace_started"
	// WorkspaceStopped is a session's workspace container stopped.
	WorkspaceStopped Kind = "workspace_stopped"
	// Run is one sandboxed run: language, exit code, duration, timed out,
	// OOM; never the code or its output.
	Run Kind = "run"
	// ImageBuild is a sandbox image build.
	ImageBuild Kind = "image_build"
	// AdminAction is any other administrative operation (e.g. an executor
	// clean-up); Outcome names it.
	AdminAction Kind = "admin_action"
	// ConfigLoaded is a configuration loaded at start-up or by a reload.
	ConfigLoaded Kind = "config_loaded"
)

// Kinds lists the kinds the gateway records, in a stable order (for filters).
var Kinds = []Kind{SignIn, SignInFailed, Ban, BanLifted, RefreshReused, Logout,
	UserCreated, PasswordChanged, UserDisabled, UserEnabled, UserDeleted,
	SessionCreated, SessionDeleted, SessionExpired, WorkspaceStarted, WorkspaceStopped,
	Run, ImageBuild, AdminAction, ConfigLoaded}

// Event is one entry of the audit trail.
type Event struct {
	// ID is the row id, assigned by the database; it orders events.
	ID int64 `json:"id,omitempty"`
	// Time is when the event happened. Zero means now, at Record.
	Time time.Time `json:"time"`
	// Kind is what happened.
	Kind Kind `json:"kind"`
	// Actor is the username that acted: the signing-in name for sign-ins,
	// the administrator for admin actions, "cli" for the users command,
	// "system" for the gateway itself (expiry, reloads).
	Actor string `json:"actor,omitempty"`
	// ActorID is the actor's user id, when known.
	ActorID string `json:"actor_id,omitempty"`
	// Subject is what the event is about: a username, a session id, a run
	// id, a ban key.
	Subject string `json:"subject,omitempty"`
	// ClientIP is the client address of the request, when there was one.
	ClientIP string `json:"client_ip,omitempty"`
	// Outcome is a short reason or result, e.g. "invalid_credentials".
	Outcome string `json:"outcome,omitempty"`
	// Details are a few more short facts, e.g. {"language":"python",
	// "exit_code":"0"}. Keys that could name a secret are dropped.
	Details map[string]string `json:"details,omitempty"`
}

// Field bounds: what the columns hold (VARCHAR(n) counts characters).
const (
	maxKind     = 64
	maxName     = 191
	maxID       = 64
	maxIP       = 64
	maxDetail   = 256
	maxDetails  = 16
	redactedVal = "[redacted]"
)

// secretKey matches detail keys that could carry a credential; their values
// never reach the trail.
var secretKey = regexp.MustCompile(`(?i)pass|secret|token|cookie|authori[sz]ation|credential|ticket|key|code|stdout|stderr|output|body`)

// Sanitized returns the event as it is stored: every field cut to its
// column, control characters replaced, detail keys that could name a secret
// (password, token, cookie, key, code, output, …) redacted, and at most 16
// details. The time is set to now when zero.
func (e Event) Sanitized() Event {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Kind = Kind(clean(string(e.Kind), maxKind))
	e.Actor = clean(e.Actor, maxName)
	e.ActorID = clean(e.ActorID, maxID)
	e.Subject = clean(e.Subject, maxName)
	e.ClientIP = clean(e.ClientIP, maxIP)
	e.Outcome = clean(e.Outcome, maxName)
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]string, min(len(keys), maxDetails))
		for _, k := range keys {
			if len(out) == maxDetails {
				break
			}
			ck := clean(k, maxKind)
			if secretKey.MatchString(ck) && !allowedKey[ck] {
				out[ck] = redactedVal
				continue
			}
			out[ck] = clean(e.Details[k], maxDetail)
		}
		e.Details = out
	} else {
		e.Details = nil
	}
	return e
}

// allowedKey are detail keys the secret pattern would catch but that hold
// no secret.
var allowedKey = map[string]bool{"exit_code": true}

// clean makes s valid UTF-8 without control characters, at most n runes.
func clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	return s
}
