// Package claudehealth is the `claude_health` handler: the liveness, readiness
// and health probes of the gateway.
package claudehealth

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/health"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("claude_health", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("claude_health", httpcaddyfile.Before, "header")
}

// Handler answers the probes. Requests for other paths pass to the next handler.
//
//   - GET /api/live: 200 while the process serves requests.
//   - GET /api/ready: 200 when every critical dependency (the database) answers, else 503.
//   - GET /api/health: the state of every dependency, 200 when ready, else 503.
type Handler struct {
	// Timeout bounds each dependency check. Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Details adds each failing service's error text to /api/health. Off by
	// default: the public summary says which service is down, not why.
	Details bool `json:"details,omitempty"`

	checks *health.Registry
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_health",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the health registry of the `claude` app.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	h.checks = app.Health()
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(2 * time.Second)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case "/api/live", "/api/ready", "/api/health":
	default:
		return next.ServeHTTP(w, r)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return claudeerror.Error(apierror.MethodNotAllowed.Err())
	}
	if r.URL.Path == "/api/live" {
		apierror.WriteJSON(w, http.StatusOK, map[string]string{"status": "alive"})
		return nil
	}
	rep := h.checks.Run(r.Context(), time.Duration(h.Timeout))
	status := http.StatusOK
	if !rep.Ready() {
		status = http.StatusServiceUnavailable
	}
	if r.URL.Path == "/api/ready" {
		word := "ready"
		if status != http.StatusOK {
			word = "not_ready"
		}
		apierror.WriteJSON(w, status, map[string]string{"status": word})
		return nil
	}
	if !h.Details {
		for name, s := range rep.Services {
			s.Error = ""
			rep.Services[name] = s
		}
	}
	apierror.WriteJSON(w, status, rep)
	return nil
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_health [<matcher>] {
//	    timeout <duration>
//	    details
//	}
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh Handler
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "timeout":
			if err := caddyfileopt.Duration(d, &h.Timeout); err != nil {
				return err
			}
		case "details":
			h.Details = true
		default:
			return d.Errf("unknown claude_health option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
