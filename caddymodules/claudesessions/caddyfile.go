package claudesessions

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_sessions", parseCaddyfile)
	// After the token check (claude_auth and the rate limits sit before basic_auth).
	httpcaddyfile.RegisterDirectiveOrder("claude_sessions", httpcaddyfile.After, "basic_auth")
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_sessions {
//		upload_timeout <duration>
//	}
//
// The limits are options of the `sessions` block of the global `claude`
// option: timeout, reap_interval, max_sessions, max_sessions_per_user,
// max_file_size, max_history_size, quota.
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
		case "upload_timeout":
			if err := caddyfileopt.PositiveDuration(d, &h.UploadTimeout); err != nil {
				return err
			}
		default:
			return d.Errf("unknown claude_sessions option %q (the session limits are options of the global claude block)", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
