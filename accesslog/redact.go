// Package accesslog keeps credentials out of the gateway's access log: a
// zapcore.Encoder wrapper that, while the wrapped encoder writes an entry,
// rewrites the few fields that can carry a secret, in the same pass and
// without a regular expression.
package accesslog

import (
	"net/url"
	"strings"
)

// DefaultQueryNames are the query parameters whose values never reach the
// log: tokens that clients may put in a URL (WebSocket and EventSource
// clients cannot send headers), the IDE sign-on ticket, and passwords.
var DefaultQueryNames = []string{"access_token", "refresh_token", "token", "ticket", "password"}

// Redacted replaces a secret value.
const Redacted = "REDACTED"

// Redactor rewrites the values that must not be logged. Its zero value
// redacts nothing; use NewRedactor.
type Redactor struct {
	names []string
}

// NewRedactor returns a redactor of the query parameters named in names
// (compared without regard to case, and after percent-decoding).
func NewRedactor(names []string) *Redactor {
	return &Redactor{names: append([]string(nil), names...)}
}

// secret reports whether a query parameter's raw name is one of r's.
func (r *Redactor) secret(raw string) bool {
	name := raw
	if strings.ContainsAny(raw, "%+") {
		if n, err := url.QueryUnescape(raw); err == nil {
			name = n
		}
	}
	for _, n := range r.names {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// URI returns uri (a request URI or a URL) with the value of every secret
// query parameter replaced by Redacted. A URI without a query, or without a
// secret in it, is returned as is, without allocating.
func (r *Redactor) URI(uri string) string {
	q := strings.IndexByte(uri, '?')
	if q < 0 {
		return uri
	}
	query := uri[q+1:]
	found := false
	for rest := query; rest != "" && !found; {
		var param string
		param, rest, _ = strings.Cut(rest, "&")
		name, _, _ := strings.Cut(param, "=")
		found = r.secret(name)
	}
	if !found {
		return uri
	}
	var b strings.Builder
	b.Grow(len(uri))
	b.WriteString(uri[:q+1])
	for i, rest, more := 0, query, true; more; i++ {
		var param string
		param, rest, more = strings.Cut(rest, "&")
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, _ := strings.Cut(param, "=")
		if r.secret(name) {
			b.WriteString(name)
			b.WriteString("=" + Redacted)
		} else {
			b.WriteString(param)
		}
	}
	return b.String()
}
