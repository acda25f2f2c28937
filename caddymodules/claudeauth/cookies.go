package claudeauth

import (
	"net/http"
	"strings"
	"time"

	"github.com/claude-gateway/claude-gateway/auth"
)

// The gateway's cookies. Both are host-only (`__Host-`: Secure, Path=/, no
// Domain), so the app host and the IDE host each hold their own, and no
// sibling host (the IDE host serves user-controlled pages) can plant one for
// the parent domain: a `__Secure-` cookie could be, and a planted refresh
// token would sign the victim in as the attacker. As `__Host-` requires
// Path=/, the refresh cookie comes with every request to the app host;
// claude_auth removes it before anything goes upstream.
const (
	// AccessCookie holds the access token for browsers, iframes and WebSockets.
	AccessCookie = "__Host-claude_access"
	// RefreshCookie holds the refresh token, read only by claude_auth_api.
	RefreshCookie = "__Host-claude_refresh"
	// DeviceCookie holds the device token of a browser that signed in on
	// the app host (long-lived, kept after logout), read only by the login
	// handlers: it exempts the browser from its account's username ban. It
	// authenticates nothing.
	DeviceCookie = "__Host-claude_device"
)

// credentialCookies are the cookies claude_auth removes before upstreams:
// the gateway's own and the device cookie.
var credentialCookies = []string{AccessCookie, RefreshCookie, DeviceCookie}

// deviceCookieMaxAge is the device cookie's lifetime in seconds.
const deviceCookieMaxAge = auth.DeviceTTLDays * 24 * 60 * 60

// CookieNames lists the gateway's own cookies, for handlers that must not let
// them reach an upstream (code-server).
var CookieNames = []string{AccessCookie, RefreshCookie}

// SetAccessCookie sets the access cookie (HttpOnly, Secure, SameSite=Lax),
// expiring with the token.
func SetAccessCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: AccessCookie, Value: token, Path: "/",
		MaxAge: maxAge(expires), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
}

// SetRefreshCookie sets the refresh cookie (HttpOnly, Secure, SameSite=Lax,
// Path=/).
func SetRefreshCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: RefreshCookie, Value: token, Path: "/",
		MaxAge: maxAge(expires), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
}

// SetSessionCookies sets both cookies of a session, and the device cookie
// after a login.
func SetSessionCookies(w http.ResponseWriter, s auth.Session) {
	SetAccessCookie(w, s.AccessToken, s.Access.ExpiresAt.Time)
	if s.RefreshToken != "" {
		SetRefreshCookie(w, s.RefreshToken, s.RefreshExpires)
	}
	if s.Device != "" {
		http.SetCookie(w, &http.Cookie{
			Name: DeviceCookie, Value: s.Device, Path: "/",
			MaxAge: deviceCookieMaxAge, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		})
	}
}

// DeviceToken is the device token r presents in the device cookie, or "".
// Several device cookies present none.
func DeviceToken(r *http.Request) string {
	cs := r.CookiesNamed(DeviceCookie)
	if len(cs) != 1 {
		return ""
	}
	return cs[0].Value
}

// ClearSessionCookies tells the browser to drop both cookies.
func ClearSessionCookies(w http.ResponseWriter) {
	for _, c := range []*http.Cookie{
		{Name: AccessCookie, Path: "/"},
		{Name: RefreshCookie, Path: "/"},
	} {
		c.MaxAge, c.HttpOnly, c.Secure, c.SameSite = -1, true, true, http.SameSiteLaxMode
		http.SetCookie(w, c)
	}
}

// StripCookies removes the named cookies from r's Cookie headers and keeps
// every other cookie exactly as the browser sent it.
func StripCookies(r *http.Request, names []string) {
	headers := r.Header.Values("Cookie")
	if len(headers) == 0 {
		return
	}
	drop := make(map[string]bool, len(names))
	for _, n := range names {
		drop[n] = true
	}
	var kept []string
	for _, h := range headers {
		for _, part := range strings.Split(h, ";") {
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			if part != "" && !drop[strings.TrimSpace(name)] {
				kept = append(kept, part)
			}
		}
	}
	r.Header.Del("Cookie")
	if len(kept) > 0 {
		r.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}

func maxAge(expires time.Time) int {
	s := int(time.Until(expires) / time.Second)
	if s < 1 {
		return -1
	}
	return s
}
