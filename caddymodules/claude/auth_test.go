package claude

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestAuthOption(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		want    AuthConfig
		wantErr string
	}{
		{"every option", `claude {
			auth {
				secret_key_file /run/secrets/key
				generate_secret_file ./data/secret_key
				verify_key_file /old/1
				verify_key_file /old/2
				issuer iss-x
				audience aud-y
				access_ttl 5m
				refresh_ttl 24h
				leeway 10s
				max_token_size 2048
				revocation_sync 1s
				regulation memory
				max_retries 3
				find_time 1m
				ban_time 10m
				bcrypt_cost 12
			}
		}`, AuthConfig{
			SecretKeyFile: "/run/secrets/key", GenerateSecretFile: "./data/secret_key", VerifyKeyFiles: []string{"/old/1", "/old/2"},
			Issuer: "iss-x", Audience: "aud-y", AccessTTL: caddy.Duration(5 * time.Minute), RefreshTTL: caddy.Duration(24 * time.Hour),
			Leeway: caddy.Duration(10 * time.Second), MaxTokenSize: 2048, RevocationSync: caddy.Duration(time.Second),
			Regulation: "memory", MaxRetries: 3, FindTime: caddy.Duration(time.Minute), BanTime: caddy.Duration(10 * time.Minute), BcryptCost: 12,
		}, ""},
		{"empty block", "claude {\n auth {\n }\n}", AuthConfig{}, ""},
		{"unknown option", "claude {\n auth {\n secret_key abc\n }\n}", AuthConfig{}, `unknown auth option "secret_key"`},
		{"bad duration", "claude {\n auth {\n access_ttl soon\n }\n}", AuthConfig{}, "neither seconds nor a duration"},
		{"zero duration", "claude {\n auth {\n access_ttl 0\n }\n}", AuthConfig{}, "access_ttl: want a positive duration"},
		{"seconds", "claude {\n auth {\n access_ttl 900\n }\n}", AuthConfig{AccessTTL: caddy.Duration(15 * time.Minute)}, ""},
		{"bad regulation store", "claude {\n auth {\n regulation redis\n }\n}", AuthConfig{}, "want sql or memory"},
		{"negative number", "claude {\n auth {\n max_retries -1\n }\n}", AuthConfig{}, "not a non-negative integer"},
		{"zero number", "claude {\n auth {\n max_retries 0\n }\n}", AuthConfig{}, "max_retries: want a positive number"},
		{"missing argument", "claude {\n auth {\n issuer\n }\n}", AuthConfig{}, "wrong argument count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := parseGlobalOption(caddyfile.NewTestDispenser(tc.input), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var app App
			if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &app); err != nil {
				t.Fatal(err)
			}
			if app.AuthConfig == nil {
				t.Fatal("no auth config")
			}
			got, _ := json.Marshal(app.AuthConfig)
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Fatalf("got %s\nwant %s", got, want)
			}
		})
	}
}
