package claudeexec

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_exec", parseCaddyfile)
	// After the token check, beside claude_sessions.
	httpcaddyfile.RegisterDirectiveOrder("claude_exec", httpcaddyfile.After, "basic_auth")
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_exec
//
// The executor's settings are the global `claude { executor { … } }` block.
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
	if d.NextBlock(0) {
		return d.Errf("claude_exec takes no options (they belong to the global claude { executor { … } } block): %q", d.Val())
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
