// Package claudeerror is the `claude_error` handler: inside `handle_errors` it
// answers an error Caddy produced (an unreachable upstream, a panic) with the
// JSON envelope under /api and a short, plain page elsewhere.
package claudeerror

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/apierror"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("claude_error", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("claude_error", httpcaddyfile.Before, "respond")
}

// Handler renders the error of the current request. It is terminal. An error
// that wraps an apierror.Error of the error's status is answered with that
// error's code and message; any other with a message chosen by status.
type Handler struct {
	// APIPrefix is the path prefix whose errors are answered in JSON. Default: "/api/".
	APIPrefix string `json:"api_prefix,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_error",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults.
func (h *Handler) Provision(caddy.Context) error {
	if h.APIPrefix == "" {
		h.APIPrefix = "/api/"
	}
	return nil
}

// messages says, per status, what a user sees; statuses not listed get the
// status text.
var messages = map[int]string{
	http.StatusBadGateway:          "The service behind the gateway is not reachable right now. Try again in a moment.",
	http.StatusServiceUnavailable:  "The service is temporarily unavailable. Try again in a moment.",
	http.StatusGatewayTimeout:      "The service behind the gateway did not answer in time. Try again in a moment.",
	http.StatusNotFound:            "There is nothing at this address.",
	http.StatusInternalServerError: "The gateway failed to handle the request; the error has been logged.",
}

// codes overrides the snake_case status text for statuses whose meaning at the
// gateway deserves a clearer code.
var codes = map[int]string{
	http.StatusBadGateway:          "upstream_unavailable",
	http.StatusGatewayTimeout:      "upstream_timeout",
	http.StatusInternalServerError: "internal_error",
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
	msg, ok := messages[status]
	if !ok {
		msg = http.StatusText(status) + "."
	}
	code, ok := codes[status]
	if !ok {
		code = apierror.CodeFor(status)
	}
	// A handler that failed with an apierror.Error of the same status
	// chose its code and message for the client.
	var ae *apierror.Error
	if errors.As(err, &ae) && ae.Status == status {
		code, msg = ae.Code, ae.Message
	}
	if r.URL.Path+"/" == h.APIPrefix || strings.HasPrefix(r.URL.Path, h.APIPrefix) {
		apierror.Write(w, apierror.New(status, code, msg))
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := page.Execute(w, struct {
		Status         int
		Title, Message string
	}{status, http.StatusText(status), msg}); err != nil {
		return fmt.Errorf("rendering the error page: %w", err)
	}
	return nil
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_error [<api_prefix>]
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh Handler
	h.Next()
	if h.NextArg() {
		hh.APIPrefix = h.Val()
	}
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	return &hh, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
