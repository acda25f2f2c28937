package sqlstorage

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
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

// TestFormerModuleName: `storage mysql` (caddy.storage.mysql), the name
// configurations used before `storage sql`, still loads the same storage
// with the same options, and both names adapt from a Caddyfile.
func TestFormerModuleName(t *testing.T) {
	for _, name := range []string{"sql", "mysql"} {
		t.Run(name, func(t *testing.T) {
			info, err := caddy.GetModule("caddy.storage." + name)
			if err != nil {
				t.Fatal(err)
			}
			mod := info.New()
			if _, ok := mod.(caddy.StorageConverter); !ok {
				t.Fatalf("caddy.storage.%s is a %T, not a storage", name, mod)
			}
			u, ok := mod.(caddyfile.Unmarshaler)
			if !ok {
				t.Fatalf("caddy.storage.%s has no Caddyfile syntax", name)
			}
			if err := u.UnmarshalCaddyfile(caddyfile.NewTestDispenser(name + " mysql://u:p@tcp(db:3306)/gw {\n lease 30s\n}")); err != nil {
				t.Fatal(err)
			}
			var got *Storage
			switch s := mod.(type) {
			case *Storage:
				got = s
			case *MySQLStorage:
				got = &s.Storage
			}
			if got == nil || got.DSN != "mysql://u:p@tcp(db:3306)/gw" || got.Lease != caddy.Duration(30*time.Second) {
				t.Fatalf("caddy.storage.%s: got %+v", name, got)
			}

			cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n\tstorage "+name+" {\n\t\tlease 30s\n\t}\n}\n"), nil)
			if err != nil || len(warnings) > 0 {
				t.Fatalf("adapt: %v %v", err, warnings)
			}
			want := `"storage":{"lease":30000000000,"module":"` + name + `"}`
			if !strings.Contains(string(cfg), want) {
				t.Fatalf("adapted %s, want it to hold %s", cfg, want)
			}
		})
	}
}
