package origin

import (
	"net/http"
	"testing"
)

// BenchmarkRequestChecks is the per-request work claude_origin does for a
// cookie-authenticated POST from a listed origin: the WebSocket and CSRF
// checks and the CORS headers.
func BenchmarkRequestChecks(b *testing.B) {
	l, err := NewList(app, "https://admin.example.com,https://partner.example.org:8443")
	if err != nil {
		b.Fatal(err)
	}
	p := &Policy{List: l, AuthCookies: []string{"__Host-claude_access", "__Host-claude_refresh"}}
	r := request(http.MethodPost, "/api/sessions", map[string]string{
		"Origin": "https://partner.example.org:8443", "Cookie": "theme=dark; __Host-claude_access=x",
	})
	b.ReportAllocs()
	for b.Loop() {
		h := http.Header{}
		if p.CheckWebSocket(r) != nil || p.CheckCSRF(r) != nil {
			b.Fatal("refused")
		}
		p.CORS(h, r)
	}
}
