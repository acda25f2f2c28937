package clauderatelimit

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/ratelimit"
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
		{[]string{"", "", "", "", "", "", "", "", "", "", "", "eleventh"}, "11:eleventh"},
	} {
		if tag, value := (&Zone{Key: tt.keys}).key(repl); tag+value != tt.want || (tag == "") != (value == "") {
			t.Errorf("key(%q) = %q, %q; want %q", tt.keys, tag, value, tt.want)
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

// The limit headers carry the decision's numbers, one value each, unless a
// zone with less budget left was announced already.
func TestSetLimitHeaders(t *testing.T) {
	hdr := http.Header{}
	setLimitHeaders(hdr, ratelimit.Decision{Allowed: true, Limit: 1000000000, Remaining: 0, Reset: time.Unix(1796500000, 0)})
	want := http.Header{
		"X-Ratelimit-Limit":     {"1000000000"},
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {"1796500000"},
	}
	if !reflect.DeepEqual(hdr, want) {
		t.Errorf("headers %v, want %v", hdr, want)
	}
	setLimitHeaders(hdr, ratelimit.Decision{Allowed: true, Limit: 30, Remaining: 12, Reset: time.Unix(1796500060, 0)})
	if !reflect.DeepEqual(hdr, want) {
		t.Errorf("a zone with more budget left replaced the headers: %v", hdr)
	}
	hdr = http.Header{"X-Ratelimit-Remaining": {"40"}}
	setLimitHeaders(hdr, ratelimit.Decision{Allowed: true, Limit: 30, Remaining: 12, Reset: time.Unix(7, 0)})
	if got := hdr.Get("X-RateLimit-Limit") + " " + hdr.Get("X-RateLimit-Remaining") + " " + hdr.Get("X-RateLimit-Reset"); got != "30 12 7" {
		t.Errorf("headers %q, want 30 12 7", got)
	}
}
