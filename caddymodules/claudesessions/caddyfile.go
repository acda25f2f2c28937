package claudesessions

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
// The limits are options of the global `claude` block: session_timeout,
// session_reap_interval, max_sessions, max_sessions_per_user, max_file_size,
// max_history_size, session_quota.
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
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("upload_timeout %q is not a positive duration", v)
			}
			h.UploadTimeout = caddy.Duration(dur)
		default:
			return d.Errf("unknown claude_sessions option %q (the session limits are options of the global claude block)", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
