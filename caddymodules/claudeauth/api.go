package claudeauth

import (
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
)

func init() {
	caddy.RegisterModule(APIHandler{})
}

// maxLoginBody bounds the JSON body of a login request.
const maxLoginBody = 16 << 10

// APIHandler serves the session API; other paths pass to the next handler.
//
//   - POST /api/auth/login {"username","password"} (application/json): 200
//     {"access_token","token_type":"Bearer","expires_in"} and the access and
//     refresh cookies; 401 invalid_credentials; 429 + Retry-After while the
//     username or the client address is banned after repeated failures.
//   - POST /api/auth/refresh (refresh cookie): rotates the refresh token and
//     answers like login; re-use of a rotated token revokes its session.
//   - POST /api/auth/logout: 204; the presented access token, its session and
//     the refresh cookie's session are revoked at once; cookies cleared.
//   - GET /api/auth/me: {"id","username","role"} of the presented token.
type APIHandler struct {
	auth   *auth.Service
	audit  *audit.Writer
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_auth_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// Provision takes the `claude` app's auth service and audit trail.
func (h *APIHandler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	h.audit = app.Audit()
	h.auth, err = app.Auth()
	return err
}

// TokenResponse is the body of a successful login or refresh.
type TokenResponse struct {
	// AccessToken is the access JWT (also set as the access cookie).
	AccessToken string `json:"access_token"`
	// TokenType is always "Bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is the access token's remaining lifetime in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var serve func(http.ResponseWriter, *http.Request) error
	allow := []string{http.MethodPost}
	switch r.URL.Path {
	case "/api/auth/login":
		serve = h.login
	case "/api/auth/refresh":
		serve = h.refresh
	case "/api/auth/logout":
		serve = h.logout
	case "/api/auth/me":
		serve, allow = h.me, []string{http.MethodGet, http.MethodHead}
	default:
		return next.ServeHTTP(w, r)
	}
	StripIdentityHeaders(r)
	if !slices.Contains(allow, r.Method) {
		list := strings.Join(allow, ", ")
		w.Header().Set("Allow", list)
		return claudeerror.Error(apierror.MethodNotAllowed.Err())
	}
	if err := serve(w, r); err != nil {
		return claudeerror.Error(err)
	}
	return nil
}

func (h *APIHandler) login(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	// JSON only: a cross-site page cannot send it without a CORS preflight, so
	// no other site can sign a visitor in to an account of its choosing.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return apierror.UnsupportedMediaType.Err()
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err := dec.Decode(&body); err != nil || body.Username == "" || body.Password == "" {
		return apierror.InvalidRequest.Wrap(err)
	}
	sess, err := h.auth.LoginWithDevice(r.Context(), body.Username, body.Password, ClientIP(r), DeviceToken(r))
	RecordLogin(h.audit, r, body.Username, "api", &sess, err)
	if err != nil {
		return LoginError(w, err)
	}
	h.logger.Info("login", zap.String("user_id", sess.Access.Subject), zap.String("username", sess.Access.Username))
	writeSession(w, sess)
	return nil
}

// LoginError turns an error of auth.Service.Login into the API's answer:
// 429 + Retry-After for a ban, 401 invalid_credentials for bad credentials.
// It sets Retry-After on w itself and returns the *apierror.Error to answer;
// any other error is returned as it is.
func LoginError(w http.ResponseWriter, err error) error {
	var banned *auth.BannedError
	switch {
	case errors.As(err, &banned):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(banned.RetryAfter.Seconds()))))
		return apierror.TooManyFailedLogins.Wrap(err)
	case errors.Is(err, auth.ErrInvalidCredentials):
		return apierror.InvalidCredentials.Wrap(err)
	}
	return err
}

func writeSession(w http.ResponseWriter, sess auth.Session) {
	SetSessionCookies(w, sess)
	apierror.WriteJSON(w, http.StatusOK, TokenResponse{
		AccessToken: sess.AccessToken,
		TokenType:   "Bearer",
		ExpiresIn:   int64(time.Until(sess.Access.ExpiresAt.Time).Round(time.Second) / time.Second),
	})
}

func (h *APIHandler) refresh(w http.ResponseWriter, r *http.Request) error {
	cs := r.CookiesNamed(RefreshCookie)
	if len(cs) > 1 {
		// Only one can be ours; rather than guess which (the other may be
		// planted to sign this browser in as someone else), refuse both.
		h.logger.Warn("refresh with several refresh cookies refused", zap.Int("cookies", len(cs)), zap.String("client_ip", ClientIP(r)))
		return apierror.InvalidRefreshToken.Err()
	}
	if len(cs) == 0 || cs[0].Value == "" {
		return apierror.InvalidRefreshToken.Err()
	}
	sess, err := h.auth.RefreshSession(r.Context(), cs[0].Value)
	switch {
	case errors.Is(err, auth.ErrRefreshReused):
		h.logger.Warn("refresh token re-used: session revoked", zap.String("client_ip", ClientIP(r)))
		h.audit.Record(audit.Event{Kind: audit.RefreshReused, ClientIP: ClientIP(r), Outcome: "session_revoked"})
		ClearSessionCookies(w)
		return apierror.InvalidRefreshToken.Wrap(err)
	case errors.Is(err, auth.ErrInvalidRefresh):
		ClearSessionCookies(w)
		return apierror.InvalidRefreshToken.Wrap(err)
	case err != nil:
		return err
	}
	writeSession(w, sess)
	return nil
}

func (h *APIHandler) logout(w http.ResponseWriter, r *http.Request) error {
	claims, _, _ := UserFromRequest(h.auth, r)
	var refresh string
	if c, err := r.Cookie(RefreshCookie); err == nil {
		refresh = c.Value
	}
	if err := h.auth.Logout(r.Context(), claims, refresh); err != nil {
		return err
	}
	e := audit.Event{Kind: audit.Logout, ClientIP: ClientIP(r)}
	if claims != nil {
		e.Actor, e.ActorID = claims.Username, claims.Subject
	}
	h.audit.Record(e)
	ClearSessionCookies(w)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *APIHandler) me(w http.ResponseWriter, r *http.Request) error {
	claims, _, err := UserFromRequest(h.auth, r)
	if err != nil {
		return Unauthorized(w)
	}
	u := claims.User()
	apierror.WriteJSON(w, http.StatusOK, map[string]string{"id": u.ID, "username": u.Username, "role": u.Role})
	return nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	claude_auth_api
func (h *APIHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("claude_auth_api takes no options; configure auth in the global claude { auth { … } } block")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
	_ caddyfile.Unmarshaler       = (*APIHandler)(nil)
)
