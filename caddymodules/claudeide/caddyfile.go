package claudeide

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_ide_signon", parseSignOn)
	httpcaddyfile.RegisterHandlerDirective("claude_ide_gate", parseGate)
	httpcaddyfile.RegisterDirectiveOrder("claude_ide_signon", httpcaddyfile.Before, "basic_auth")
	// claude_ide_handoff is the directive's former name, kept so that
	// Caddyfiles written with it still adapt (to claude_ide_signon).
	httpcaddyfile.RegisterHandlerDirective("claude_ide_handoff", parseSignOn)
	httpcaddyfile.RegisterDirectiveOrder("claude_ide_handoff", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("claude_ide_gate", httpcaddyfile.After, "basic_auth")
}

func parseSignOn(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var hh SignOn
	err := hh.UnmarshalCaddyfile(h.Dispenser)
	return &hh, err
}

func parseGate(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var g Gate
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return &g, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	claude_ide_signon [<ide_origin>] {
//	    ide_origin    <origin>
//	    path          <path>
//	    callback_path <path>
//	    start_path    <path>
//	    login_path    <path>
//	    ticket_ttl    <duration>
//	}
func (h *SignOn) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		h.IDEOrigin = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "ide_origin":
			if !d.AllArgs(&h.IDEOrigin) {
				err = d.ArgErr()
			}
		case "path":
			if !d.AllArgs(&h.Path) {
				err = d.ArgErr()
			}
		case "start_path":
			if !d.AllArgs(&h.StartPath) {
				err = d.ArgErr()
			}
		case "callback_path":
			if !d.AllArgs(&h.CallbackPath) {
				err = d.ArgErr()
			}
		case "login_path":
			if !d.AllArgs(&h.LoginPath) {
				err = d.ArgErr()
			}
		case "ticket_ttl":
			err = caddyfileopt.Duration(d, &h.TicketTTL)
		default:
			return d.Errf("unknown claude_ide_signon option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	claude_ide_gate [<signon_url>] {
//	    signon_url       <url>
//	    start_path       <path>
//	    callback_path    <path>
//	    state_ttl        <duration>
//	    strip_cookies    <name>…
//	    cookie_same_site lax|strict|none
//	}
//
// handoff_url, the option's former name, is read as signon_url.
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		g.SignOnURL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "signon_url", "handoff_url":
			if !d.AllArgs(&g.SignOnURL) {
				err = d.ArgErr()
			}
		case "start_path":
			if !d.AllArgs(&g.StartPath) {
				err = d.ArgErr()
			}
		case "callback_path":
			if !d.AllArgs(&g.CallbackPath) {
				err = d.ArgErr()
			}
		case "state_ttl":
			err = caddyfileopt.Duration(d, &g.StateTTL)
		case "strip_cookies":
			g.StripCookies = append(g.StripCookies, d.RemainingArgs()...)
		case "cookie_same_site":
			if !d.AllArgs(&g.CookieSameSite) {
				err = d.ArgErr()
			}
		default:
			return d.Errf("unknown claude_ide_gate option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*SignOn)(nil)
	_ caddyfile.Unmarshaler = (*Gate)(nil)
)
