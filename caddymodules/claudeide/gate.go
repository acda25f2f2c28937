package claudeide

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/ideticket"
	"github.com/claude-gateway/claude-gateway/origin"
)

func init() {
	caddy.RegisterModule(Gate{})
}

// Gate runs on the IDE host, after `claude_auth`, where its start and
// callback paths are public. claude_auth's `login_url` there is the app
// host's `claude_ide_signon`, which sends a browser without a state to the start path
// (or it may be the start path itself, one redirect shorter).
//
//   - `GET <start_path>?next=…` starts a sign-on: it gives the browser a
//     random nonce in a host-only state cookie and redirects to the app
//     host's `claude_ide_signon` with only the nonce's binding (its SHA-256),
//     which it stores in the ticket. A browser already signed in here goes
//     straight to next.
//   - `GET <callback_path>?ticket=…` redeems a ticket issued by the app host's
//     `claude_ide_signon` for this host's origin, provided the browser's
//     state cookie is the one the ticket is bound to; it then sets this
//     host's own access cookie (host-only, HttpOnly, Secure) with an IDE
//     token of the same user and login session (type "ide", its own
//     audience: valid on the IDE host only, never on the app host), clears
//     the state cookie and redirects to the path the visitor asked for. An unknown, expired or replayed ticket,
//     or one from a sign-on another browser started (login CSRF), gets 403
//     and no cookie; the ticket is spent either way.
//   - Every other request passes on without the gateway's cookies (and the
//     state cookie), so code-server never sees a token, provided claude_auth
//     verified an IDE token for it (`token ide`); anything else is a
//     configuration error, answered 500 and logged, so that an app token
//     never opens the IDE host.
type Gate struct {
	// SignOnURL is the app host's `claude_ide_signon` URL, such as
	// https://example.com/auth/ide. Placeholders are expanded. Required.
	SignOnURL string `json:"signon_url,omitempty"`

	// HandoffURL is SignOnURL's former name, used when SignOnURL is empty so
	// that configs written with it still load.
	//
	// Deprecated: use SignOnURL.
	HandoffURL string `json:"handoff_url,omitempty"`

	// StartPath is where sign-ons start, the `start_path` of the app host's
	// claude_ide_signon. Default: /auth/ide/start.
	StartPath string `json:"start_path,omitempty"`

	// CallbackPath is where tickets are redeemed. Default: /auth/ide/callback.
	CallbackPath string `json:"callback_path,omitempty"`

	// StateTTL is how long the state cookie of a started sign-on lives: the
	// ticket's lifetime plus the time to sign in on the app host on the way.
	// Default: 5m.
	StateTTL caddy.Duration `json:"state_ttl,omitempty"`

	// StripCookies are the cookies removed before the request goes on.
	// Default: the gateway's access and refresh cookies.
	StripCookies []string `json:"strip_cookies,omitempty"`

	// CookieSameSite is the SameSite attribute of the IDE host's cookie:
	// "lax" (default; the app and IDE hosts are one site, as app.example.com
	// and ide.example.com are), "strict", or "none" when the browser sees the
	// two hosts as different sites (localhost and ide.localhost are). A "none"
	// cookie is also Partitioned (CHIPS): browsers that block third-party
	// cookies still keep it for the IDE iframe inside the app, and only there.
	CookieSameSite string `json:"cookie_same_site,omitempty"`

	sameSite      http.SameSite
	stateSameSite http.SameSite
	signOnURL     string
	strip         []string
	tickets       *ideticket.Store
	auth          *auth.Service
	logger        *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_ide_gate",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Provision sets defaults and takes the `claude` app's auth service and
// the ticket store.
func (g *Gate) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	if g.StartPath == "" {
		g.StartPath = DefaultStartPath
	}
	if g.CallbackPath == "" {
		g.CallbackPath = DefaultCallbackPath
	}
	if g.StateTTL == 0 {
		g.StateTTL = caddy.Duration(DefaultStateTTL)
	}
	if g.StateTTL < 0 {
		return fmt.Errorf("claude_ide_gate: state_ttl %s is negative", time.Duration(g.StateTTL))
	}
	if len(g.StripCookies) == 0 {
		g.StripCookies = claudeauth.CookieNames
	}
	// The state cookie never reaches code-server, whatever the list says.
	g.strip = append(append([]string(nil), g.StripCookies...), StateCookie)
	var err error
	if g.SignOnURL == "" {
		g.SignOnURL = g.HandoffURL
	}
	if g.signOnURL, err = signOnURL(caddy.NewReplacer().ReplaceAll(g.SignOnURL, "")); err != nil {
		return fmt.Errorf("claude_ide_gate: %w", err)
	}
	// The state cookie must come back on the callback, a top-level or
	// iframe navigation that arrives from the app host: Lax does between
	// hosts of one site, Strict might not; None when they are two sites.
	switch strings.ToLower(g.CookieSameSite) {
	case "", "lax":
		g.sameSite, g.stateSameSite = http.SameSiteLaxMode, http.SameSiteLaxMode
	case "strict":
		g.sameSite, g.stateSameSite = http.SameSiteStrictMode, http.SameSiteLaxMode
	case "none":
		g.sameSite, g.stateSameSite = http.SameSiteNoneMode, http.SameSiteNoneMode
	default:
		return fmt.Errorf("claude_ide_gate: cookie_same_site %q: want lax, strict or none", g.CookieSameSite)
	}
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	if g.tickets, err = ideticket.NewStore(app.DB(), 0); err != nil {
		return fmt.Errorf("claude_ide_gate: %w", err)
	}
	if g.auth, err = app.Auth(); err != nil {
		return err
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case g.CallbackPath:
		return g.redeem(w, r)
	case g.StartPath:
		return g.start(w, r)
	}
	if !g.ideTokenVerified(r) {
		g.logger.Error("request without an IDE token's identity refused: put claude_auth with `token ide` before claude_ide_gate",
			zap.String("uri", r.URL.Path))
		return caddyhttp.Error(http.StatusInternalServerError, errors.New("claude_ide_gate: no IDE token was verified for the request"))
	}
	claudeauth.StripCookies(r, g.strip)
	return next.ServeHTTP(w, r)
}

