package apierror

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Code is one meaning the gateway can answer with: its status, its stable
// snake_case name and the one message a client sees. A message may hold fmt
// verbs (a limit in bytes), filled by the arguments of Err and Wrap.
type Code struct {
	// Status is the HTTP status of every answer with this code.
	Status int
	// Name is the stable machine code, e.g. "session_not_found".
	Name string
	// Message is the human sentence, a fmt format when it names a limit.
	Message string
}

// Err returns an Error of c, its message formatted with args.
func (c *Code) Err(args ...any) *Error {
	return &Error{code: c, message: c.format(args)}
}

// Wrap returns an Error of c that keeps err as its (unsent) cause.
func (c *Code) Wrap(err error, args ...any) *Error {
	return &Error{code: c, message: c.format(args), Err: err}
}

func (c *Code) format(args []any) string {
	if len(args) == 0 {
		return c.Message
	}
	return fmt.Sprintf(c.Message, args...)
}

// registry holds every Code, by name.
var registry = map[string]*Code{}

func define(status int, name, message string) *Code {
	if _, dup := registry[name]; dup {
		panic("apierror: code " + name + " defined twice")
	}
	c := &Code{Status: status, Name: name, Message: message}
	registry[name] = c
	return c
}

// Codes returns every code the gateway can answer with, sorted by status
// and name.
func Codes() []*Code {
	all := make([]*Code, 0, len(registry))
	for _, c := range registry {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *Code) int {
		if a.Status != b.Status {
			return a.Status - b.Status
		}
		return strings.Compare(a.Name, b.Name)
	})
	return all
}

// Lookup returns the code named name.
func Lookup(name string) (*Code, bool) {
	c, ok := registry[name]
	return c, ok
}

// byStatus is the code of an error that carries none of its own (Caddy's
// own errors: an unreachable upstream, a panic, a refused body), per status.
var byStatus = map[int]*Code{}

// ForStatus returns the code of an error that carries none of its own. A
// status with no code of its own gets a code from its status text
// ("request_entity_too_large") and that text as message.
func ForStatus(status int) *Code {
	if c, ok := byStatus[status]; ok {
		return c
	}
	text := http.StatusText(status)
	if text == "" {
		return &Code{Status: status, Name: "error", Message: "The request failed."}
	}
	name := strings.ReplaceAll(strings.ToLower(strings.NewReplacer("-", " ", "'", "").Replace(text)), " ", "_")
	return &Code{Status: status, Name: name, Message: text + "."}
}

func fallback(c *Code) *Code {
	byStatus[c.Status] = c
	return c
}

