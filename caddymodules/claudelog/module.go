// Package claudelog is the `claudelog` log encoder: Caddy's JSON encoder
// with the gateway's credentials kept out of the access log, rewritten in
// the encoding pass itself (no filter encoder, no regular expression).
package claudelog

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap/zapcore"

	"github.com/claude-gateway/claude-gateway/accesslog"
)

func init() {
	caddy.RegisterModule(Encoder{})
}

// Encoder writes log entries as Caddy's JSON encoder does, with these
// values redacted: the secret query parameters of request>uri and of
// resp_headers>Location, the Authorization, Proxy-Authorization, Cookie and
// Set-Cookie headers (whatever log_credentials says); request>headers>Referer
// is left out.
type Encoder struct {
	logging.LogEncoderConfig

	// RedactQuery lists the query parameters whose values are redacted.
	// Default: access_token, refresh_token, token, ticket, password.
	RedactQuery []string `json:"redact_query,omitempty"`

	*accesslog.Encoder `json:"-"`
}

// CaddyModule returns the Caddy module information.
func (Encoder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.claudelog",
		New: func() caddy.Module { return new(Encoder) },
	}
}

// Provision builds the JSON encoder and wraps it.
func (e *Encoder) Provision(_ caddy.Context) error {
	if len(e.RedactQuery) == 0 {
		e.RedactQuery = accesslog.DefaultQueryNames
	}
	inner := zapcore.NewJSONEncoder(e.ZapcoreEncoderConfig())
	e.Encoder = accesslog.NewEncoder(inner, accesslog.NewRedactor(e.RedactQuery))
	return nil
}

// UnmarshalCaddyfile sets up the encoder. Syntax:
//
//	format claudelog {
//	    redact_query <name...>     # replaces the default list
//	}
//
// The JSON encoder's own options (time_format, message_key, …) are set in
// the JSON config.
func (e *Encoder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // encoder name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "redact_query":
			e.RedactQuery = d.RemainingArgs()
			if len(e.RedactQuery) == 0 {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown claudelog option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ zapcore.Encoder       = (*Encoder)(nil)
	_ caddy.Provisioner     = (*Encoder)(nil)
	_ caddyfile.Unmarshaler = (*Encoder)(nil)
)
