package claudeauth

import (
	"net/http"
	"time"

	"github.com/claude-gateway/claude-gateway/auth"
)

// The gateway's cookies. The access cookie is host-only (`__Host-`: Secure,
// Path=/, no Domain), so the app host and the IDE host each hold their own.
// The refresh cookie is scoped to /api/auth, which `__Host-` forbids, so it
// carries the `__Secure-` prefix instead.
const (
	// AccessCookie holds the access token for browsers, iframes and WebSockets.
	AccessCookie = "__Host-claude_access"
	// RefreshCookie holds the refresh token; browsers send it to RefreshCookiePath only.
	RefreshCookie = "__Secure-claude_refresh"
	// RefreshCookiePath is the refresh cookie's Path.
	RefreshCookiePath = "/api/auth"
)

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
// Path=/api/auth).
func SetRefreshCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: RefreshCookie, Value: token, Path: RefreshCookiePath,
		MaxAge: maxAge(expires), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
}

// SetSessionCookies sets both cookies of a session.
func SetSessionCookies(w http.ResponseWriter, s auth.Session) {
	SetAccessCookie(w, s.AccessToken, s.Access.ExpiresAt.Time)
	if s.RefreshToken != "" {
		SetRefreshCookie(w, s.RefreshToken, s.RefreshExpires)
	}
}

// ClearSessionCookies tells the browser to drop both cookies.
func ClearSessionCookies(w http.ResponseWriter) {
	for _, c := range []*http.Cookie{
		{Name: AccessCookie, Path: "/"},
		{Name: RefreshCookie, Path: RefreshCookiePath},
	} {
		c.MaxAge, c.HttpOnly, c.Secure, c.SameSite = -1, true, true, http.SameSiteLaxMode
		http.SetCookie(w, c)
	}
}

func maxAge(expires time.Time) int {
	s := int(time.Until(expires) / time.Second)
	if s < 1 {
		return -1
	}
	return s
}
