// Package claudeerror is the `claude_error` handler, the one renderer of the
// gateway's errors: inside `handle_errors` it answers the error a handler
// returned (an apierror.Error wrapped by caddyhttp.Error) or Caddy produced
// (an unreachable upstream, a panic) with the JSON envelope under /api and
// /ws and a short HTML page elsewhere.
package claudeerror

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/htmlpage"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("claude_error", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("claude_error", httpcaddyfile.Before, "respond")
}

// Error returns err as the error a handler returns for claude_error to render:
// a caddyhttp.HandlerError of the status of err's apierror.Error (an error
// without one is a 500 internal_error whose detail is logged, never sent).
// Headers the answer needs (WWW-Authenticate, Retry-After, Allow) are set on
// the response before returning it; handle_errors keeps them.
func Error(err error) error {
	e := apierror.As(err)
	return caddyhttp.Error(e.Status(), e)
}

// Handler renders the error of the current request. It is terminal. An error
// that wraps an apierror.Error of the error's status is answered with that
// error's code and message; any other with the code of its status.
type Handler struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_error",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the logger.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	status := http.StatusInternalServerError
	err, _ := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		status = he.StatusCode
	}
	e := apierror.ForStatus(status).Wrap(err)
	// A handler that failed with an apierror.Error of the same status
	// chose its code and message for the client.
	var ae *apierror.Error
	if errors.As(err, &ae) && ae.Status() == status {
		e = ae
	}
	if status >= 500 && h.logger != nil {
		h.logger.Error("answering with an error", zap.Int("status", status), zap.String("code", e.Code()),
			zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	if apierror.IsAPIPath(r.URL.Path) {
		apierror.Write(w, e)
		return nil
	}
	return htmlpage.WriteNotice(w, status, htmlpage.Notice{
		Title:   http.StatusText(status),
		Message: e.Message(),
		Small:   "Error " + strconv.Itoa(status),
	})
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_error
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	return new(Handler), nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
