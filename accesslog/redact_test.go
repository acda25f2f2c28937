package accesslog

import "testing"

func TestRedactorURI(t *testing.T) {
	r := NewRedactor(DefaultQueryNames)
	for _, tt := range []struct{ in, want string }{
		{"/api/things", "/api/things"},
		{"/api/things?", "/api/things?"},
		{"/api/things?a=1&b=2", "/api/things?a=1&b=2"},
		{"/ws?token=abc", "/ws?token=REDACTED"},
		{"/ws?a=1&access_token=abc&b=2", "/ws?a=1&access_token=REDACTED&b=2"},
		{"/x?token", "/x?token=REDACTED"},
		{"/x?token=a&token=b", "/x?token=REDACTED&token=REDACTED"},
		{"/x?%74oken=a", "/x?%74oken=REDACTED"},
		{"/x?Ticket=a", "/x?Ticket=REDACTED"},
		{"/x?pass+word=a&password=b", "/x?pass+word=a&password=REDACTED"},
		{"/x?tokens=a&my_token=b", "/x?tokens=a&my_token=b"},
		{"https://ide.example.com/auth/ide/callback?ticket=t1&state=s", "https://ide.example.com/auth/ide/callback?ticket=REDACTED&state=s"},
		{"/x?ticket=a#frag", "/x?ticket=REDACTED"},
		{"/x?&&refresh_token=a&", "/x?&&refresh_token=REDACTED&"},
	} {
		if got := r.URI(tt.in); got != tt.want {
			t.Errorf("URI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkRedactorURIWithoutSecret(b *testing.B) {
	r := NewRedactor(DefaultQueryNames)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.URI("/api/sessions/session-1/files/src/main.py?download=1&v=2")
	}
}
