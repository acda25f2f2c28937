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
// Any other path naming a session (requestpath.ParseSession:
// /api/sessions/{id}/…, /ws/sessions/{id}…, and those collections spelt in
// any case) is served after this handler (the backend's agent messages and
// streams, a run): it passes to the next handler only for the session's
// owner, and is 404 for everyone else, so nothing after this handler sees a
// request for a session the user does not own. The
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
	collection := r.URL.Path == prefix || r.URL.Path == prefix+"/"
	sp, named := requestpath.ParseSession(r.URL)
	if !collection && !named {
		return next.ServeHTTP(w, r)
	}
	user, ok := identity.FromContext(r.Context())
	if !ok {
		return unauthorized(w)
	}
	api := &api{h: h, w: w, r: r, user: user}
	var err error
	switch {
	case collection:
		err = api.collection()
	case !sessions.ValidID(sp.ID):
		err = apierror.SessionNotFound.Err()
	case sp.API && sp.Rest == "":
		err = api.session(sp.ID)
	case sp.API && sp.Rest == "/history":
		err = api.history(sp.ID)
	case sp.API && (sp.Rest == "/files" || strings.HasPrefix(sp.Rest, "/files/")):
		err = api.files(sp.ID, strings.TrimPrefix(strings.TrimPrefix(sp.Rest, "/files"), "/"))
	default:
		// Served after this handler (by the backend or another handler):
		// the gateway vouches for ownership, then passes it on.
		var release func()
		if _, release, err = api.owned(sp.ID); err == nil {
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

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
