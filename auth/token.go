package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claude-gateway/claude-gateway/identity"
)

// Token defaults.
const (
	DefaultIssuer        = "claude-gateway"
	DefaultAudience      = "claude-gateway"
	DefaultAccessTTL     = 15 * time.Minute
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 4096
	// MaxAccessTTL bounds the access token lifetime: revocations of users and
	// sessions are kept this long, so no token outlives its revocation entry.
	MaxAccessTTL = 24 * time.Hour
	// MaxLeeway bounds the leeway; revocations are kept twice as long past
	// the expiry they are given, since a token is honoured until exp+leeway
	// and may carry an iat up to the leeway ahead.
	MaxLeeway = 5 * time.Minute
)

// Token types, the "typ" claim. Each type has its own audience, so a token
// of one type is refused wherever another is wanted, even by a verifier that
// looks at "aud" only.
const (
	// TokenTypeAccess is the app's access token: the app host, its APIs
	// and the backend accept it.
	TokenTypeAccess = "access"
	// TokenTypeIDE is the IDE host's token, kept in that host's cookie: it
	// is valid there only (audience TokenConfig.IDEAudience), as the IDE host
	// serves user-controlled content that must not be able to act on the
	// app host.
	TokenTypeIDE = "ide"
)

// DefaultIDEAudienceSuffix makes the default audience of IDE tokens: the
// access tokens' audience followed by it ("claude-gateway-ide").
const DefaultIDEAudienceSuffix = "-ide"

// ErrInvalidToken is returned (wrapped) for every token that must not be
// accepted: bad signature, algorithm, claims, size or a revoked one.
var ErrInvalidToken = errors.New("invalid token")

// Claims are the claims of an access token: the registered ones (iss, aud,
// sub = user id, jti, iat, nbf, exp) plus the user's name and role, the token
// type and the login session (refresh family) it belongs to.
type Claims struct {
	jwt.RegisteredClaims
	// Username is the user's login name.
	Username string `json:"username"`
	// Role is identity.RoleAdmin or identity.RoleUser.
	Role string `json:"role"`
	// Type is TokenTypeAccess or TokenTypeIDE.
	Type string `json:"typ"`
	// SessionID is the refresh token family of the login that produced the
	// token; revoking the session revokes every access token carrying it.
	SessionID string `json:"sid,omitempty"`
}

// User is the identity the claims prove.
func (c *Claims) User() identity.User {
	return identity.User{ID: c.Subject, Username: c.Username, Role: c.Role}
}

// TokenConfig configures issuing and verifying access tokens.
type TokenConfig struct {
	// Key signs new tokens and verifies them (HS256).
	Key []byte
	// VerifyKeys are older keys still accepted for verification only (key rotation).
	VerifyKeys [][]byte
	// Issuer and Audience are written into access tokens and required on
	// their verification.
	Issuer, Audience string
	// IDEAudience is the audience of IDE tokens. Default: Audience followed
	// by DefaultIDEAudienceSuffix. It must differ from Audience.
	IDEAudience string
	// TTL is the lifetime of new access tokens.
	TTL time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	// MaxBytes bounds the encoded size of a token; longer ones are refused unparsed.
	MaxBytes int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Tokens issues and verifies access and IDE tokens. It is safe for
// concurrent use.
type Tokens struct {
	cfg     TokenConfig
	keys    jwt.VerificationKeySet
	parsers map[string]*jwt.Parser // by token type; each requires its audience
	cache   verifiedCache
}

// NewTokens checks cfg, fills in defaults and returns the Tokens it describes.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if err := CheckSecret(cfg.Key, "the signing key"); err != nil {
		return nil, err
	}
	for i, k := range cfg.VerifyKeys {
		if err := CheckSecret(k, fmt.Sprintf("verification key %d", i+1)); err != nil {
			return nil, err
		}
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.IDEAudience == "" {
		cfg.IDEAudience = cfg.Audience + DefaultIDEAudienceSuffix
	}
	if cfg.IDEAudience == cfg.Audience {
		return nil, fmt.Errorf("the IDE token audience %q is the access token audience: IDE tokens would open the app", cfg.IDEAudience)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultAccessTTL
	}
	if cfg.TTL < 0 || cfg.TTL > MaxAccessTTL {
		return nil, fmt.Errorf("access token lifetime %s is out of range (0, %s]", cfg.TTL, MaxAccessTTL)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("leeway %s is out of range (0, %s]", cfg.Leeway, MaxLeeway)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxTokenBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{cfg: cfg}
	t.keys.Keys = append(t.keys.Keys, cfg.Key)
	for _, k := range cfg.VerifyKeys {
		t.keys.Keys = append(t.keys.Keys, k)
	}
	t.parsers = map[string]*jwt.Parser{
		TokenTypeAccess: newParser(cfg, cfg.Audience),
		TokenTypeIDE:    newParser(cfg, cfg.IDEAudience),
	}
	return t, nil
}

func newParser(cfg TokenConfig, audience string) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	)
}

