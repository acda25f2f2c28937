package claudeauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/apierror"
)

func TestSafeNext(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/projects/1?tab=files", "/projects/1?tab=files"},
		{"/", "/"},
		{"/%5Cevil.example", "/%5Cevil.example"},
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example", "/"},
		{"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"", "/"},
		{"/ok\r\nLocation: https://evil.example", "/"},
		{"/\tevil", "/"},
	}
	for _, tc := range cases {
		if got := SafeNext(tc.in); got != tc.want {
			t.Errorf("SafeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header["X-Auth-User-Id"] = []string{"a"}
	r.Header["x-auth-user-name"] = []string{"b"} // non-canonical key, as a raw map write could leave it
	r.Header["X_Auth_User_Role"] = []string{"c"}
	r.Header["X-Auth-User-Anything"] = []string{"d"}
	r.Header["X-Auth-Username"] = []string{"kept"}
	r.Header["Accept"] = []string{"kept"}
	StripIdentityHeaders(r)
	if len(r.Header) != 2 || r.Header.Get("Accept") != "kept" || r.Header.Get("X-Auth-Username") != "kept" {
		t.Fatalf("after strip: %v", r.Header)
	}
}

func TestTokenFromRequest(t *testing.T) {
	cases := []struct {
		name                string
		header              http.Header
		url                 string
		wantTok, wantMethod string
	}{
		{"bearer", http.Header{"Authorization": {"Bearer abc"}}, "/", "abc", MethodBearer},
		{"bearer, any case", http.Header{"Authorization": {"bearer abc"}}, "/", "abc", MethodBearer},
		{"cookie", http.Header{"Cookie": {AccessCookie + "=def"}}, "/", "def", MethodCookie},
		{"bearer wins over cookie", http.Header{"Authorization": {"Bearer abc"}, "Cookie": {AccessCookie + "=def"}}, "/", "abc", MethodBearer},
		{"basic is no token, and hides no cookie fallback", http.Header{"Authorization": {"Basic eDp5"}, "Cookie": {AccessCookie + "=def"}}, "/", "", ""},
		{"query string ignored", nil, "/?access_token=abc&token=abc", "", ""},
		{"other cookie ignored", http.Header{"Cookie": {"claude_access=def"}}, "/", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			tok, method := TokenFromRequest(r)
			if tok != tc.wantTok || method != tc.wantMethod {
				t.Fatalf("got %q %q, want %q %q", tok, method, tc.wantTok, tc.wantMethod)
			}
		})
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name, input string
		want        Handler
		wantErr     bool
	}{
		{"bare", "claude_auth", Handler{}, false},
		{"options", "claude_auth {\n public /api/live /auth/*\n public /x\n login_url https://app.example/auth/login\n}",
			Handler{Public: []string{"/api/live", "/auth/*", "/x"}, LoginURL: "https://app.example/auth/login"}, false},
		{"argument", "claude_auth /x", Handler{}, true},
		{"unknown option", "claude_auth {\n secret abc\n}", Handler{}, true},
		{"public without paths", "claude_auth {\n public\n}", Handler{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (strings.Join(h.Public, " ") != strings.Join(tc.want.Public, " ") || h.LoginURL != tc.want.LoginURL) {
				t.Fatalf("got %+v, want %+v", h, tc.want)
			}
		})
	}
	var api APIHandler
	if err := api.UnmarshalCaddyfile(caddyfile.NewTestDispenser("claude_auth_api {\n access_ttl 5m\n}")); err == nil {
		t.Fatal("claude_auth_api accepted an option")
	}
}

// TestAPIMethods: the session API answers its own methods only. A method
// that merely shares letters with an allowed one ("OST", "EAD") is 405,
// never served as the real one.
func TestAPIMethods(t *testing.T) {
	cases := []struct{ method, path string }{
		{"OST", "/api/auth/login"},
		{"P", "/api/auth/logout"},
		{"OS", "/api/auth/refresh"},
		{"GET", "/api/auth/login"},
		{"ET", "/api/auth/me"},
		{"EAD", "/api/auth/me"},
		{"POST", "/api/auth/me"},
	}
	var h APIHandler // no service: a request that got past the method check would panic
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			w := httptest.NewRecorder()
			err := h.ServeHTTP(w, r, nil)
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" {
				t.Fatalf("error %v, Allow %q: want 405 with Allow", err, w.Header().Get("Allow"))
			}
			if ae := apierror.As(err); ae.Code() != "method_not_allowed" {
				t.Fatalf("code %q, want method_not_allowed", ae.Code())
			}
		})
	}
}
