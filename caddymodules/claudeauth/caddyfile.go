package claudeauth

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_auth_api", parseAPICaddyfile)
	httpcaddyfile.RegisterHandlerDirective("claude_auth", parseCaddyfile)
	// Both run before Caddy's own auth handlers; the session API first, so
	// login and refresh need no token.
	httpcaddyfile.RegisterDirectiveOrder("claude_auth_api", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("claude_auth", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh Handler
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}

func parseAPICaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh APIHandler
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}
