package sqlstorage

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

// UnmarshalCaddyfile sets up the storage from Caddyfile tokens. Syntax:
//
//	storage sql [<dsn>] {
//	    dsn           <dsn>
//	    lease         <duration>
//	    poll_interval <duration>
//	}
//
// With no dsn, the database of the `claude` global option is used. The former
// name, `storage mysql`, takes the same syntax.
func (s *Storage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the module name
	if d.NextArg() {
		s.DSN = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "dsn":
			if !d.AllArgs(&s.DSN) {
				return d.ArgErr()
			}
		case "lease":
			if err := caddyfileopt.Duration(d, &s.Lease); err != nil {
				return err
			}
		case "poll_interval":
			if err := caddyfileopt.Duration(d, &s.PollInterval); err != nil {
				return err
			}
		default:
			return d.Errf("unknown storage sql option %q (known: dsn, lease, poll_interval)", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Storage)(nil)
	_ caddyfile.Unmarshaler = (*MySQLStorage)(nil)
)
