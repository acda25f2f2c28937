package claudeorigin

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/origin"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_origin", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("claude_origin", httpcaddyfile.Before, "header")
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_origin [<app_origin>] {
//	    app_origin      <origin>
//	    allowed_origins <origin[,origin…]>…
//	    auth_cookies    <name>…
//	    allow_methods   <method>…
//	    allow_headers   <header>…
//	    expose_headers  <header>…
//	    max_age         <duration>
//	}
//
// allowed_origins may be given with no argument (an empty ALLOWED_ORIGINS).
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh Handler
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		h.AppOrigin = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "app_origin":
			if !d.AllArgs(&h.AppOrigin) {
				return d.ArgErr()
			}
		case "allowed_origins":
			for d.NextArg() {
				h.AllowedOrigins = append(h.AllowedOrigins, origin.Split(d.Val())...)
			}
		case "auth_cookies":
			h.AuthCookies = append(h.AuthCookies, d.RemainingArgs()...)
		case "allow_methods":
			h.AllowMethods = append(h.AllowMethods, d.RemainingArgs()...)
		case "allow_headers":
			h.AllowHeaders = append(h.AllowHeaders, d.RemainingArgs()...)
		case "expose_headers":
			h.ExposeHeaders = append(h.ExposeHeaders, d.RemainingArgs()...)
		case "max_age":
			if err := caddyfileopt.Duration(d, &h.MaxAge); err != nil {
				return err
			}
		default:
			return d.Errf("unknown claude_origin option %q", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
