package sqlstorage

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.DSN = d.Val()
		case "lease", "poll_interval":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "lease" {
				s.Lease = caddy.Duration(dur)
			} else {
				s.PollInterval = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown storage sql option %q (known: dsn, lease, poll_interval)", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Storage)(nil)
	_ caddyfile.Unmarshaler = (*MySQLStorage)(nil)
)
