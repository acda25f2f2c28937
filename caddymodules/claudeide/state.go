package claudeide

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/ideticket"
)

// StateCookie is the IDE host's cookie that binds a sign-on to the browser
// that started it. The __Host- prefix makes browsers refuse it unless it is
// Secure, host-only and for Path=/, so no other host of the domain can plant
// one.
const StateCookie = "__Host-claude_ide_state"

// DefaultStateTTL is how long a state cookie lives by default: a ticket's
// lifetime (at most a minute) with room for a sign-in on the app host.
const DefaultStateTTL = 5 * time.Minute

// start begins a sign-on for a browser without the IDE host's cookie: a
// state cookie with a random nonce here, the nonce's binding to the app
// host's claude_ide_signon.
func (g *Gate) start(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return claudeerror.Error(apierror.MethodNotAllowed.Err())
	}
	next := claudeauth.SafeNext(r.URL.Query().Get("next"))
	// claude_auth verified a token of this host (the path is public there):
	// there is nothing to sign in.
	if _, ok := identity.FromContext(r.Context()); ok {
		http.Redirect(w, r, next, http.StatusFound)
		return nil
	}
	// A sign-on already under way in this browser (another tab, the iframe
	// and the page) keeps its nonce, so that its ticket stays good.
	var nonce string
	if c, err := r.Cookie(StateCookie); err == nil && ideticket.ValidNonce(c.Value) {
		nonce = c.Value
	} else if nonce, err = ideticket.NewNonce(); err != nil {
		return err
	}
	g.setState(w, nonce, int(time.Duration(g.StateTTL).Seconds()))
	http.Redirect(w, r, g.signOnURL+"next="+url.QueryEscape(next)+"&state="+ideticket.Binding(nonce), http.StatusFound)
	return nil
}

// setState sets the state cookie to nonce for maxAge seconds; a negative
// maxAge deletes it.
func (g *Gate) setState(w http.ResponseWriter, nonce string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: StateCookie, Value: nonce, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: g.stateSameSite,
		Partitioned: g.stateSameSite == http.SameSiteNoneMode,
	})
}

// signOnURL checks the app host's claude_ide_signon URL and returns it ready
// for a query to be appended (ending in "?" or "&").
func signOnURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("signon_url is required: set it to the app host's claude_ide_signon URL, such as https://example.com/auth/ide")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("signon_url %q: want an absolute http(s) URL without user or fragment", raw)
	}
	switch {
	case u.RawQuery == "" && !strings.HasSuffix(raw, "?"):
		return raw + "?", nil
	case strings.HasSuffix(raw, "?"), strings.HasSuffix(raw, "&"):
		return raw, nil
	default:
		return raw + "&", nil
	}
}