// Every code of the gateway. A new one is added here, to the table of
// TestCodes, and to api/openapi.yaml under the routes that answer it.
var (
	// Errors of any route, and those Caddy produces itself.
	BadRequest          = fallback(define(http.StatusBadRequest, "bad_request", "The request could not be read."))
	InvalidPath         = define(http.StatusBadRequest, "invalid_path", "The path is not allowed: it must not hold '.' or '..' segments, '//', ';', '\\', encoded '/' or '.', control characters, double-encoded escapes or links that lead outside the session's files.")
	InvalidRequest      = define(http.StatusBadRequest, "invalid_request", "The request body is not what this endpoint accepts; api/openapi.yaml describes it.")
	InvalidToken        = define(http.StatusUnauthorized, "invalid_token", "A valid access token is required; log in at /api/auth/login.")
	Forbidden           = define(http.StatusForbidden, "forbidden", "Only administrators may do this.")
	NotFound            = fallback(define(http.StatusNotFound, "not_found", "There is nothing at this address."))
	MethodNotAllowed    = fallback(define(http.StatusMethodNotAllowed, "method_not_allowed", "This address does not answer this method; the Allow header lists those it does."))
	RequestTooLarge     = define(http.StatusRequestEntityTooLarge, "request_too_large", "The request body is larger than %d bytes.")
	Internal            = fallback(define(http.StatusInternalServerError, "internal_error", "The gateway failed to handle the request; the error has been logged."))
	UpstreamUnavailable = fallback(define(http.StatusBadGateway, "upstream_unavailable", "The service behind the gateway is not reachable right now. Try again in a moment."))
	ServiceUnavailable  = fallback(define(http.StatusServiceUnavailable, "service_unavailable", "The service is temporarily unavailable. Try again in a moment."))
	UpstreamTimeout     = fallback(define(http.StatusGatewayTimeout, "upstream_timeout", "The service behind the gateway did not answer in time. Try again in a moment."))

	// Browser origins (claude_origin).
	OriginNotAllowed          = define(http.StatusForbidden, "origin_not_allowed", "This origin may not call the gateway from a browser.")
	WebSocketOriginNotAllowed = define(http.StatusForbidden, "websocket_origin_not_allowed", "WebSocket connections are accepted only from the app's own origins.")
	CrossSiteRequest          = define(http.StatusForbidden, "cross_site_request", "This request did not come from an allowed origin; reload the app and try again.")

	// Rate limits (claude_rate_limit).
	RateLimited          = define(http.StatusTooManyRequests, "rate_limited", "Too many requests. Try again after the seconds in the Retry-After header.")
	RateLimitUnavailable = define(http.StatusServiceUnavailable, "rate_limit_unavailable", "The service is temporarily unavailable. Try again in a moment.")

	// Sign-in (claude_auth_api).
	UnsupportedMediaType = define(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the body as application/json.")
	InvalidCredentials   = define(http.StatusUnauthorized, "invalid_credentials", "Wrong username or password.")
	InvalidRefreshToken  = define(http.StatusUnauthorized, "invalid_refresh_token", "The refresh token is missing, not valid or already used; log in again.")
	TooManyFailedLogins  = define(http.StatusTooManyRequests, "too_many_failed_logins", "Too many failed logins for this user or from this address; retry later.")

	// The IDE host's sign-on (claude_ide_signon, claude_ide_gate).
	IDESignOnRefused = define(http.StatusForbidden, "ide_signon_refused", "This sign-in link was not started in this browser, so it was refused: a link like it could sign you in to someone else's account. Open the IDE again from the app. If this keeps happening, allow cookies for the IDE's site.")
	IDETicketInvalid = define(http.StatusForbidden, "ide_ticket_invalid", "This sign-in link is no longer valid: it was already used or is too old. Open the IDE again from the app.")
	IDECookieRefused = define(http.StatusTooManyRequests, "ide_cookie_refused", "Your browser keeps refusing the IDE's sign-in cookie. Allow cookies for the IDE's site (or open the IDE in its own tab) and try again in a minute.")

	// Sessions, their files and history (claude_sessions).
	SessionNotFound     = define(http.StatusNotFound, "session_not_found", "No such session.")
	SessionLimitReached = define(http.StatusConflict, "session_limit_reached", "The session limit is reached; delete a session first.")
	FileNotFound        = define(http.StatusNotFound, "file_not_found", "No such file or directory.")
	IsADirectory        = define(http.StatusBadRequest, "is_a_directory", "The path names a directory; end it with '/' to list, create or delete a directory.")
	NotADirectory       = define(http.StatusBadRequest, "not_a_directory", "The path does not name a directory.")
	UploadTimeout       = define(http.StatusRequestTimeout, "upload_timeout", "The upload did not arrive within %s; nothing was written. Try again on a faster connection.")
	FileTooLarge        = define(http.StatusRequestEntityTooLarge, "file_too_large", "The body is larger than the limit of %d bytes.")
	HistoryTooLarge     = define(http.StatusRequestEntityTooLarge, "history_too_large", "The session's history would exceed its limit of %d bytes.")
	InvalidHistoryEntry = define(http.StatusBadRequest, "invalid_history_entry", "A history entry must be one JSON value.")
	QuotaExceeded       = define(http.StatusInsufficientStorage, "quota_exceeded", "The session's storage quota of %d bytes (files and history) would be exceeded, or is: remove files first.")

	// Runs and the executor (claude_exec).
	InvalidLanguage      = define(http.StatusBadRequest, "invalid_language", `The language must be "python" or "bash".`)
	InvalidCode          = define(http.StatusBadRequest, "invalid_code", "The code must not be empty or hold a NUL byte.")
	CodeTooLarge         = define(http.StatusBadRequest, "code_too_large", "The code is larger than %d bytes.")
	StdinTooLarge        = define(http.StatusBadRequest, "stdin_too_large", "stdin is larger than %d bytes.")
	InvalidTimeout       = define(http.StatusBadRequest, "invalid_timeout", "timeout_seconds must be a positive number of seconds, at most %d.")
	InvalidTag           = define(http.StatusBadRequest, "invalid_tag", "The tag is not a valid image name[:tag].")
	ExecutorBusy         = define(http.StatusTooManyRequests, "executor_busy", "Too many runs are in progress or waiting; try again later.")
	TooManyWorkspaces    = define(http.StatusTooManyRequests, "too_many_workspaces", "You have %d workspaces running, as many as one user may; delete a session or try again later.")
	WorkspaceLimit       = define(http.StatusServiceUnavailable, "workspace_limit", "Every workspace the gateway may run is in use; try again later.")
	WorkspaceUnavailable = define(http.StatusServiceUnavailable, "workspace_unavailable", "The workspace could not be started; the cause has been logged. Try again shortly.")
	ExecutorUnavailable  = define(http.StatusServiceUnavailable, "executor_unavailable", "Code execution is unavailable right now; the cause has been logged.")
	BuildContextTooLarge = define(http.StatusRequestEntityTooLarge, "build_context_too_large", "The build context is larger than %d bytes.")
	BuildFailed          = define(http.StatusUnprocessableEntity, "build_failed", "The image build failed: %s")
	BuildTimeout         = define(http.StatusGatewayTimeout, "build_timeout", "The image build took too long and was stopped.")
)
