package claudeauth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/auth"
)

// How a request presented its token.
const (
	MethodBearer = "bearer"
	MethodCookie = "cookie"
)

// ErrNoToken is returned by UserFromRequest for a request without a token; it wraps auth.ErrInvalidToken.
var ErrNoToken = fmt.Errorf("%w: no token presented", auth.ErrInvalidToken)

// TokenFromRequest returns the access token a request presents and how:
// the Authorization header's Bearer token first, else the access cookie.
// The query string is never looked at: URLs end up in logs and Referer headers.
func TokenFromRequest(r *http.Request) (token, method string) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), MethodBearer
		}
		return "", ""
	}
	if c, err := r.Cookie(AccessCookie); err == nil && c.Value != "" {
		return c.Value, MethodCookie
	}
	return "", ""
}

// UserFromRequest verifies the access token r presents (see
// TokenFromRequest) against the signature, claims and revocation list. It
// returns the claims and how the token came; errors wrap auth.ErrInvalidToken.
// An IDE token is refused.
func UserFromRequest(svc *auth.Service, r *http.Request) (*auth.Claims, string, error) {
	return UserFromRequestType(svc, r, auth.TokenTypeAccess)
}

// UserFromRequestType is UserFromRequest for a token of type typ
// (auth.TokenTypeAccess or auth.TokenTypeIDE); a token of another type is
// refused.
func UserFromRequestType(svc *auth.Service, r *http.Request, typ string) (*auth.Claims, string, error) {
	tok, method := TokenFromRequest(r)
	if tok == "" {
		return nil, "", ErrNoToken
	}
	c, err := svc.AuthenticateType(tok, typ)
	if err != nil {
		return nil, method, err
	}
	return c, method, nil
}

// ClientIP is the client address Caddy determined for r (honouring the
// server's trusted_proxies), the key of per-address login regulation.
func ClientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}
