package clauderatelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, input, err string
		check            func(t *testing.T, h *Handler)
	}{
		{
			name: "full zone",
			input: `claude_rate_limit {
				store_timeout 500ms
				zone login {
					rate 5/min
					key {http.auth.user.id} {http.vars.client_ip}
					store sql
					on_failure fail_closed
					match {
						path /api/auth/login
					}
					exempt {
						path /api/live
					}
				}
				zone api {
					rate 30/min
				}
			}`,
			check: func(t *testing.T, h *Handler) {
				if len(h.Zones) != 2 || time.Duration(h.StoreTimeout) != 500*time.Millisecond {
					t.Fatalf("zones %d, store_timeout %s", len(h.Zones), time.Duration(h.StoreTimeout))
				}
				z := h.Zones[0]
				if z.Name != "login" || z.Rate != "5/min" || z.Store != "sql" || z.OnFailure != "fail_closed" ||
					strings.Join(z.Key, " ") != "{http.auth.user.id} {http.vars.client_ip}" || len(z.MatchRaw) != 1 || len(z.ExemptRaw) != 1 {
					t.Fatalf("zone: %+v", z)
				}
				if a := h.Zones[1]; a.Name != "api" || a.Store != "" || a.Key != nil {
					t.Fatalf("zone with defaults: %+v", a)
				}
			},
		},
		{name: "bad rate", input: "claude_rate_limit {\nzone a {\nrate 30/fortnight\n}\n}", err: "unknown period"},
		{name: "missing rate", input: "claude_rate_limit {\nzone a {\nstore memory\n}\n}", err: "rate is required"},
		{name: "bad store", input: "claude_rate_limit {\nzone a {\nrate 1/s\nstore etcd\n}\n}", err: "want memory, sql or redis"},
		{name: "bad sync_interval", input: "claude_rate_limit {\nzone a {\nrate 1/s\nstore sql\nsync_interval -1s\n}\n}", err: "sync_interval"},
		{
			name:  "sync_interval and redis",
			input: "claude_rate_limit {\nredis_url redis://127.0.0.1:6379/2\nzone a {\nrate 1/s\nstore sql\nsync_interval 0\n}\nzone b {\nrate 1/s\nstore sql\nsync_interval 100ms\n}\nzone c {\nrate 1/s\nstore redis\n}\n}",
			check: func(t *testing.T, h *Handler) {
				if h.RedisURL != "redis://127.0.0.1:6379/2" || h.Zones[2].Store != "redis" {
					t.Fatalf("redis: %q %q", h.RedisURL, h.Zones[2].Store)
				}
				if a, b := h.Zones[0].SyncInterval, h.Zones[1].SyncInterval; a == nil || *a != 0 || b == nil || time.Duration(*b) != 100*time.Millisecond {
					t.Fatalf("sync_interval: %v %v", a, b)
				}
				if h.Zones[2].SyncInterval != nil {
					t.Fatal("a zone without sync_interval got one")
				}
			},
		},
		{name: "bad policy", input: "claude_rate_limit {\nzone a {\nrate 1/s\non_failure maybe\n}\n}", err: "fail_open or fail_closed"},
		{name: "unknown zone option", input: "claude_rate_limit {\nzone a {\nrate 1/s\nburst 3\n}\n}", err: `unknown option "burst"`},
		{name: "unknown option", input: "claude_rate_limit {\nlimit 3\n}", err: `unknown claude_rate_limit option "limit"`},
		{name: "zone without name", input: "claude_rate_limit {\nzone {\nrate 1/s\n}\n}", err: "zone needs a name"},
		{name: "empty key", input: "claude_rate_limit {\nzone a {\nrate 1/s\nkey\n}\n}", err: "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &h)
		})
	}
}

func TestValidate(t *testing.T) {
	for name, h := range map[string]Handler{
		"no zone":   {},
		"no name":   {Zones: []*Zone{{Rate: "1/s"}}},
		"duplicate": {Zones: []*Zone{{Name: "a", Rate: "1/s"}, {Name: "a", Rate: "2/s"}}},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}