// audience is the audience of tokens of type typ.
func (t *Tokens) audience(typ string) string {
	if typ == TokenTypeIDE {
		return t.cfg.IDEAudience
	}
	return t.cfg.Audience
}

// Issue signs a new access token for u, belonging to the login session sid
// (may be empty).
func (t *Tokens) Issue(u identity.User, sid string) (string, *Claims, error) {
	return t.IssueType(TokenTypeAccess, u, sid)
}

// IssueType signs a new token of type typ (TokenTypeAccess or TokenTypeIDE)
// for u, with that type's audience and the access token lifetime, belonging
// to the login session sid (may be empty): revoking the session revokes it.
func (t *Tokens) IssueType(typ string, u identity.User, sid string) (string, *Claims, error) {
	if _, ok := t.parsers[typ]; !ok {
		return "", nil, fmt.Errorf("unknown token type %q", typ)
	}
	if err := validUser(u); err != nil {
		return "", nil, err
	}
	now := t.cfg.Now().Truncate(time.Second)
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Audience:  jwt.ClaimStrings{t.audience(typ)},
			Subject:   u.ID,
			ID:        RandomID(),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.TTL)),
		},
		Username:  u.Username,
		Role:      u.Role,
		Type:      typ,
		SessionID: sid,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.cfg.Key)
	if err != nil {
		return "", nil, fmt.Errorf("signing an %s token: %w", typ, err)
	}
	return s, c, nil
}

// Verify checks an access token's size, algorithm (HS256 only, whatever the
// header says), signature (current key, then the verification-only keys),
// exp (required, at most MaxAccessTTL after iat), nbf, iat, iss, aud, typ
// and subject claims. It does not consult the revocation list; see
// Service.Authenticate. A token verified before is found in a cache until
// its exp, skipping the signature check.
func (t *Tokens) Verify(token string) (*Claims, error) {
	return t.VerifyType(token, TokenTypeAccess)
}

// VerifyType is Verify for a token of type typ: its "typ" claim must be typ
// and its audience typ's own, so an IDE token is never an access token and
// the other way round.
func (t *Tokens) VerifyType(token, typ string) (*Claims, error) {
	parser, ok := t.parsers[typ]
	if !ok {
		return nil, fmt.Errorf("%w: unknown token type %q", ErrInvalidToken, typ)
	}
	if len(token) > t.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte bound", ErrInvalidToken, len(token), t.cfg.MaxBytes)
	}
	// A cached token passed the checks of its own type, which its claims name.
	if c, ok := t.cache.get(token, t.cfg.Now(), t.cfg.Leeway); ok {
		if c.Type != typ {
			return nil, fmt.Errorf("%w: typ %q is not %q", ErrInvalidToken, c.Type, typ)
		}
		cp := *c
		return &cp, nil
	}
	c := new(Claims)
	_, err := parser.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return t.keys, nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	switch {
	case c.Type != typ:
		return nil, fmt.Errorf("%w: typ %q is not %q", ErrInvalidToken, c.Type, typ)
	case c.ID == "":
		return nil, fmt.Errorf("%w: no jti", ErrInvalidToken)
	case c.IssuedAt == nil:
		return nil, fmt.Errorf("%w: no iat", ErrInvalidToken)
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxAccessTTL:
		// Session and user revocations are kept MaxAccessTTL only.
		return nil, fmt.Errorf("%w: lifetime over %s", ErrInvalidToken, MaxAccessTTL)
	}
	if err := validUser(c.User()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	cp := *c
	t.cache.put(token, &cp)
	return c, nil
}

// validUser checks what ends up in headers and placeholders: an id, a
// well-formed name and a known role.
func validUser(u identity.User) error {
	if u.ID == "" || len(u.ID) > 64 || !printableASCII(u.ID) {
		return errors.New("malformed user id")
	}
	if err := ValidUsername(u.Username); err != nil {
		return err
	}
	return ValidRole(u.Role)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// RandomID returns 128 random bits, base64url-encoded: token ids, user ids,
// refresh families.
func RandomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
