package handoff

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

// UnmarshalCaddyfile sets up the wrapper from Caddyfile tokens. Syntax:
//
//	handoff {
//		timeout <duration>
//	}
func (w *ListenerWrapper) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the wrapper's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "timeout":
			if err := caddyfileopt.Duration(d, &w.Timeout); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized handoff option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*ListenerWrapper)(nil)
