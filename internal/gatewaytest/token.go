package gatewaytest

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// Test token defaults: the issuer and audience the gateway checks unless configured otherwise.
const (
	TokenIssuer   = "claude-gateway"
	TokenAudience = "claude-gateway"
)

// TestSecret is a SECRET_KEY for test gateways (at least 32 bytes).
const TestSecret = "test-secret-key-0123456789abcdef-0123456789abcdef"

// AccessToken mints an HS256 access token the way the gateway does, for a user
// (id, username, role), valid for ttl, signed with secret.
func AccessToken(t testing.TB, secret, userID, username, role string, ttl time.Duration) string {
	t.Helper()
	return mint(t, secret, TokenAudience, "access", userID, username, role, ttl)
}

// IDETokenAudience is the audience of IDE tokens unless configured otherwise.
const IDETokenAudience = TokenAudience + "-ide"

// IDEToken mints an HS256 IDE token (typ "ide", the IDE audience) the way
// claude_ide_gate does when it redeems a ticket: valid on the IDE host only.
func IDEToken(t testing.TB, secret, userID, username, role string, ttl time.Duration) string {
	t.Helper()
	return mint(t, secret, IDETokenAudience, "ide", userID, username, role, ttl)
}

// mint signs the claims the gateway writes for a token of type typ and
// audience aud.
func mint(t testing.TB, secret, aud, typ, userID, username, role string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":      TokenIssuer,
		"aud":      aud,
		"sub":      userID,
		"username": username,
		"role":     role,
		"typ":      typ,
		"jti":      "test-" + testenv.RandomHex(12),
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"exp":      now.Add(ttl).Unix(),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
