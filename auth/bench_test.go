package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// BenchmarkAuthenticate is the whole per-request check: size bound, HS256
// signature, claims, and the revocation snapshot lookup (here holding 10,000
// revoked tokens, as after a busy day).
func BenchmarkAuthenticate(b *testing.B) {
	db := testenv.OpenDB(b, "sqlite:"+b.TempDir()+"/bench.db")
	tk, err := NewTokens(TokenConfig{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	rev := NewRevocations(db)
	snap := map[string]int64{}
	for i := range 10_000 {
		snap[jtiKey(fmt.Sprintf("revoked-%d", i))] = time.Now().UnixMilli()
	}
	rev.snap.Store(&snap)
	s := &Service{Tokens: tk, Revocations: rev}
	tok, _, err := tk.Issue(alice, "session-1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Authenticate(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
