// Package claudeworkspace puts each session's IDE on the IDE host:
// `claude_workspace` (a handler) answers `/s/{session-id}/…` for the
// session's owner only, starts the session's workspace container if needed,
// strips the prefix and hands the request on; `claude_workspace` (a
// reverse_proxy dynamic upstream source) sends it to that workspace's IDE
// socket. The workspaces themselves belong to the `claude` app.
package claudeworkspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/htmlpage"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/sessions"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// socketVar is the request variable that carries the IDE socket from the
// handler to the upstream source.
const socketVar = "claude.workspace.socket"

// DefaultWait is how long a request waits for a starting workspace before
// the browser gets a page that retries by itself.
const DefaultWait = 10 * time.Second

// Handler serves `/s/{session-id}/…` on the IDE host. It runs after
// `claude_auth` (which signs the visitor in) and answers:
//   - 404 when the visitor is not the session's owner (administrators
//     included) or the session does not exist, with nothing started;
//   - 308 from `/s/{id}` to `/s/{id}/`;
//   - the IDE, once the session's workspace runs and its IDE answers: the
//     request goes on with the prefix stripped and the IDE's socket in a
//     variable for the `claude_workspace` upstream source;
//   - 503 and a page that reloads itself when the workspace is still
//     starting after the wait, 429/503 with Retry-After when a cap on
//     running workspaces refuses it.
//
// Other paths get 404.
type Handler struct {
	// Wait bounds how long a request waits for a starting workspace.
	// Default: 10s.
	Wait caddy.Duration `json:"wait,omitempty"`

	sessions   *sessions.Store
	workspaces *workspaces.Manager
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_workspace",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the session store and the workspace manager of the
// `claude` app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	if h.sessions = app.Sessions(); h.sessions == nil {
		return errors.New("claude_workspace: the claude app has no session store")
	}
	if h.workspaces, err = app.Workspaces(); err != nil {
		return fmt.Errorf("claude_workspace: %w", err)
	}
	if h.Wait == 0 {
		h.Wait = caddy.Duration(DefaultWait)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id, rest, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		return claudeerror.Error(apierror.NotFound.Err())
	}
	user, signedIn := identity.FromContext(r.Context())
	if !signedIn {
		return claudeerror.Error(apierror.SessionNotFound.Err())
	}
	sess, release, err := h.sessions.Open(r.Context(), id, user.ID)
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			return claudeerror.Error(apierror.SessionNotFound.Wrap(err))
		}
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	defer release()
	if rest == "" {
		target := "/s/" + id + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
		return nil
	}

	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(h.Wait))
	ws, err := h.workspaces.EnsureIDE(ctx, workspaces.Spec{SessionID: id, UserID: user.ID})
	cancel()
	if err != nil {
		return h.refuse(w, r, id, err)
	}
	if err := sess.Touch(r.Context()); err != nil {
		h.logger.Warn("recording IDE activity", zap.String("session", id), zap.Error(err))
	}
	if isUpgrade(r) {
		// A long-lived socket is use for as long as it is open.
		defer h.keepUsed(r.Context(), sess)()
	}
	caddyhttp.SetVar(r.Context(), socketVar, ws.Socket)
	stripPrefix(r, "/s/"+id)
	return next.ServeHTTP(w, r)
}

// keepUsed holds the workspace and keeps the session active while a
// WebSocket is open, so an IDE in use is never stopped as idle nor its
// session expired.
func (h *Handler) keepUsed(ctx context.Context, sess *sessions.Handle) (stop func()) {
	release := h.workspaces.Hold(sess.ID())
	stopSession := sess.KeepActive(ctx)
	return func() {
		stopSession()
		release()
	}
}

// refuse answers a workspace that could not be had: still starting (a page
// that reloads itself), a cap, a missing image, the engine unreachable (errors
// for claude_error, which the browser loads again after Refresh seconds when
// trying again may help). Never a bare 502.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, id string, err error) error {
	var limit *workspaces.LimitError
	switch {
	case errors.Is(err, workspaces.ErrNotReady), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "2")
		return htmlpage.WriteNotice(w, http.StatusServiceUnavailable, htmlpage.Notice{
			Title: "Starting your workspace", Message: "Your IDE is starting; this page reloads by itself.", Refresh: 2})
	case errors.As(err, &limit):
		retry(w, max(int(limit.RetryAfter.Seconds()), 1))
		if limit.PerUser {
			return claudeerror.Error(apierror.TooManyWorkspaces.Wrap(err, limit.Limit))
		}
		return claudeerror.Error(apierror.WorkspaceLimit.Wrap(err))
	case errors.Is(err, workspaces.ErrImageMissing):
		h.logger.Error("the workspace image is missing", zap.String("session", id), zap.Error(err))
		w.Header().Set("Retry-After", "60")
		return claudeerror.Error(apierror.WorkspaceUnavailable.Wrap(err))
	default:
		if r.Context().Err() != nil {
			return nil // the visitor went away
		}
		h.logger.Error("starting a workspace", zap.String("session", id), zap.Error(err))
		retry(w, 10)
		return claudeerror.Error(apierror.WorkspaceUnavailable.Wrap(err))
	}
}

// retry tells the client to try again in secs seconds: Retry-After, and
// Refresh, which has a browser load the page again by itself.
func retry(w http.ResponseWriter, secs int) {
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Refresh", strconv.Itoa(secs))
}

// splitPath parses /s/{id} and /s/{id}/rest; rest keeps its leading slash
// and is "" for /s/{id}.
func splitPath(p string) (id, rest string, ok bool) {
	tail, found := strings.CutPrefix(p, "/s/")
	if !found {
		return "", "", false
	}
	id, after, slash := strings.Cut(tail, "/")
	if !sessions.ValidID(id) {
		return "", "", false
	}
	if slash {
		rest = "/" + after
	}
	return id, rest, true
}

// stripPrefix removes prefix from the request's path (decoded and raw).
func stripPrefix(r *http.Request, prefix string) {
	r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	if r.URL.RawPath != "" {
		r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, prefix)
	}
	if r.URL.Path == "" {
		r.URL.Path = "/"
	}
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
