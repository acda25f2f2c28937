// Package claudeauth wires the auth domain package into Caddy: the
// `claude_auth` handler (token check, identity headers) and the
// `claude_auth_api` handler (/api/auth/login, /refresh, /logout, /me). The
// auth service itself is the `claude` app's (claude.App.Auth); other
// handlers (the console, IDE sign-on, the login page) use this package's
// cookie helpers, UserFromRequest and RecordLogin with it.
package claudeauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/requestpath"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Identity headers the handler sends to upstreams. Client-sent copies (and
// look-alikes with underscores, which some servers treat as the same header)
// are removed from every request that passes the handler.
const (
	HeaderUserID   = "X-Auth-User-Id"
	HeaderUserName = "X-Auth-User-Name"
	HeaderUserRole = "X-Auth-User-Role"
)

// Placeholders the handler sets on success.
const (
	PlaceholderUserID   = "http.auth.user.id"
	PlaceholderUserName = "http.auth.user.username"
	PlaceholderUserRole = "http.auth.user.role"
	// PlaceholderMethod is "bearer" or "cookie": how the token came.
	PlaceholderMethod = "http.auth.method"
	// PlaceholderTokenType is the verified token's type: "access" or "ide".
	PlaceholderTokenType = "http.auth.token_type"
)

// Token types a claude_auth handler accepts (its `token` option).
const (
	// TokenAccess is the app's access token: the app host's setting.
	TokenAccess = auth.TokenTypeAccess
	// TokenIDE is the IDE host's token, set by claude_ide_gate when it
	// redeems a ticket: the IDE host's setting.
	TokenIDE = auth.TokenTypeIDE
)

// Handler requires a valid, unrevoked token of its type (Token: the app's
// access token, or the IDE host's token) as Authorization: Bearer or the
// gateway's access cookie (never the query string) on every request except
// the public paths. On success the user goes into the request context
// (identity.FromContext finds it), the placeholders {http.auth.user.id},
// {http.auth.user.username}, {http.auth.user.role}, {http.auth.method} and
// {http.auth.token_type}, and the X-Auth-User-Id/-Name/-Role headers sent upstream. On every
// request, public or not, it removes what an upstream must not get or
// trust: client-sent identity headers, the gateway's cookies and a Bearer
// Authorization header (unless ForwardToken), Connection options naming
// those headers (a proxy would drop them), a client's X-Real-IP (replaced by
// the client IP) and, from an untrusted client, Forwarded.
//
// Without a valid token, a browser navigation (GET or HEAD accepting
// text/html, outside /api/) is redirected to the login page with
// next=<the requested path>; anything else gets 401 with
// `WWW-Authenticate: Bearer error="invalid_token"` and the JSON error envelope.
type Handler struct {
	// Public lists the paths served without a token, in the syntax of Caddy's
	// path matcher (`/api/live`, `/auth/*`), but matched case-sensitively
	// against the request's path as it stands (claude_path first on the
	// route makes it canonical), exactly as upstreams route it. A valid
	// token on a public path still sets the identity; an invalid one is
	// ignored there.
	Public []string `json:"public,omitempty"`

	// ForwardToken passes the verified access token upstream as
	// `Authorization: Bearer <token>`, for backends that verify it
	// themselves. Off by default: upstreams get the identity headers, and
	// neither the gateway's cookies nor a client's Bearer header.
	ForwardToken bool `json:"forward_token,omitempty"`

	// Token is the type of token accepted: "access" (default), the app's
	// access token, for the app host; or "ide", the IDE host's own token,
	// for the IDE host, which then refuses the app's access tokens (it
	// serves user-controlled content and gets least privilege). The app
	// host never accepts an IDE token. Whether it comes as a Bearer token
	// or as the cookie does not change which type is accepted.
	Token string `json:"token,omitempty"`

	// LoginURL is where browser navigations without a valid token are sent,
	// with `next` set to the requested path and query. Placeholders are
	// expanded. Default: "/auth/login".
	LoginURL string `json:"login_url,omitempty"`

	auth   *auth.Service
	public requestpath.Patterns
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the `claude` app's auth service and compiles the public
// paths.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Token == "" {
		h.Token = TokenAccess
	}
	if h.LoginURL == "" {
		h.LoginURL = "/auth/login"
	}
	h.public = requestpath.Patterns(h.Public)
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	h.auth, err = app.Auth()
	return err
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if err := requestpath.Patterns(h.Public).Validate(); err != nil {
		return fmt.Errorf("claude_auth: public: %w", err)
	}
	switch h.Token {
	case TokenAccess, TokenIDE:
	default:
		return fmt.Errorf("claude_auth: token %q: want %q or %q", h.Token, TokenAccess, TokenIDE)
	}
	return nil
}

