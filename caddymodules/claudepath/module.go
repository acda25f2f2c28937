// Package claudepath is the `claude_path` handler: first on every route, it
// refuses a request path that has no single meaning and gives every handler
// and upstream after it the path in one canonical form.
package claudepath

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/requestpath"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler checks the path of every request with requestpath.Canonical. A
// path with dot or empty segments, ';', '\', an encoded '/' or '.', a
// control byte or a double-encoded escape is refused with 400 `invalid_path`
// (an error for `handle_errors`: the JSON envelope under /api, a page
// elsewhere) before any other handler runs. Any other path goes on in
// canonical form: escapes of unreserved characters decoded, every other
// escape in upper-case hex, so that decisions on the decoded path
// (URL.Path) and on the escaped one (URL.EscapedPath, what reverse_proxy
// sends upstream) agree. Case is kept as sent.
type Handler struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_path",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the logger.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p, err := requestpath.Canonical(receivedPath(r))
	if err != nil {
		h.logger.Debug("path refused", zap.String("path", receivedPath(r)), zap.Error(err))
		return claudeerror.Error(apierror.InvalidPath.Wrap(err))
	}
	r.URL.Path, r.URL.RawPath = p.Decoded, p.Escaped
	return next.ServeHTTP(w, r)
}

// receivedPath is the request's path as the client escaped it: net/url keeps
// it in RawPath when it differs from the default escaping of Path.
func receivedPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.EscapedPath()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
