// Package claudeerror is the `claude_error` handler, the one renderer of the
// gateway's errors: inside `handle_errors` it answers the error a handler
// returned (an apierror.Error wrapped by caddyhttp.Error) or Caddy produced
// (an unreachable upstream, a panic) with the JSON envelope under /api and
// /ws and a short HTML page elsewhere.
package claudeerror

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
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

var page = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Status}} {{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}p{color:#555}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p><p><small>Error {{.Status}}</small></p></body></html>
`))

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
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Del("Content-Length")
	w.WriteHeader(status)
	if err := page.Execute(w, struct {
		Status         int
		Title, Message string
	}{status, http.StatusText(status), e.Message()}); err != nil {
		return fmt.Errorf("rendering the error page: %w", err)
	}
	return nil
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
