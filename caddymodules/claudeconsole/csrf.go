package claudeconsole

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/origin"
)

// csrfCookie holds the console's form token. The __Host- prefix makes
// browsers refuse it from any other host (the IDE host included) or path.
const csrfCookie = "__Host-claude_console_csrf"

// maxFormBody bounds a console form's body.
const maxFormBody = 64 << 10

// csrfToken returns the browser's form token, setting a fresh one when it
// has none.
func (q *request) csrfToken() string {
	if c, err := q.r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(q.w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	return tok
}

// checkForm refuses, with 403, a post that did not come from a console page
// of this origin: its Origin (or, without one, Sec-Fetch-Site) must be this
// host's, and its `csrf` field must match the browser's token cookie.
func (q *request) checkForm() error {
	r := q.r
	if o := r.Header.Get("Origin"); o != "" {
		if !origin.SameOrigin(r, o) {
			return caddyhttp.Error(http.StatusForbidden, nil)
		}
	} else if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		return caddyhttp.Error(http.StatusForbidden, nil)
	}
	r.Body = http.MaxBytesReader(q.w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	c, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		return caddyhttp.Error(http.StatusForbidden, nil)
	}
	return nil
}
