package claudeide

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
			err = oneArg(d, &h.IDEOrigin)
		case "path":
			err = oneArg(d, &h.Path)
		case "start_path":
			err = oneArg(d, &h.StartPath)
		case "callback_path":
			err = oneArg(d, &h.CallbackPath)
		case "login_path":
			err = oneArg(d, &h.LoginPath)
		case "ticket_ttl":
			var s string
			if err = oneArg(d, &s); err == nil {
				dur, perr := caddy.ParseDuration(s)
				if perr != nil {
					return d.Errf("ticket_ttl: %v", perr)
				}
				h.TicketTTL = caddy.Duration(dur)
			}
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
//	claude_ide_gate [<handoff_url>] {
//	    handoff_url      <url>
//	    start_path       <path>
//	    callback_path    <path>
//	    state_ttl        <duration>
//	    strip_cookies    <name>…
//	    cookie_same_site lax|strict|none
//	}
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		g.HandoffURL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "handoff_url":
			err = oneArg(d, &g.HandoffURL)
		case "start_path":
			err = oneArg(d, &g.StartPath)
		case "callback_path":
			err = oneArg(d, &g.CallbackPath)
		case "state_ttl":
			var s string
			if err = oneArg(d, &s); err == nil {
				dur, perr := caddy.ParseDuration(s)
				if perr != nil {
					return d.Errf("state_ttl: %v", perr)
				}
				g.StateTTL = caddy.Duration(dur)
			}
		case "strip_cookies":
			g.StripCookies = append(g.StripCookies, d.RemainingArgs()...)
		case "cookie_same_site":
			err = oneArg(d, &g.CookieSameSite)
		default:
			return d.Errf("unknown claude_ide_gate option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*SignOn)(nil)
	_ caddyfile.Unmarshaler = (*Gate)(nil)
)