// StripIdentityHeaders removes client-sent identity headers from r,
// including spellings with '_' for '-' and any case; and, as reverse_proxy
// forwards request trailers, the same names sent as trailers.
func StripIdentityHeaders(r *http.Request) {
	for name := range r.Header {
		if isIdentityHeader(name) {
			delete(r.Header, name)
		}
	}
	// Trailers arrive at the body's end, into this map (nil when the client
	// announced none, and then none are forwarded).
	if r.Trailer != nil && r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerStripper{ReadCloser: r.Body, trailer: r.Trailer}
	}
}

// trailerStripper removes identity fields from the request's trailers when
// its body ends, before reverse_proxy copies them.
type trailerStripper struct {
	io.ReadCloser
	trailer http.Header
}

func (b *trailerStripper) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		for name := range b.trailer {
			if isIdentityHeader(name) {
				delete(b.trailer, name)
			}
		}
	}
	return n, err
}

// identityPrefix starts every identity header name, in lower case.
const identityPrefix = "x-auth-user-"

// isIdentityHeader reports whether name starts with X-Auth-User- in any case,
// with '_' standing for '-'.
func isIdentityHeader(name string) bool {
	if len(name) < len(identityPrefix) {
		return false
	}
	for i := 0; i < len(identityPrefix); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != identityPrefix[i] {
			return false
		}
	}
	return true
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	c, r := requestAuth(r)
	p := &c.presented
	public := h.public.Match(r.URL.Path)
	if p.typ == h.Token {
		// An earlier claude_auth of this route verified this token for the
		// same type, stripped what upstreams must not get and set the
		// identity: only the decision is left.
		return h.decide(w, r, next, p, public)
	}
	StripIdentityHeaders(r)
	StripCredentials(r)
	GuardConnectionHeader(r)
	setClientAddress(r, c.values[3:4:4])
	p.typ = h.Token
	p.claims, p.err = h.authenticate(p.token)
	if p.err == nil {
		c.setIdentity(r, p.claims, p.method)
	}
	return h.decide(w, r, next, p, public)
}

// decide passes r on when its token was good or its path is public, and
// refuses it otherwise.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, p *presented, public bool) error {
	if p.err != nil {
		if public {
			return next.ServeHTTP(w, r)
		}
		if !errors.Is(p.err, ErrNoToken) {
			h.logger.Debug("token refused", zap.Error(p.err), zap.String("method", p.method))
		}
		return h.refuse(w, r)
	}
	if h.ForwardToken {
		r.Header.Set("Authorization", "Bearer "+p.token)
	}
	return next.ServeHTTP(w, r)
}

// authenticate verifies tok; no token at all is ErrNoToken.
func (h *Handler) authenticate(tok string) (*auth.Claims, error) {
	if tok == "" {
		return nil, ErrNoToken
	}
	return h.auth.AuthenticateType(tok, h.Token)
}

// presented is the token a request presented, how, and what the first
// claude_auth of the route found it to be.
type presented struct {
	token, method string
	// typ is the token type it was verified for ("" before that), claims
	// and err the outcome.
	typ    string
	claims *auth.Claims
	err    error
}

