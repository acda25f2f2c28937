// Package claudeide signs browsers in to the IDE host (code-server) with the
// session they already have on the app host: the IDE host's `claude_ide_gate` gives a
// visitor without a cookie a state nonce in a cookie and sends them, with the
// nonce's hash, to the app host's `claude_ide_signon`, which (after a login
// when needed) issues a one-time ticket bound to that hash and redirects back
// to the gate, which redeems the ticket, in the browser holding the nonce
// only, for a host-only cookie of the IDE host's own and returns the visitor
// to the page they asked for. The gate
// also removes the gateway's cookies from requests before code-server sees them.
package claudeide

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/ideticket"
	"github.com/claude-gateway/claude-gateway/origin"
)

func init() {
	caddy.RegisterModule(SignOn{})
}

// Default paths of the sign-on.
const (
	// DefaultSignOnPath is where the app host starts a sign-on.
	DefaultSignOnPath = "/auth/ide"
	// DefaultStartPath is where the IDE host starts a sign-on.
	DefaultStartPath = "/auth/ide/start"
	// DefaultCallbackPath is where the IDE host redeems a ticket.
	DefaultCallbackPath = "/auth/ide/callback"
	// DefaultLoginPath is the app host's login page.
	DefaultLoginPath = "/auth/login"
	// MaxSignOns is how many tickets one user may get within a ticket
	// lifetime; more means a redirect loop, which is then stopped.
	MaxSignOns = 10
)

// SignOn runs on the app host. `GET <path>?next=<IDE path>&state=<binding>`
// from a browser signed in on the app host issues a ticket (single use, valid
// for TicketTTL) and redirects to the IDE host's callback with it; a browser
// not signed in is sent to the login page first and comes back here
// afterwards. The ticket is bound to IDEOrigin, the user, the login session
// (so logging out on the app host also ends the IDE session) and the state,
// the binding of the nonce the IDE host's `claude_ide_gate` gave the browser
// that started the sign-on, so that only that browser can redeem it. A
// request without a well-formed state gets no ticket: it is sent to the IDE
// host's start path to get one. Other paths pass to the next handler.
type SignOn struct {
	// IDEOrigin is the origin of the IDE host, scheme://host[:port].
	// Placeholders are expanded.
	IDEOrigin string `json:"ide_origin,omitempty"`

	// Path is where sign-ons start on the app host. Default: /auth/ide.
	Path string `json:"path,omitempty"`

	// StartPath is the IDE host's sign-on start. Default: /auth/ide/start.
	StartPath string `json:"start_path,omitempty"`

	// CallbackPath is the IDE host's redemption path. Default: /auth/ide/callback.
	CallbackPath string `json:"callback_path,omitempty"`

	// LoginPath is the app host's login page. Default: /auth/login.
	LoginPath string `json:"login_path,omitempty"`

	// TicketTTL is how long a ticket may wait for its redemption (at most
	// 60s). Default: 30s.
	TicketTTL caddy.Duration `json:"ticket_ttl,omitempty"`

	ideOrigin string
	tickets   *ideticket.Store
	auth      *auth.Service
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (SignOn) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_ide_signon",
		New: func() caddy.Module { return new(SignOn) },
	}
}

// Provision sets defaults and takes the `claude` app's auth service and
// the ticket store.
func (h *SignOn) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Path == "" {
		h.Path = DefaultSignOnPath
	}
	if h.StartPath == "" {
		h.StartPath = DefaultStartPath
	}
	if h.CallbackPath == "" {
		h.CallbackPath = DefaultCallbackPath
	}
	if h.LoginPath == "" {
		h.LoginPath = DefaultLoginPath
	}
	ide := caddy.NewReplacer().ReplaceAll(h.IDEOrigin, "")
	if ide == "" {
		return errors.New("claude_ide_signon: ide_origin is required: set it to the IDE host's origin, such as https://ide.example.com")
	}
	o, err := origin.Canonical(ide)
	if err != nil {
		return fmt.Errorf("claude_ide_signon: ide_origin: %w", err)
	}
	h.ideOrigin = o
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	if h.tickets, err = ideticket.NewStore(app.DB(), time.Duration(h.TicketTTL)); err != nil {
		return fmt.Errorf("claude_ide_signon: %w", err)
	}
	if h.auth, err = app.Auth(); err != nil {
		return err
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *SignOn) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path != h.Path {
		return next.ServeHTTP(w, r)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return claudeerror.Error(apierror.MethodNotAllowed.Err())
	}
	noStore(w)
	target := claudeauth.SafeNext(r.URL.Query().Get("next"))
	if len(target) > ideticket.MaxNextLength {
		target = "/" // a ticket cannot carry it: land on the IDE's start page
	}
	// Only the IDE host can start a sign-on: it holds the browser's nonce.
	state := r.URL.Query().Get("state")
	if !ideticket.ValidBinding(state) {
		http.Redirect(w, r, h.ideOrigin+h.StartPath+"?next="+url.QueryEscape(target), http.StatusFound)
		return nil
	}
	claims, _, err := claudeauth.UserFromRequest(h.auth, r)
	if err != nil {
		// Log in on the app host, then come back here.
		back := h.Path + "?next=" + url.QueryEscape(target) + "&state=" + state
		http.Redirect(w, r, h.LoginPath+"?next="+url.QueryEscape(back), http.StatusFound)
		return nil
	}
	// A browser that does not keep the IDE host's cookie (third-party cookies
	// blocked) would bounce between the hosts forever; stop it with an answer.
	if n, err := h.tickets.Recent(r.Context(), claims.Subject); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	} else if n >= MaxSignOns {
		h.logger.Warn("IDE sign-on loop stopped: the browser does not keep the IDE cookie", zap.String("user", claims.Subject))
		w.Header().Set("Retry-After", strconv.Itoa(int(h.tickets.TTL().Seconds())))
		return claudeerror.Error(apierror.IDECookieRefused.Err())
	}
	ticket, err := h.tickets.Issue(r.Context(), h.ideOrigin, ideticket.Grant{User: claims.User(), SessionID: claims.SessionID, Next: target, State: state})
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if c := h.logger.Check(zap.DebugLevel, "IDE ticket issued"); c != nil {
		c.Write(zap.String("user", claims.Subject), zap.String("ide", h.ideOrigin))
	}
	http.Redirect(w, r, h.ideOrigin+h.CallbackPath+"?ticket="+url.QueryEscape(ticket), http.StatusFound)
	return nil
}

// noStore keeps sign-on answers out of caches and Referer headers.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// Interface guards
var (
	_ caddy.Provisioner           = (*SignOn)(nil)
	_ caddyhttp.MiddlewareHandler = (*SignOn)(nil)
)
