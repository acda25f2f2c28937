package claudeworkspace

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_workspace", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("claude_workspace", httpcaddyfile.Before, "reverse_proxy")
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh Handler
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	claude_workspace {
//	    wait <duration>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "wait":
			if err := caddyfileopt.PositiveDuration(d, &h.Wait); err != nil {
				return err
			}
		default:
			return d.Errf("unknown claude_workspace option %q", d.Val())
		}
	}
	return nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax, inside
// reverse_proxy:
//
//	dynamic claude_workspace
func (u *Upstreams) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() || d.NextBlock(0) {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Upstreams)(nil)
)