// authContext is the request's context from the first claude_auth of its
// route on: one allocation holding the token the request presented and its
// outcome, the verified user (identity.FromContext finds it) and the values
// of the headers sent upstream.
type authContext struct {
	identity.Context
	presented presented
	// values backs X-Auth-User-Id, -Name, -Role and X-Real-Ip, in that order.
	values [4]string
}

// presentedKey is the context key of a request's authContext.
type presentedKey struct{}

// Value returns c for presentedKey, and what the embedded identity context
// holds otherwise.
func (c *authContext) Value(key any) any {
	if _, ok := key.(presentedKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// requestAuth returns the authContext of r, and r with it: the one an earlier
// claude_auth of the route made, or a new one holding the token r presents
// (see TokenFromRequest). The first claude_auth of a route makes it before
// it strips the credentials, so that a later claude_auth on the same route
// (a route may identify the caller first, count the request, then decide)
// decides on the same token without verifying it again.
func requestAuth(r *http.Request) (*authContext, *http.Request) {
	if c, ok := r.Context().Value(presentedKey{}).(*authContext); ok {
		return c, r
	}
	c := new(authContext)
	c.Context.Context = r.Context()
	c.presented.token, c.presented.method = TokenFromRequest(r)
	return c, r.WithContext(c)
}

// setIdentity puts the verified user of claims into c (the context of r),
// the placeholders and the upstream headers of r.
func (c *authContext) setIdentity(r *http.Request, claims *auth.Claims, method string) {
	u := claims.User()
	c.Context.User = u
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(PlaceholderUserID, u.ID)
		repl.Set(PlaceholderUserName, u.Username)
		repl.Set(PlaceholderUserRole, placeholderValue(u.Role))
		repl.Set(PlaceholderMethod, placeholderValue(method))
		repl.Set(PlaceholderTokenType, placeholderValue(claims.Type))
	}
	// The names are canonical; the identity headers were stripped above, so
	// nothing else holds these elements.
	c.values[0], c.values[1], c.values[2] = u.ID, u.Username, u.Role
	r.Header[HeaderUserID] = c.values[0:1:1]
	r.Header[HeaderUserName] = c.values[1:2:2]
	r.Header[HeaderUserRole] = c.values[2:3:3]
}

// knownValues are the placeholder values known in advance (roles, methods,
// token types), made interface values once: setting one allocates nothing.
var knownValues = [...]any{identity.RoleAdmin, identity.RoleUser, MethodBearer, MethodCookie, TokenAccess, TokenIDE}

// placeholderValue returns v as a placeholder value, one of knownValues when
// it is one.
func placeholderValue(v string) any {
	for _, k := range knownValues {
		if k.(string) == v {
			return k
		}
	}
	return v
}

// refuse answers a request without a valid token: a browser loading a page
// is sent to sign in, anything else gets Unauthorized.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request) error {
	if isNavigation(r) {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		target := h.LoginURL
		if repl != nil {
			target = repl.ReplaceKnown(target, "")
		}
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target+sep+"next="+url.QueryEscape(SafeNext(r.URL.RequestURI())), http.StatusFound)
		return nil
	}
	return Unauthorized(w)
}

// Unauthorized sets the Bearer challenge on w and returns the 401
// invalid_token error for claude_error to render.
func Unauthorized(w http.ResponseWriter) error {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	return claudeerror.Error(apierror.InvalidToken.Err())
}

// isNavigation reports whether r is a browser loading a page: GET or HEAD,
// accepting HTML, not under /api/.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api" {
		return false
	}
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// SafeNext returns p when it is a same-origin path (starts with a single "/"
// and no "\"), else "/": `next` must never lead to another site.
func SafeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	return p
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	claude_auth [<matcher>] {
//	    public    <path...>
//	    token     access|ide
//	    login_url <url>
//	    forward_token
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "public":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Public = append(h.Public, args...)
		case "forward_token":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardToken = true
		case "token":
			if !d.AllArgs(&h.Token) {
				return d.ArgErr()
			}
		case "login_url":
			if !d.AllArgs(&h.LoginURL) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown claude_auth option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