// ideTokenVerified reports whether claude_auth verified an IDE token for r.
func (g *Gate) ideTokenVerified(r *http.Request) bool {
	if _, ok := identity.FromContext(r.Context()); !ok {
		return false
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return false
	}
	typ, _ := repl.GetString(claudeauth.PlaceholderTokenType)
	return typ == claudeauth.TokenIDE
}

func (g *Gate) redeem(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return claudeerror.Error(apierror.MethodNotAllowed.Err())
	}
	self, err := origin.Canonical(origin.RequestOrigin(r))
	if err != nil {
		return claudeerror.Error(apierror.BadRequest.Wrap(err))
	}
	var nonce string
	if c, err := r.Cookie(StateCookie); err == nil {
		nonce = c.Value
	}
	grant, err := g.tickets.Redeem(r.Context(), self, r.URL.Query().Get("ticket"), nonce)
	if errors.Is(err, ideticket.ErrStateMismatch) {
		g.logger.Warn("IDE ticket refused: the sign-on was started by another browser",
			zap.String("client_ip", claudeauth.ClientIP(r)), zap.Bool("state_cookie", nonce != ""))
		return claudeerror.Error(apierror.IDESignOnRefused.Wrap(err))
	}
	if errors.Is(err, ideticket.ErrInvalidTicket) {
		g.logger.Info("IDE ticket refused", zap.String("client_ip", claudeauth.ClientIP(r)))
		return claudeerror.Error(apierror.IDETicketInvalid.Wrap(err))
	}
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	token, claims, err := g.auth.IssueIDE(grant.User, grant.SessionID)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: claudeauth.AccessCookie, Value: token, Path: "/",
		MaxAge:   max(1, int(time.Until(claims.ExpiresAt.Time).Seconds())),
		HttpOnly: true, Secure: true, SameSite: g.sameSite,
		Partitioned: g.sameSite == http.SameSiteNoneMode,
	})
	g.setState(w, "", -1)
	http.Redirect(w, r, claudeauth.SafeNext(grant.Next), http.StatusFound)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gate)(nil)
)
