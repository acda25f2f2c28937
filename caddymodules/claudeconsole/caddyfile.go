package claudeconsole

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_console", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("claude_console", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh Handler
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	claude_console {
//	    prefix <path>
//	}
//
// (A bare path after the directive would be a request matcher, not the prefix.)
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "prefix":
			if !d.AllArgs(&h.Prefix) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown claude_console option %q", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
