package clauderatelimit

import (
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestZoneKey(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/x", nil)
	r.Header.Set("X-User", "alice")
	r.RemoteAddr = "192.0.2.7:5555"
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, nil, nil)
	caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, "192.0.2.7")
	for _, tt := range []struct {
		keys []string
		want string
	}{
		{[]string{"{http.request.header.X-User}"}, "0:alice"},
		{[]string{"{http.request.header.X-Missing}", "{http.vars.client_ip}"}, "1:192.0.2.7"},
		{[]string{"user-{http.request.header.X-User}"}, "0:user-alice"},
		{[]string{"{http.request.header.X-User}/{http.vars.client_ip}"}, "0:alice/192.0.2.7"},
		{[]string{"{http.request.header.X-Missing}", "{unknown.placeholder}"}, ""},
		{[]string{"static"}, "0:static"},
	} {
		if got := (&Zone{Key: tt.keys}).key(repl); got != tt.want {
			t.Errorf("key(%q) = %q, want %q", tt.keys, got, tt.want)
		}
	}
}

func TestSinglePlaceholder(t *testing.T) {
	for in, want := range map[string]bool{
		"{http.vars.client_ip}": true,
		"{a}":                   true,
		"{}":                    false,
		"{a}{b}":                false,
		"x{a}":                  false,
		"{a\\}":                 false,
		"plain":                 false,
	} {
		if _, got := singlePlaceholder(in); got != want {
			t.Errorf("singlePlaceholder(%q) = %v, want %v", in, got, want)
		}
	}
}
