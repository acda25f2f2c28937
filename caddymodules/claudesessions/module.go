// Package claudesessions is the `claude_sessions` handler: the session API
// under /api/sessions (create, list, get, delete), the session's files and
// its shared history. It answers only authenticated requests (claude_auth
// runs before it) and shows each user only their own sessions.
package claudesessions

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/requestpath"
	"github.com/claude-gateway/claude-gateway/sessions"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// prefix is the collection the handler serves; other paths pass through.
const prefix = "/api/sessions"

// Handler serves the session API:
//
//   - POST /api/sessions, GET /api/sessions (?all=true for admins)
//   - GET, DELETE /api/sessions/{id}
//   - GET, PUT, DELETE /api/sessions/{id}/files/{path} (a path ending in
//     "/" is a directory: GET lists it, PUT creates it, DELETE removes it)
//   - GET, POST /api/sessions/{id}/history
//
// /api/sessions/{id}/exec passes to the next handler (claude_exec). Any other
// path naming a session (requestpath.SessionID: /api/sessions/{id}/…,
// /ws/sessions/{id}…, and those collections spelt in any case) is the
// backend's (agent messages, streams): it passes to the next handler only
// for the session's owner, and is 404 for everyone else, so the backend
// never sees a request for a session the user does not own. The
// limits (timeout, caps, file size, quota) are options of the `claude` app,
// which owns the session store.
type Handler struct {
	// UploadTimeout is how long a file upload (PUT …/files/{path}) may
	// take to arrive. A body still arriving then is cut off with 408
	// upload_timeout and nothing of it is kept, so a client trickling bytes
	// cannot hold a connection and a temporary file open for ever.
	// Default: 2m.
	UploadTimeout caddy.Duration `json:"upload_timeout,omitempty"`

	store  *sessions.Store
	audit  *audit.Writer
	logger *zap.Logger
}

// DefaultUploadTimeout is the UploadTimeout when none is set.
const DefaultUploadTimeout = 2 * time.Minute

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_sessions",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the session store of the `claude` app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.UploadTimeout <= 0 {
		h.UploadTimeout = caddy.Duration(DefaultUploadTimeout)
	}
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	h.store, h.audit = app.Sessions(), app.Audit()
	if h.store == nil {
		return errors.New("claude_sessions: the claude app has no session store")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path != prefix && !strings.HasPrefix(r.URL.Path, prefix+"/") {
		if id, ok := requestpath.SessionID(r.URL.Path); ok {
			return h.backendSession(w, r, next, id)
		}
		return next.ServeHTTP(w, r)
	}
	// Routing works on the escaped path, so that an encoded "/" or "." in a
	// file name is seen as such and refused, never decoded into structure.
	rest := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
	id, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	if sub == "exec" {
		// claude_exec's, which checks ownership itself. Paths below it
		// are the backend's: checked like any other below.
		return next.ServeHTTP(w, r)
	}
	user, ok := identity.FromContext(r.Context())
	if !ok {
		return unauthorized(w)
	}
	api := &api{h: h, w: w, r: r, user: user}
	var err error
	switch {
	case id == "":
		err = api.collection()
	case !sessions.ValidID(id):
		err = apierror.SessionNotFound.Err()
	case !strings.Contains(rest[1:], "/"):
		err = api.session(id)
	case sub == "history":
		err = api.history(id)
	case sub == "files" || strings.HasPrefix(sub, "files/"):
		err = api.files(id, strings.TrimPrefix(strings.TrimPrefix(sub, "files"), "/"))
	default:
		// The backend's own per-session routes (agent messages, streams):
		// the gateway vouches for ownership, then proxies them.
		var release func()
		if _, release, err = api.owned(id); err == nil {
			release()
			return next.ServeHTTP(w, r)
		}
	}
	if err != nil {
		return claudeerror.Error(err)
	}
	return nil
}

// unauthorized sets the Bearer challenge and returns 401 invalid_token.
func unauthorized(w http.ResponseWriter) error {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	return claudeerror.Error(apierror.InvalidToken.Err())
}

// backendSession passes a request for the backend that names session id to
// next when the user owns the session; anyone else gets 404.
func (h *Handler) backendSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, id string) error {
	user, ok := identity.FromContext(r.Context())
	if !ok {
		return unauthorized(w)
	}
	if !sessions.ValidID(id) {
		return claudeerror.Error(apierror.SessionNotFound.Err())
	}
	api := &api{h: h, w: w, r: r, user: user}
	_, release, err := api.owned(id)
	if err != nil {
		return claudeerror.Error(err)
	}
	release()
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
