package clauderatelimit

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/ratelimit"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("claude_rate_limit", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("claude_rate_limit", httpcaddyfile.Before, "basic_auth")
}

// parseCaddyfile sets up the handler. Syntax:
//
//	claude_rate_limit [<matcher>] {
//	    zone <name> {
//	        rate       <limit>/<period>          # 30/min, 5/min, 1000/h, 10/2s
//	        key        <placeholder> [<fallback>...]  # default {client_ip}
//	        store      memory|sql|redis          # default memory
//	        sync_interval <duration>             # sql: default 250ms; 0 = every hit in the database
//	        on_failure fail_open|fail_closed     # default fail_open
//	        match      { <matchers> }            # the zone counts only these requests
//	        exempt     { <matchers> }            # the zone skips these requests
//	    }
//	    store_timeout <duration>
//	    redis_url     <url>                      # for store redis: redis://host:port/db
//	}
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
		case "zone":
			z, err := unmarshalZone(d)
			if err != nil {
				return err
			}
			h.Zones = append(h.Zones, z)
		case "store_timeout":
			if err := caddyfileopt.Duration(d, &h.StoreTimeout); err != nil {
				return err
			}
		case "redis_url":
			if !d.AllArgs(&h.RedisURL) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown claude_rate_limit option %q", d.Val())
		}
	}
	return nil
}

func unmarshalZone(d *caddyfile.Dispenser) (*Zone, error) {
	z := new(Zone)
	if !d.NextArg() {
		return nil, d.Errf("zone needs a name")
	}
	z.Name = d.Val()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "rate":
			if !d.AllArgs(&z.Rate) {
				return nil, d.ArgErr()
			}
			if _, err := ratelimit.ParseRate(z.Rate); err != nil {
				return nil, d.Errf("zone %s: %v", z.Name, err)
			}
		case "key":
			z.Key = d.RemainingArgs()
			if len(z.Key) == 0 {
				return nil, d.ArgErr()
			}
		case "store":
			if !d.AllArgs(&z.Store) {
				return nil, d.ArgErr()
			}
			if z.Store != storeMemory && z.Store != storeSQL && z.Store != storeRedis {
				return nil, d.Errf("zone %s: store %q: want memory, sql or redis", z.Name, z.Store)
			}
		case "sync_interval":
			var cd caddy.Duration
			if err := caddyfileopt.Duration(d, &cd); err != nil {
				return nil, fmt.Errorf("zone %s: %w", z.Name, err)
			}
			z.SyncInterval = &cd
		case "on_failure":
			if !d.AllArgs(&z.OnFailure) {
				return nil, d.ArgErr()
			}
			if _, err := ratelimit.ParsePolicy(z.OnFailure); err != nil {
				return nil, d.Errf("zone %s: %v", z.Name, err)
			}
		case "match", "exempt":
			set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
			if err != nil {
				return nil, err
			}
			if opt == "match" {
				z.MatchRaw = append(z.MatchRaw, set)
			} else {
				z.ExemptRaw = append(z.ExemptRaw, set)
			}
		default:
			return nil, d.Errf("zone %s: unknown option %q", z.Name, opt)
		}
	}
	if z.Rate == "" {
		return nil, d.Errf("zone %s: rate is required", z.Name)
	}
	return z, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
