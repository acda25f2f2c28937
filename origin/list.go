// Package origin decides which web origins may talk to the gateway with a
// user's credentials. One allow-list feeds three checks: CORS (which origins may
// read credentialed responses), CSRF (which origins may send a
// cookie-authenticated, state-changing request) and WebSocket (which origins
// may open a socket, against cross-site WebSocket hijacking).
//
// Origins are compared exactly as browsers serialize them,
// scheme://host[:port]: no wildcards, no suffix matching, and the opaque
// origin "null" is never allowed.
package origin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// List is an immutable set of allowed origins. The zero value allows nothing.
type List struct {
	set     map[string]struct{}
	ordered []string
}

// NewList returns the list made of the app origin and the allowed ones. Each
// entry may itself be a comma- or space-separated list, as ALLOWED_ORIGINS is.
// The app origin is required and always in the list.
func NewList(app string, allowed ...string) (*List, error) {
	if strings.TrimSpace(app) == "" {
		return nil, errors.New("origin: the app origin is required")
	}
	l := &List{set: make(map[string]struct{})}
	for _, entry := range append([]string{app}, allowed...) {
		for _, raw := range Split(entry) {
			o, err := Canonical(raw)
			if err != nil {
				return nil, err
			}
			if _, dup := l.set[o]; !dup {
				l.set[o] = struct{}{}
				l.ordered = append(l.ordered, o)
			}
		}
	}
	return l, nil
}

// Split cuts a comma- or space-separated list of origins into its entries,
// dropping empty ones.
func Split(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n'
	})
}

// Allows reports whether origin, as sent in an Origin header, is in the list.
// An origin that is not a well-formed scheme://host[:port] (including "null")
// is never allowed.
func (l *List) Allows(origin string) bool {
	if l == nil || origin == "" {
		return false
	}
	if _, ok := l.set[origin]; ok { // browsers send the canonical form
		return true
	}
	o, err := Canonical(origin)
	if err != nil {
		return false
	}
	_, ok := l.set[o]
	return ok
}

// Origins returns the origins of the list in the order they were given, the
// app origin first.
func (l *List) Origins() []string {
	if l == nil {
		return nil
	}
	return append([]string(nil), l.ordered...)
}

// Canonical returns origin in its browser serialization: lower-case scheme
// and host, no default port. It refuses anything that is not exactly
// http(s)://host[:port] (a path other than "/", a query, a fragment, user
// information, a wildcard) and the opaque origin "null".
func Canonical(origin string) (string, error) {
	if origin == "null" {
		return "", errors.New(`origin: "null" is an opaque origin and is never allowed`)
	}
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("origin: %q: %w", origin, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("origin: %q: scheme must be http or https", origin)
	case u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "", fmt.Errorf("origin: %q: want only scheme://host[:port]", origin)
	case u.Hostname() == "":
		return "", fmt.Errorf("origin: %q: no host", origin)
	case strings.ContainsAny(u.Host, "*\\ %"):
		return "", fmt.Errorf("origin: %q: wildcards and escapes are not allowed; list each origin", origin)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), port), nil
	}
	return scheme + "://" + host, nil
}
