// Command mktoken prints an access token for the benchmark, signed the way the
// gateway signs them, with the key in $SECRET_KEY.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	key := os.Getenv("SECRET_KEY")
	if len(key) < 32 {
		fmt.Fprintln(os.Stderr, "mktoken: SECRET_KEY must hold at least 32 bytes")
		os.Exit(2)
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "claude-gateway", "aud": "claude-gateway", "sub": "1", "username": "bench",
		"role": "user", "typ": "access", "jti": fmt.Sprintf("bench-%d", now.UnixNano()),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte(key))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mktoken:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}
