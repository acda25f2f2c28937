package ideticket

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const ide = "https://ide.example.test"

// nonce is the state cookie of the browser that starts the sign-ons below;
// grant is bound to it.
var (
	nonce = mustNonce()
	grant = Grant{User: identity.User{ID: "u1", Username: "alice", Role: identity.RoleUser}, SessionID: "fam1", Next: "/?folder=/work", State: Binding(nonce)}
)

func mustNonce() string {
	n, err := NewNonce()
	if err != nil {
		panic(err)
	}
	return n
}

func TestTickets(t *testing.T) {
	for dialect, setting := range testenv.Databases(t) {
		t.Run(dialect, func(t *testing.T) {
			db := testenv.OpenDB(t, setting)
			ctx := context.Background()
			s, err := NewStore(db, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			clock := time.Now()
			s.now = func() time.Time { return clock }

			t.Run("redeemed once", func(t *testing.T) {
				tk, err := s.Issue(ctx, ide, grant)
				if err != nil {
					t.Fatal(err)
				}
				g, err := s.Redeem(ctx, ide, tk, nonce)
				if err != nil || g != grant {
					t.Fatalf("Redeem = %+v, %v", g, err)
				}
				if _, err := s.Redeem(ctx, ide, tk, nonce); !errors.Is(err, ErrInvalidTicket) {
					t.Fatalf("replay: %v", err)
				}
			})
			t.Run("expired", func(t *testing.T) {
				tk, err := s.Issue(ctx, ide, grant)
				if err != nil {
					t.Fatal(err)
				}
				clock = clock.Add(31 * time.Second)
				defer func() { clock = clock.Add(-31 * time.Second) }()
				if _, err := s.Redeem(ctx, ide, tk, nonce); !errors.Is(err, ErrInvalidTicket) {
					t.Fatalf("expired ticket: %v", err)
				}
			})
			t.Run("other audience", func(t *testing.T) {
				tk, err := s.Issue(ctx, ide, grant)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Redeem(ctx, "https://other.example.test", tk, nonce); !errors.Is(err, ErrInvalidTicket) {
					t.Fatalf("other audience: %v", err)
				}
				// The failed attempt did not spend it for its real audience.
				if _, err := s.Redeem(ctx, ide, tk, nonce); err != nil {
					t.Fatalf("right audience after a wrong one: %v", err)
				}
			})
			t.Run("forged", func(t *testing.T) {
				for _, tk := range []string{"", "x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "' OR 1=1 --"} {
					if _, err := s.Redeem(ctx, ide, tk, nonce); !errors.Is(err, ErrInvalidTicket) {
						t.Errorf("forged %q: %v", tk, err)
					}
				}
			})
			t.Run("bound to the browser that started the sign-on", func(t *testing.T) {
				// An attacker mints a ticket for their own account, bound to
				// their own browser's nonce, and hands it to a victim whose
				// browser holds another nonce or none.
				attacker := grant
				attacker.User = identity.User{ID: "u-attacker", Username: "mallory", Role: identity.RoleUser}
				attackerNonce := mustNonce()
				attacker.State = Binding(attackerNonce)
				for _, tc := range []struct{ name, nonce string }{
					{"no state cookie", ""},
					{"another browser's nonce", mustNonce()},
					{"the binding itself as the cookie", attacker.State},
					{"the nonce with a changed last byte", flipLast(attackerNonce)},
				} {
					tk, err := s.Issue(ctx, ide, attacker)
					if err != nil {
						t.Fatal(err)
					}
					if g, err := s.Redeem(ctx, ide, tk, tc.nonce); !errors.Is(err, ErrStateMismatch) || g != (Grant{}) {
						t.Errorf("%s: Redeem = %+v, %v; want ErrStateMismatch and no grant", tc.name, g, err)
					}
					// The refused presentation spent the ticket: even the
					// browser it is bound to cannot use it any more.
					if _, err := s.Redeem(ctx, ide, tk, attackerNonce); !errors.Is(err, ErrInvalidTicket) {
						t.Errorf("%s: the ticket survived a refused presentation: %v", tc.name, err)
					}
				}
				// The browser that started the sign-on redeems its own ticket.
				tk, err := s.Issue(ctx, ide, attacker)
				if err != nil {
					t.Fatal(err)
				}
				if g, err := s.Redeem(ctx, ide, tk, attackerNonce); err != nil || g != attacker {
					t.Fatalf("the bound browser: Redeem = %+v, %v", g, err)
				}
			})
			t.Run("a ticket needs a well-formed binding", func(t *testing.T) {
				for _, state := range []string{"", "short", Binding(nonce) + "x", strings.Repeat("!", 43)} {
					unbound := grant
					unbound.State = state
					if _, err := s.Issue(ctx, ide, unbound); !errors.Is(err, ErrNoState) {
						t.Errorf("Issue with state %q = %v, want ErrNoState", state, err)
					}
				}
			})
			t.Run("a row without a binding is never redeemed", func(t *testing.T) {
				tk, err := s.Issue(ctx, ide, grant)
				if err != nil {
					t.Fatal(err)
				}
				// A ticket row written by a replica without migration 8
				// carries the column's default.
				if _, err := db.ExecContext(ctx, "UPDATE ide_tickets SET state_hash = '' WHERE ticket_hash = ?", hash(tk)); err != nil {
					t.Fatal(err)
				}
				for _, n := range []string{"", nonce} {
					if _, err := s.Redeem(ctx, ide, tk, n); err == nil {
						t.Errorf("an unbound row was redeemed with nonce %q", n)
					}
				}
			})
			t.Run("racing redemptions", func(t *testing.T) {
				tk, err := s.Issue(ctx, ide, grant)
				if err != nil {
					t.Fatal(err)
				}
				var wins atomic.Int32
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := s.Redeem(ctx, ide, tk, nonce); err == nil {
							wins.Add(1)
						} else if !errors.Is(err, ErrInvalidTicket) {
							t.Errorf("redeem: %v", err)
						}
					}()
				}
				wg.Wait()
				if wins.Load() != 1 {
					t.Fatalf("%d redemptions won, want 1", wins.Load())
				}
			})
			t.Run("recent tickets counted per user", func(t *testing.T) {
				other := grant
				other.User.ID = "u-recent"
				for range 3 {
					if _, err := s.Issue(ctx, ide, other); err != nil {
						t.Fatal(err)
					}
				}
				if n, err := s.Recent(ctx, "u-recent"); err != nil || n != 3 {
					t.Fatalf("Recent = %d, %v; want 3", n, err)
				}
				clock = clock.Add(31 * time.Second)
				defer func() { clock = clock.Add(-31 * time.Second) }()
				if n, err := s.Recent(ctx, "u-recent"); err != nil || n != 0 {
					t.Fatalf("Recent after the TTL = %d, %v; want 0", n, err)
				}
			})
			t.Run("next too long to store", func(t *testing.T) {
				long := grant
				long.Next = "/" + strings.Repeat("a", MaxNextLength)
				if _, err := s.Issue(ctx, ide, long); !errors.Is(err, ErrNextTooLong) {
					t.Fatalf("Issue with a %d-byte next = %v, want ErrNextTooLong", len(long.Next), err)
				}
				long.Next = long.Next[:MaxNextLength]
				tk, err := s.Issue(ctx, ide, long)
				if err != nil {
					t.Fatalf("Issue with a next of MaxNextLength bytes: %v", err)
				}
				if g, err := s.Redeem(ctx, ide, tk, nonce); err != nil || g.Next != long.Next {
					t.Fatalf("Redeem = %d-byte next, %v; want the %d bytes issued", len(g.Next), err, len(long.Next))
				}
			})
			t.Run("only hashes stored, expired rows deleted", func(t *testing.T) {
				tk, err := s.Issue(ctx, ide, grant)
				if err != nil {
					t.Fatal(err)
				}
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ide_tickets WHERE ticket_hash = ?", tk).Scan(&n); err != nil || n != 0 {
					t.Fatalf("the plain ticket is stored (%d, %v)", n, err)
				}
				clock = clock.Add(time.Hour)
				if _, err := s.Issue(ctx, ide, grant); err != nil {
					t.Fatal(err)
				}
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ide_tickets").Scan(&n); err != nil || n != 1 {
					t.Fatalf("%d rows after the clean-up, want 1 (%v)", n, err)
				}
			})
		})
	}
}

func flipLast(s string) string {
	if s[len(s)-1] == 'A' {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

func TestBinding(t *testing.T) {
	a, b := mustNonce(), mustNonce()
	if a == b || len(a) != 43 || !ValidNonce(a) || !ValidBinding(Binding(a)) || Binding(a) == a || Binding(a) != Binding(a) || Binding(a) == Binding(b) {
		t.Fatalf("nonces %q %q, bindings %q %q", a, b, Binding(a), Binding(b))
	}
	for _, s := range []string{"", "abc", Binding(a)[:42], Binding(a) + "A", strings.Repeat("+", 43), strings.Repeat("A", 42) + "="} {
		if ValidBinding(s) {
			t.Errorf("ValidBinding(%q) = true", s)
		}
	}
}

func TestNewStoreBoundsTTL(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Second, 61 * time.Second, time.Hour} {
		if _, err := NewStore(nil, ttl); err == nil {
			t.Errorf("NewStore accepted ttl %s", ttl)
		}
	}
	s, err := NewStore(nil, 0)
	if err != nil || s.TTL() != DefaultTTL {
		t.Errorf("default ttl: %v %v", s, err)
	}
}
