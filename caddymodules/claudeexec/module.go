// Package claudeexec is the `claude_exec` handler: sandboxed code execution
// in a session's workspace container (POST /api/sessions/{id}/exec, JSON or
// Server-Sent Events; a `docker exec` in the container, started if needed), the executor's status (GET /api/executor) and its
// admin operations (POST /api/executor/cleanup, POST /api/executor/images).
// The executor itself is configured in the global `claude { executor { … } }`
// block and outlives config reloads: a reload neither reconnects nor touches
// runs in progress.
package claudeexec

import (
	"errors"
	"fmt"
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
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/requestpath"
	"github.com/claude-gateway/claude-gateway/sessions"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the execution API. It needs an authenticated user
// (claude_auth runs before it); other paths pass through.
type Handler struct {
	exec       *executor.Executor
	workspaces *workspaces.Manager
	sessions   *sessions.Store
	build      executor.BuildOptions
	audit      *audit.Writer
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_exec",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the executor and the session workspaces of the `claude`
// app: runs execute in their session's workspace container.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	h.sessions = app.Sessions()
	if h.sessions == nil {
		return errors.New("claude_exec: the claude app has no session store")
	}
	if h.exec, err = app.Executor(); err != nil {
		return fmt.Errorf("claude_exec: %w", err)
	}
	if h.workspaces, err = app.Workspaces(); err != nil {
		return fmt.Errorf("claude_exec: %w", err)
	}
	h.audit = app.Audit()
	if c := app.ExecutorConfig; c != nil {
		h.build = executor.BuildOptions{ContextLimit: c.BuildContextLimit, Timeout: time.Duration(c.BuildTimeout)}
	}
	if h.build.ContextLimit <= 0 {
		h.build.ContextLimit = executor.DefaultBuildContextLimit
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p := r.URL.EscapedPath()
	var sessionID string
	if sp, ok := requestpath.ParseSession(r.URL); ok && sp.API && sp.Rest == "/exec" {
		sessionID = sp.ID
	} else if p != "/api/executor" && !strings.HasPrefix(p, "/api/executor/") {
		return next.ServeHTTP(w, r)
	}
	user, ok := identity.FromContext(r.Context())
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return claudeerror.Error(apierror.InvalidToken.Err())
	}
	route := func(method string, serve func(http.ResponseWriter, *http.Request, identity.User) error) error {
		if r.Method != method {
			w.Header().Set("Allow", method)
			return claudeerror.Error(apierror.MethodNotAllowed.Err())
		}
		if err := serve(w, r, user); err != nil {
			if r.Context().Err() != nil {
				return nil // the client is gone; its run was killed
			}
			return claudeerror.Error(err)
		}
		return nil
	}
	switch p {
	case "/api/executor":
		return route(http.MethodGet, h.status)
	case "/api/executor/cleanup":
		return route(http.MethodPost, h.admin(h.cleanup))
	case "/api/executor/images":
		return route(http.MethodPost, h.admin(h.buildImage))
	}
	if sessionID != "" {
		return route(http.MethodPost, func(w http.ResponseWriter, r *http.Request, u identity.User) error {
			return h.execute(w, r, u, sessionID)
		})
	}
	return claudeerror.Error(apierror.NotFound.Err())
}

// admin lets only administrators through to serve.
func (h *Handler) admin(serve func(http.ResponseWriter, *http.Request, identity.User) error) func(http.ResponseWriter, *http.Request, identity.User) error {
	return func(w http.ResponseWriter, r *http.Request, u identity.User) error {
		if !u.IsAdmin() {
			return apierror.Forbidden.Err()
		}
		return serve(w, r, u)
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
