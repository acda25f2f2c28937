package sqlstorage

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		want    Storage
		wantErr bool
	}{
		{"bare: the claude app's database", `mysql`, Storage{}, false},
		{"inline dsn", `mysql mysql://u:p@tcp(db:3306)/gw`, Storage{DSN: "mysql://u:p@tcp(db:3306)/gw"}, false},
		{"block", `mysql {
			dsn mysql://u:p@tcp(db:3306)/gw
			lease 30s
			poll_interval 500ms
		}`, Storage{DSN: "mysql://u:p@tcp(db:3306)/gw", Lease: caddy.Duration(30 * time.Second), PollInterval: caddy.Duration(500 * time.Millisecond)}, false},
		{"unknown option", `mysql {
			table certs
		}`, Storage{}, true},
		{"bad duration", `mysql {
			lease soon
		}`, Storage{}, true},
		{"missing value", `mysql {
			dsn
		}`, Storage{}, true},
		{"too many values", `mysql {
			lease 1m 2m
		}`, Storage{}, true},
		{"two inline args", `mysql a b`, Storage{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Storage
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DSN != c.want.DSN || got.Lease != c.want.Lease || got.PollInterval != c.want.PollInterval {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
