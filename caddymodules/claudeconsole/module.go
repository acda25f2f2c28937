// Package claudeconsole is the `claude_console` handler: the operator's
// console, server-rendered HTML pages under a prefix (default /admin/) for
// accounts with the admin role only. Everyone else, signed in or not, gets
// 404 and nothing is done. Pages: users, sessions, executor, health, rate
// limits and bans, and the audit trail. Forms post back with a CSRF token
// and a same-origin check; every action is recorded in the audit trail.
package claudeconsole

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/console"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/health"
	"github.com/claude-gateway/claude-gateway/identity"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the console. Place it before `claude_auth`: it reads the
// access token itself, so that a visitor without one gets the same 404 as a
// non-admin, not a sign-in redirect that would reveal the console.
type Handler struct {
	// Prefix is the console's path. Default: /admin.
	Prefix string `json:"prefix,omitempty"`

	auth     *auth.Service
	console  *console.Console
	db       *database.DB
	health   *health.Registry
	exec     *executor.Executor
	registry prometheus.Gatherer
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_console",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the auth service, the session store, the executor and
// the audit trail of the `claude` app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Prefix == "" {
		h.Prefix = "/admin"
	}
	h.Prefix = strings.TrimSuffix(h.Prefix, "/")
	if !strings.HasPrefix(h.Prefix, "/") {
		return errors.New("claude_console: the prefix must start with /")
	}
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	if h.auth, err = app.Auth(); err != nil {
		return err
	}
	if app.Sessions() == nil {
		return errors.New("claude_console: the claude app has no session store")
	}
	h.console = &console.Console{Service: h.auth, Sessions: app.Sessions(), Audit: app.Audit()}
	h.db, h.health = app.DB(), app.Health()
	if h.exec, err = app.Executor(); err != nil {
		return err
	}
	if h.console.Workspaces, err = app.Workspaces(); err != nil {
		return err
	}
	h.registry = ctx.GetMetricsRegistry()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !underPrefix(r.URL.Path, h.Prefix) {
		return next.ServeHTTP(w, r)
	}
	claudeauth.StripIdentityHeaders(r)
	claims, _, err := claudeauth.UserFromRequest(h.auth, r)
	if err != nil || !claims.User().IsAdmin() {
		// Not an administrator: the console does not exist.
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	req := &request{h: h, w: w, r: r, user: claims.User(), sub: strings.TrimPrefix(r.URL.Path, h.Prefix)}
	return req.serve()
}

// underPrefix reports whether p is prefix or below it (prefix + "/…"),
// without building prefix + "/" for every request.
func underPrefix(p, prefix string) bool {
	rest, ok := strings.CutPrefix(p, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

// request is one request to the console by an administrator.
type request struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	user identity.User
	sub  string // the path below the prefix
}

func (q *request) actor() console.Actor {
	return console.Actor{User: q.user, ClientIP: claudeauth.ClientIP(q.r)}
}

// pages are the GET pages by path below the prefix.
var pages = map[string]func(*request) error{
	"/users":    (*request).usersPage,
	"/sessions": (*request).sessionsPage,
	"/executor": (*request).executorPage,
	"/health":   (*request).healthPage,
	"/limits":   (*request).limitsPage,
	"/audit":    (*request).auditPage,
}

// actions are the form posts by path below the prefix.
var actions = map[string]func(*request) error{
	"/users/add":       (*request).addUser,
	"/users/password":  (*request).resetPassword,
	"/users/disable":   (*request).disableUser,
	"/users/enable":    (*request).enableUser,
	"/users/delete":    (*request).deleteUser,
	"/sessions/delete": (*request).deleteSession,
	"/sessions/stop":   (*request).stopWorkspace,
	"/limits/lift":     (*request).liftBan,
}

func (q *request) serve() error {
	switch {
	case q.sub == "" || q.sub == "/":
		if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
			return q.methodNotAllowed("GET, HEAD")
		}
		http.Redirect(q.w, q.r, q.h.Prefix+"/users", http.StatusFound)
		return nil
	case q.sub == "/static/console.css":
		return q.serveCSS()
	}
	if page, ok := pages[q.sub]; ok {
		if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
			return q.methodNotAllowed("GET, HEAD")
		}
		return page(q)
	}
	if act, ok := actions[q.sub]; ok {
		if q.r.Method != http.MethodPost {
			return q.methodNotAllowed("POST")
		}
		if err := q.checkForm(); err != nil {
			return err
		}
		return act(q)
	}
	return caddyhttp.Error(http.StatusNotFound, nil)
}

func (q *request) methodNotAllowed(allow string) error {
	q.w.Header().Set("Allow", allow)
	return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
