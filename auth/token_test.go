package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claude-gateway/claude-gateway/identity"
)

var (
	testKey  = []byte("unit-test-key-0123456789abcdef-0123456789")
	otherKey = []byte("another-key-0123456789abcdef-0123456789ab")
	alice    = identity.User{ID: "u-1", Username: "alice", Role: identity.RoleUser}
)

func newTestTokens(t *testing.T, cfg TokenConfig) *Tokens {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	tk, err := NewTokens(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// validClaims are the claims of a good token; cases change one thing.
func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": DefaultIssuer, "aud": DefaultAudience, "sub": "u-1", "username": "alice", "role": "user",
		"typ": "access", "jti": "j-1", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HandMade builds an HS256 JWT from the spec alone (RFC 7515/7519): no JWT library.
func handMade(key []byte, header, claims any) string {
	signing := b64(header) + "." + b64(claims)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyRefuses(t *testing.T) {
	tk := newTestTokens(t, TokenConfig{Leeway: 5 * time.Second})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))})
	with := func(k string, v any) jwt.MapClaims {
		c := validClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	good := sign(t, jwt.SigningMethodHS256, testKey, validClaims())
	parts := strings.Split(good, ".")
	tamperedClaims := validClaims()
	tamperedClaims["role"] = "admin"

	cases := []struct {
		name  string
		token string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims())},
		{"alg none hand-made", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(validClaims()) + "."},
		{"wrong key", sign(t, jwt.SigningMethodHS256, otherKey, validClaims())},
		{"HS384", sign(t, jwt.SigningMethodHS384, testKey, validClaims())},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, validClaims())},
		{"RS256/HS256 confusion: HS256 keyed with the RSA public key", sign(t, jwt.SigningMethodHS256, pubPEM, validClaims())},
		{"expired", sign(t, jwt.SigningMethodHS256, testKey, with("exp", time.Now().Add(-time.Minute).Unix()))},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, testKey, with("nbf", time.Now().Add(time.Minute).Unix()))},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, testKey, with("iat", time.Now().Add(time.Minute).Unix()))},
		{"no exp", sign(t, jwt.SigningMethodHS256, testKey, with("exp", nil))},
		{"no iat", sign(t, jwt.SigningMethodHS256, testKey, with("iat", nil))},
		{"no jti", sign(t, jwt.SigningMethodHS256, testKey, with("jti", nil))},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, testKey, with("iss", "someone-else"))},
		{"wrong aud", sign(t, jwt.SigningMethodHS256, testKey, with("aud", "someone-else"))},
		{"no aud", sign(t, jwt.SigningMethodHS256, testKey, with("aud", nil))},
		{"refresh typ", sign(t, jwt.SigningMethodHS256, testKey, with("typ", "refresh"))},
		{"no sub", sign(t, jwt.SigningMethodHS256, testKey, with("sub", nil))},
		{"unknown role", sign(t, jwt.SigningMethodHS256, testKey, with("role", "root"))},
		{"username with a line break", sign(t, jwt.SigningMethodHS256, testKey, with("username", "alice\r\nX-Evil: 1"))},
		{"tampered payload, old signature", parts[0] + "." + b64(tamperedClaims) + "." + parts[2]},
		// Session and user revocations are kept MaxAccessTTL: a longer-lived
		// token would be accepted again once its revocation entry is deleted.
		{"lifetime over MaxAccessTTL", sign(t, jwt.SigningMethodHS256, testKey, with("exp", time.Now().Add(MaxAccessTTL+time.Minute).Unix()))},
		{"iat long ago, exp still ahead", sign(t, jwt.SigningMethodHS256, testKey, with("iat", time.Now().Add(-MaxAccessTTL).Unix()))},
		{"oversized", sign(t, jwt.SigningMethodHS256, testKey, with("pad", strings.Repeat("x", DefaultMaxTokenBytes)))},
		{"garbage", "not.a.token"},
		{"empty", ""},
	}
	// The genuine token is verified first, so it sits in the verified-token
	// cache while its altered copies are tried.
	if _, err := tk.Verify(good); err != nil {
		t.Fatalf("the unmodified token is refused: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tk.Verify(tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
		})
	}
	if _, err := tk.Verify(good); err != nil {
		t.Fatalf("the unmodified token is refused: %v", err)
	}
}

