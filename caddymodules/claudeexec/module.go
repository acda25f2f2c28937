// Package claudeexec is the `claude_exec` handler: sandboxed code execution
// in a session's workspace (POST /api/sessions/{id}/exec, JSON or
// Server-Sent Events), the executor's status (GET /api/executor) and its
// admin operations (POST /api/executor/cleanup, POST /api/executor/images).
// The executor itself is configured in the global `claude { executor { … } }`
// block and outlives config reloads: a reload neither reconnects nor touches
// runs in progress.
package claudeexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/sessions"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// executors holds the executors by configuration. A reload with the same
// executor settings re-uses the running one (its limits, queue and runs); a
// changed one gets a new executor while the old one's runs finish.
var executors = caddy.NewUsagePool()

// pooledExecutor lets an executor live in a caddy.UsagePool.
type pooledExecutor struct{ *executor.Executor }

// Destruct stops the executor's sweep; its runs in progress finish.
func (p pooledExecutor) Destruct() error { return p.Close() }

// Handler serves the execution API. It needs an authenticated user
// (claude_auth runs before it); other paths pass through.
type Handler struct {
	exec     *executor.Executor
	key      string
	sessions *sessions.Store
	build    executor.BuildOptions
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_exec",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes (or starts) the executor of the `claude` app's settings
// and registers its non-critical "docker" health check.
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
	cfg := app.ExecutorSettings()
	key, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("claude_exec: %w", err)
	}
	h.key = string(key)
	logger := app.Logger().Named("executor")
	val, loaded, err := executors.LoadOrNew(h.key, func() (caddy.Destructor, error) {
		e, err := executor.New(cfg, logger)
		if err != nil {
			return nil, err
		}
		return pooledExecutor{e}, nil
	})
	if err != nil {
		return fmt.Errorf("claude_exec: %w", err)
	}
	h.exec = val.(pooledExecutor).Executor
	if c := app.Executor; c != nil {
		h.build = executor.BuildOptions{ContextLimit: c.BuildContextLimit, Timeout: time.Duration(c.BuildTimeout)}
	}
	if h.build.ContextLimit <= 0 {
		h.build.ContextLimit = executor.DefaultBuildContextLimit
	}
	app.Health().Register("docker", false, h.exec.IsAvailable)
	h.logger.Info("executor ready", zap.Bool("reused", loaded),
		zap.String("image", h.exec.Config().Image(executor.Python)), zap.String("instance", h.exec.Config().Instance))
	return nil
}

// Cleanup releases this config's reference to the executor.
func (h *Handler) Cleanup() error {
	if h.exec == nil {
		return nil
	}
	_, err := executors.Delete(h.key)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p := r.URL.EscapedPath()
	var sessionID string
	switch {
	case strings.HasPrefix(p, "/api/sessions/"):
		id, sub, _ := strings.Cut(strings.TrimPrefix(p, "/api/sessions/"), "/")
		if sub != "exec" {
			return next.ServeHTTP(w, r)
		}
		sessionID = id
	case p == "/api/executor" || strings.HasPrefix(p, "/api/executor/"):
	default:
		return next.ServeHTTP(w, r)
	}
	user, ok := identity.FromContext(r.Context())
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		apierror.Write(w, apierror.New(http.StatusUnauthorized, "unauthorized", "Sign in to run code."))
		return nil
	}
	route := func(method string, serve func(http.ResponseWriter, *http.Request, identity.User)) error {
		if r.Method != method {
			w.Header().Set("Allow", method)
			apierror.Write(w, apierror.New(http.StatusMethodNotAllowed, "method_not_allowed", "Use "+method+" here."))
			return nil
		}
		serve(w, r, user)
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
		return route(http.MethodPost, func(w http.ResponseWriter, r *http.Request, u identity.User) {
			h.execute(w, r, u, sessionID)
		})
	}
	apierror.Write(w, apierror.New(http.StatusNotFound, "not_found", "No such executor resource."))
	return nil
}

// admin lets only administrators through to serve.
func (h *Handler) admin(serve func(http.ResponseWriter, *http.Request, identity.User)) func(http.ResponseWriter, *http.Request, identity.User) {
	return func(w http.ResponseWriter, r *http.Request, u identity.User) {
		if !u.IsAdmin() {
			apierror.Write(w, apierror.New(http.StatusForbidden, "forbidden", "Only administrators may do this."))
			return
		}
		serve(w, r, u)
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
