package claudeauth

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// What an upstream receives from claude_auth: the identity headers it sets,
// never the gateway's credentials, never a client's word for who it is or
// where it connects from.

// guardedHeaders are the request headers, in lower case with '-', that the
// gateway sets or vouches for on the way upstream. A client's Connection
// header may not name them: a proxy drops what Connection names.
var guardedHeaders = map[string]bool{
	"authorization":     true,
	"cookie":            true,
	"x-real-ip":         true,
	"forwarded":         true,
	"x-forwarded-for":   true,
	"x-forwarded-host":  true,
	"x-forwarded-proto": true,
}

// spoofableHeaders are the guarded headers a client may not send in another
// spelling, with '_' for '-' (servers that map headers to CGI-style names
// read both as one): the gateway sets their '-' form, or removes it.
var spoofableHeaders = []string{"x-real-ip", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"}

// normalHeaderName is name in lower case with '_' as '-'.
func normalHeaderName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// isGuardedHeader reports whether a Connection option names a header the
// gateway sets or vouches for, in any case or spelling.
func isGuardedHeader(name string) bool {
	return isIdentityHeader(name) || guardedHeaders[normalHeaderName(name)]
}

// GuardConnectionHeader removes from r's Connection header the options that
// name a guarded header (identity headers, Authorization, Cookie, X-Real-IP,
// Forwarded, X-Forwarded-*), so that the proxy, which drops the headers
// Connection names, keeps them. Other options (Upgrade, keep-alive) stay.
func GuardConnectionHeader(r *http.Request) {
	values, ok := r.Header["Connection"]
	if !ok {
		return
	}
	var kept []string
	for _, v := range values {
		for opt := range strings.SplitSeq(v, ",") {
			if opt = textproto.TrimString(opt); opt != "" && !isGuardedHeader(opt) {
				kept = append(kept, opt)
			}
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Connection")
		return
	}
	r.Header["Connection"] = []string{strings.Join(kept, ", ")}
}

// StripCredentials removes the gateway's cookies and a Bearer Authorization
// header from r: upstreams get the identity headers, not the token.
func StripCredentials(r *http.Request) {
	StripCookies(r, credentialCookies)
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		r.Header.Del("Authorization")
	}
}

// setClientAddress replaces what a client says about its address: X-Real-IP
// becomes the client IP Caddy determined (honouring the server's
// trusted_proxies), its value kept in slot (length and capacity 1, which
// nothing else may hold), Forwarded is removed unless the connection comes
// from a trusted proxy, and spellings of these and X-Forwarded-* with '_'
// are removed (reverse_proxy sets X-Forwarded-* itself).
func setClientAddress(r *http.Request, slot []string) {
	for name := range r.Header {
		if strings.IndexByte(name, '_') < 0 {
			continue
		}
		n := normalHeaderName(name)
		for _, s := range spoofableHeaders {
			if n == s {
				delete(r.Header, name)
			}
		}
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); !trusted {
		r.Header.Del("Forwarded")
	}
	if ip := ClientIP(r); ip != "" {
		slot[0] = ip
		r.Header["X-Real-Ip"] = slot
	} else {
		r.Header.Del("X-Real-Ip")
	}
}