func TestVerifyAccepts(t *testing.T) {
	tk := newTestTokens(t, TokenConfig{VerifyKeys: [][]byte{otherKey}})
	issued, claims, err := tk.Issue(alice, "family-1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name  string
		token string
		want  identity.User
	}{
		{"issued by Tokens", issued, alice},
		{"hand-made from the spec", handMade(testKey, map[string]string{"alg": "HS256", "typ": "JWT"}, map[string]any{
			"iss": DefaultIssuer, "aud": DefaultAudience, "sub": "u-9", "username": "bob", "role": "admin",
			"typ": "access", "jti": "hand-1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		}), identity.User{ID: "u-9", Username: "bob", Role: "admin"}},
		{"signed with a verification-only key", sign(t, jwt.SigningMethodHS256, otherKey, validClaims()), alice},
		{"expired within the leeway", sign(t, jwt.SigningMethodHS256, testKey, func() jwt.MapClaims {
			c := validClaims()
			c["exp"] = now.Add(-10 * time.Second).Unix()
			return c
		}()), alice},
		{"aud as an array", sign(t, jwt.SigningMethodHS256, testKey, func() jwt.MapClaims {
			c := validClaims()
			c["aud"] = []string{"other", DefaultAudience}
			return c
		}()), alice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tk.Verify(tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if c.User() != tc.want {
				t.Fatalf("user = %+v, want %+v", c.User(), tc.want)
			}
		})
	}
	if claims.SessionID != "family-1" || claims.Type != TokenTypeAccess || claims.ExpiresAt.Sub(claims.IssuedAt.Time) != DefaultAccessTTL {
		t.Fatalf("issued claims: %+v", claims)
	}
	// A key used only for verification never signs.
	if _, err := jwt.Parse(issued, func(*jwt.Token) (any, error) { return otherKey, nil }); err == nil {
		t.Fatal("a new token verifies with the verification-only key")
	}
}

func TestNewTokensConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     TokenConfig
		wantErr string
	}{
		{"short key", TokenConfig{Key: []byte("short")}, "at least 32"},
		{"short verify key", TokenConfig{Key: testKey, VerifyKeys: [][]byte{[]byte("x")}}, "verification key 1"},
		{"ttl too long", TokenConfig{Key: testKey, TTL: 48 * time.Hour}, "out of range"},
		{"leeway too long", TokenConfig{Key: testKey, Leeway: time.Hour}, "leeway 1h0m0s is out of range"},
		{"ok", TokenConfig{Key: testKey}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTokens(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestVerifiedCacheHonoursExpiry: a cached token stops being accepted at its
// exp (plus leeway), exactly like an uncached one.
func TestVerifiedCacheHonoursExpiry(t *testing.T) {
	now := time.Now()
	tk := newTestTokens(t, TokenConfig{TTL: time.Minute, Leeway: 5 * time.Second, Now: func() time.Time { return now }})
	tok, _, err := tk.Issue(alice, "")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at     time.Duration
		wantOK bool
	}{
		{0, true},
		{30 * time.Second, true},
		{time.Minute + 4*time.Second, true},
		{time.Minute + 6*time.Second, false},
		{time.Minute + 7*time.Second, false},
	}
	start := now
	for _, s := range steps {
		now = start.Add(s.at)
		c, err := tk.Verify(tok)
		if (err == nil) != s.wantOK {
			t.Fatalf("at +%s: err = %v, want ok %v", s.at, err, s.wantOK)
		}
		if err == nil && c.User() != alice {
			t.Fatalf("at +%s: user %+v", s.at, c.User())
		}
	}
	// Callers get copies: changing one does not change what the cache returns.
	now = start
	c1, _ := tk.Verify(tok)
	c1.Role = identity.RoleAdmin
	if c2, _ := tk.Verify(tok); c2.Role != identity.RoleUser {
		t.Fatal("the cached claims were modified through a returned copy")
	}
}

// TestVerifiedCacheBounded: however many distinct tokens pass Verify (expired
// ones are never looked up again), the cache holds at most verifiedCacheSize.
func TestVerifiedCacheBounded(t *testing.T) {
	var vc verifiedCache
	c := &Claims{}
	for i := range 3*verifiedCacheSize + 7 {
		tok := "token-" + strconv.Itoa(i)
		vc.put(tok, c)
		if n := len(vc.entries); n > verifiedCacheSize {
			t.Fatalf("%d entries after %d puts; the bound is %d", n, i+1, verifiedCacheSize)
		}
		if _, ok := vc.entries[tok]; !ok {
			t.Fatalf("the newest token %d is not cached", i)
		}
	}
}

// TestTokenTypesDoNotMix: an IDE token (the IDE host's cookie) is refused
// wherever an access token is wanted, and an access token wherever an IDE
// token is, whichever of the two was verified (and cached) first.
func TestTokenTypesDoNotMix(t *testing.T) {
	tk := newTestTokens(t, TokenConfig{})
	access, _, err := tk.Issue(alice, "family-1")
	if err != nil {
		t.Fatal(err)
	}
	ide, ideClaims, err := tk.IssueType(TokenTypeIDE, alice, "family-1")
	if err != nil {
		t.Fatal(err)
	}
	if ideClaims.Type != TokenTypeIDE || len(ideClaims.Audience) != 1 || ideClaims.Audience[0] == DefaultAudience ||
		ideClaims.Subject != alice.ID || ideClaims.SessionID != "family-1" {
		t.Fatalf("IDE token claims: %+v", ideClaims)
	}
	for round := range 2 { // the second round finds both in the verified-token cache
		if c, err := tk.VerifyType(ide, TokenTypeIDE); err != nil || c.User() != alice || c.SessionID != "family-1" {
			t.Fatalf("round %d: the IDE token on the IDE host: %+v %v", round, c, err)
		}
		if c, err := tk.Verify(ide); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("round %d: the IDE token accepted as an access token: %+v", round, c)
		}
		if c, err := tk.Verify(access); err != nil || c.User() != alice {
			t.Fatalf("round %d: the access token: %+v %v", round, c, err)
		}
		if c, err := tk.VerifyType(access, TokenTypeIDE); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("round %d: the access token accepted as an IDE token: %+v", round, c)
		}
	}
	// Neither claim alone makes a token of the other type: typ and aud must
	// both say it (a key holder could mint the mixed ones).
	mixed := map[string]jwt.MapClaims{
		"typ ide, app aud": func() jwt.MapClaims { c := validClaims(); c["typ"] = TokenTypeIDE; return c }(),
		"typ access, IDE aud": func() jwt.MapClaims {
			c := validClaims()
			c["aud"] = DefaultAudience + DefaultIDEAudienceSuffix
			return c
		}(),
	}
	for name, c := range mixed {
		tok := sign(t, jwt.SigningMethodHS256, testKey, c)
		if got, err := tk.Verify(tok); err == nil {
			t.Errorf("%s accepted as an access token: %+v", name, got)
		}
		if got, err := tk.VerifyType(tok, TokenTypeIDE); err == nil {
			t.Errorf("%s accepted as an IDE token: %+v", name, got)
		}
	}
	if _, err := tk.VerifyType(access, "refresh"); err == nil {
		t.Error("an unknown token type was verified")
	}
}
