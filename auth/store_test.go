package auth

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// forEachDB runs f on a fresh, migrated SQLite and MariaDB database.
func forEachDB(t *testing.T, f func(t *testing.T, db *database.DB)) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) { f(t, testenv.OpenDB(t, setting)) })
	}
}

func newTestService(t *testing.T, db *database.DB) *Service {
	t.Helper()
	users := NewUsers(db, bcrypt.MinCost)
	return NewService(newTestTokens(t, TokenConfig{}), users, NewRefreshTokens(db, time.Hour), NewRevocations(db),
		NewSQLRegulator(db, RegulationPolicy{MaxRetries: 3, FindTime: time.Minute, BanTime: time.Minute}))
}

func TestUsers(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		u := NewUsers(db, bcrypt.MinCost)
		a, err := u.Create(ctx, " Alice ", "correct horse", identity.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if a.Username != "alice" || a.Role != identity.RoleAdmin || a.ID == "" {
			t.Fatalf("created %+v", a)
		}
		bad := []struct{ name, user, pass, role string }{
			{"duplicate, other case", "ALICE", "correct horse", identity.RoleUser},
			{"bad username", "a b", "correct horse", identity.RoleUser},
			{"bad role", "bob", "correct horse", "root"},
			{"short password", "bob", "short", identity.RoleUser},
			{"long password", "bob", string(make([]byte, 73)), identity.RoleUser},
		}
		for _, b := range bad {
			if _, err := u.Create(ctx, b.user, b.pass, b.role); err == nil {
				t.Errorf("%s: created", b.name)
			}
		}
		if _, err := u.Create(ctx, "alice", "another one", identity.RoleUser); !errors.Is(err, ErrUserExists) {
			t.Errorf("duplicate: err = %v, want ErrUserExists", err)
		}
		got, err := u.ByName(ctx, "ALICE")
		if err != nil || got.ID != a.ID || !checkPassword(got.passwordHash, "correct horse") {
			t.Fatalf("ByName: %+v, %v", got, err)
		}
		if _, err := u.SetPassword(ctx, "alice", "new password"); err != nil {
			t.Fatal(err)
		}
		got, _ = u.ByID(ctx, a.ID)
		if checkPassword(got.passwordHash, "correct horse") || !checkPassword(got.passwordHash, "new password") {
			t.Fatal("password not replaced")
		}
		if got, err := u.SetDisabled(ctx, "alice", true); err != nil || !got.Disabled {
			t.Fatalf("disable: %+v, %v", got, err)
		}
		if _, err := u.Create(ctx, "bob", "bob's password", identity.RoleUser); err != nil {
			t.Fatal(err)
		}
		list, err := u.List(ctx)
		if err != nil || len(list) != 2 || list[0].Username != "alice" || list[1].Username != "bob" {
			t.Fatalf("list: %+v, %v", list, err)
		}
		if _, err := u.Delete(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := u.ByName(ctx, "bob"); !errors.Is(err, ErrUserNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func TestEnsureAdmin(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		u := NewUsers(db, bcrypt.MinCost)
		pw, created, err := u.EnsureAdmin(ctx, "")
		if err != nil || !created || len(pw) < 20 {
			t.Fatalf("first: %q %v %v", pw, created, err)
		}
		a, err := u.ByName(ctx, "admin")
		if err != nil || a.Role != identity.RoleAdmin || !checkPassword(a.passwordHash, pw) {
			t.Fatalf("admin: %+v %v", a, err)
		}
		if pw2, created, err := u.EnsureAdmin(ctx, ""); err != nil || created || pw2 != "" {
			t.Fatalf("second: %q %v %v", pw2, created, err)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		r := NewRefreshTokens(db, time.Hour)
		t1, rt, err := r.Issue(ctx, "u-1")
		if err != nil {
			t.Fatal(err)
		}
		t2, rt2, err := r.Rotate(ctx, t1)
		if err != nil || rt2.Family != rt.Family || t2 == t1 {
			t.Fatalf("rotate: %v %+v", err, rt2)
		}
		// t1 again: re-use; the whole family dies, t2 included.
		if _, _, err := r.Rotate(ctx, t1); !errors.Is(err, ErrRefreshReused) {
			t.Fatalf("re-use: err = %v", err)
		}
		if _, _, err := r.Rotate(ctx, t2); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("after re-use, the newest token: err = %v", err)
		}
		if _, _, err := r.Rotate(ctx, "no-such-token"); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("unknown: err = %v", err)
		}
		// Expired.
		short := NewRefreshTokens(db, time.Millisecond)
		t3, _, _ := short.Issue(ctx, "u-1")
		time.Sleep(5 * time.Millisecond)
		if _, _, err := r.Rotate(ctx, t3); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("expired: err = %v", err)
		}
		if n, err := r.DeleteExpired(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("DeleteExpired: %d, %v", n, err)
		}
	})
}

func TestRefreshConcurrentRotation(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		r := NewRefreshTokens(db, time.Hour)
		tok, _, err := r.Issue(ctx, "u-1")
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); _, _, errs[i] = r.Rotate(ctx, tok) }()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrRefreshReused), errors.Is(err, ErrInvalidRefresh):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if wins > 1 {
			t.Fatalf("%d concurrent rotations of one token succeeded", wins)
		}
	})
}

func TestRevocations(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		tk := newTestTokens(t, TokenConfig{})
		here, there := NewRevocations(db), NewRevocations(db) // two replicas
		if err := there.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		_, c1, _ := tk.Issue(alice, "s-1")
		_, c2, _ := tk.Issue(alice, "s-2")
		bob := identity.User{ID: "u-2", Username: "bob", Role: identity.RoleUser}
		_, c3, _ := tk.Issue(bob, "")
		c3.IssuedAt.Time = c3.IssuedAt.Add(-time.Second) // issued a second before the revocation below
		if err := here.RevokeToken(ctx, c1.ID, c1.ExpiresAt.Time); err != nil {
			t.Fatal(err)
		}
		if !here.Revoked(c1) || here.Revoked(c2) {
			t.Fatal("the revoking replica does not see its own revocation at once")
		}
		if there.Revoked(c1) {
			t.Fatal("the other replica saw the revocation before syncing")
		}
		if err := there.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if !there.Revoked(c1) || there.Revoked(c2) || there.Revoked(c3) {
			t.Fatal("after sync: wrong revocations")
		}
		if err := here.RevokeSession(ctx, "s-2"); err != nil {
			t.Fatal(err)
		}
		if err := here.RevokeUser(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		there.Sync(ctx)
		if !there.Revoked(c2) || !there.Revoked(c3) || !there.SessionRevoked("s-2") {
			t.Fatal("session or user revocation not seen")
		}
		// A user's revocation covers tokens issued before it, not the same second or after.
		later := *c3
		later.IssuedAt = jwt.NewNumericDate(time.Now())
		if there.Revoked(&later) {
			t.Fatal("a token issued after the user's revocation is revoked")
		}
		// Expired entries go; a full read on a fresh replica sees what is live.
		fresh := NewRevocations(db)
		fresh.Sync(ctx)
		if !fresh.Revoked(c1) {
			t.Fatal("a fresh replica misses a live revocation")
		}
		if n, err := here.DeleteExpired(ctx, time.Now().Add(MaxAccessTTL+time.Hour)); err != nil || n != 3 {
			t.Fatalf("DeleteExpired: %d, %v", n, err)
		}
	})
}

func TestLogin(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newTestService(t, db)
		if _, err := s.Users.Create(ctx, "alice", "alice's password", identity.RoleUser); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Users.Create(ctx, "mallory", "mallory's password", identity.RoleUser); err != nil {
			t.Fatal(err)
		}
		s.Users.SetDisabled(ctx, "mallory", true)
		cases := []struct {
			name, user, pass, addr string
			want                   error
		}{
			{"right", "alice", "alice's password", "10.0.0.1", nil},
			{"right, other case", "ALICE", "alice's password", "10.0.0.1", nil},
			{"wrong password", "alice", "nope nope", "10.0.0.2", ErrInvalidCredentials},
			{"unknown user", "nobody", "nope nope", "10.0.0.3", ErrInvalidCredentials},
			{"disabled user, right password", "mallory", "mallory's password", "10.0.0.4", ErrInvalidCredentials},
			{"password over bcrypt's limit", "alice", string(make([]byte, 100)), "10.0.0.5", ErrInvalidCredentials},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				sess, err := s.Login(ctx, tc.user, tc.pass, tc.addr)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.want != nil {
					return
				}
				c, err := s.Authenticate(sess.AccessToken)
				if err != nil || c.Username != "alice" || c.SessionID == "" || sess.RefreshToken == "" {
					t.Fatalf("session: %+v, %v", c, err)
				}
			})
		}
	})
}

func TestLoginRegulation(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	ctx := context.Background()
	s := newTestService(t, db) // 3 failures ban
	s.Users.Create(ctx, "alice", "alice's password", identity.RoleUser)
	for i := range 3 {
		if _, err := s.Login(ctx, "alice", "wrong", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var banned *BannedError
	// Even the right password is refused while banned, from any address.
	if _, err := s.Login(ctx, "alice", "alice's password", "10.9.9.9"); !errors.As(err, &banned) || banned.RetryAfter <= 0 {
		t.Fatalf("banned user: err = %v", err)
	}
	// The address is banned too, whatever the username.
	if _, err := s.Login(ctx, "someone", "whatever", "10.0.0.1"); !errors.As(err, &banned) {
		t.Fatalf("banned address: err = %v", err)
	}
	// Unknown usernames are regulated the same way.
	for range 3 {
		s.Login(ctx, "ghost", "wrong", "10.0.1.1")
	}
	if _, err := s.Login(ctx, "ghost", "wrong", "10.0.2.2"); !errors.As(err, &banned) {
		t.Fatalf("unknown user not banned: %v", err)
	}
}

// TestLoginOddUsernames: a username that cannot exist (too long, a multibyte
// character at the key column's limit, bytes that are not UTF-8, as a form
// post can carry) is an ordinary failed login, counted against the address:
// never a database error that leaves the attempt unrecorded.
func TestLoginOddUsernames(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newTestService(t, db) // 3 failures ban
		names := []string{strings.Repeat("a", 185) + "ééé", "\xff\xfe", strings.Repeat("b", 400)}
		for _, name := range names {
			if _, err := s.Login(ctx, name, "whatever-1", "10.0.0.9"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("username %q: err = %v, want ErrInvalidCredentials", name, err)
			}
		}
		var banned *BannedError
		if _, err := s.Login(ctx, "alice", "whatever-1", "10.0.0.9"); !errors.As(err, &banned) {
			t.Fatalf("the address is not banned after 3 failures: %v", err)
		}
	})
}

// TestLoginParallelGuesses: guesses at one username sent all at once (from
// many addresses) are checked against the password no more often than the
// regulation allows, as if they had come one after the other.
func TestLoginParallelGuesses(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newTestService(t, db) // 3 failures ban
		s.Users.Create(ctx, "alice", "alice's password", identity.RoleUser)
		const n = 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		checked := 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Login(ctx, "alice", "guess-"+strconv.Itoa(i), "10.1.0."+strconv.Itoa(i))
				if errors.Is(err, ErrInvalidCredentials) {
					mu.Lock()
					checked++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if checked > 3 {
			t.Fatalf("%d of %d parallel guesses were checked against the password; the regulation allows 3", checked, n)
		}
		loginAttempts.mu.Lock()
		held := len(loginAttempts.locks)
		loginAttempts.mu.Unlock()
		if held != 0 {
			t.Fatalf("%d per-username locks left after the attempts ended", held)
		}
	})
}

// Unknown user and wrong password must cost the same bcrypt work. Compare the
// medians of a few attempts each: the ratio is far from 1 when the unknown
// user skips the hash (microseconds against milliseconds).
func TestLoginSameTimeForUnknownUser(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	ctx := context.Background()
	// Cost 8: a hash takes tens of milliseconds, still far above the rest of
	// a login, at a quarter of the default cost's test time.
	users := NewUsers(db, bcrypt.DefaultCost-2)
	s := NewService(newTestTokens(t, TokenConfig{}), users, NewRefreshTokens(db, 0), NewRevocations(db),
		NewMemoryRegulator(RegulationPolicy{MaxRetries: 1000}))
	users.Create(ctx, "alice", "alice's password", identity.RoleUser)
	// The dummy hash costs what a real one does.
	acct, _ := users.ByName(ctx, "alice")
	if c1, c2 := mustCost(t, acct.passwordHash), mustCost(t, s.dummyHash); c1 != c2 {
		t.Fatalf("dummy hash cost %d, account hash cost %d", c2, c1)
	}
	// Interleaved, so a change of machine load hits both series alike.
	var knownDs, unknownDs []time.Duration
	for range 9 {
		for _, user := range []string{"alice", "nobody"} {
			start := time.Now()
			if _, err := s.Login(ctx, user, "wrong password", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if user == "alice" {
				knownDs = append(knownDs, time.Since(start))
			} else {
				unknownDs = append(unknownDs, time.Since(start))
			}
		}
	}
	known, unknown := median(knownDs), median(unknownDs)
	ratio := float64(unknown) / float64(known)
	t.Logf("median wrong password %s, unknown user %s (ratio %.2f)", known, unknown, ratio)
	// Skipping the hash would make the ratio about 0.01; the band is wide
	// because the machine running the tests may be busy.
	if ratio < 0.33 || ratio > 3 {
		t.Fatalf("unknown user takes %s, wrong password %s: distinguishable", unknown, known)
	}
}

// TestLoginRehashesToConfiguredCost: an account hashed at another bcrypt cost
// (`users add` uses the default; the gateway may be configured otherwise)
// makes a wrong password take a different time than an unknown user, whose
// dummy hash has the configured cost. A successful login re-hashes it.
func TestLoginRehashesToConfiguredCost(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	ctx := context.Background()
	if _, err := NewUsers(db, bcrypt.MinCost).Create(ctx, "alice", "alice's password", identity.RoleUser); err != nil {
		t.Fatal(err)
	}
	users := NewUsers(db, bcrypt.MinCost+1)
	s := NewService(newTestTokens(t, TokenConfig{}), users, NewRefreshTokens(db, time.Hour), NewRevocations(db),
		NewMemoryRegulator(RegulationPolicy{}))
	if _, err := s.Login(ctx, "alice", "alice's password", ""); err != nil {
		t.Fatal(err)
	}
	acct, err := users.ByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustCost(t, acct.passwordHash), mustCost(t, s.dummyHash); got != want {
		t.Fatalf("after a login the account's hash has cost %d, the unknown-user dummy %d", got, want)
	}
	if _, err := s.Login(ctx, "alice", "alice's password", ""); err != nil {
		t.Fatalf("login after the re-hash: %v", err)
	}
}

func TestRefreshAndLogout(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newTestService(t, db)
		s.Users.Create(ctx, "alice", "alice's password", identity.RoleUser)
		sess, err := s.Login(ctx, "alice", "alice's password", "")
		if err != nil {
			t.Fatal(err)
		}
		next, err := s.RefreshSession(ctx, sess.RefreshToken)
		if err != nil || next.Access.SessionID != sess.Access.SessionID {
			t.Fatalf("refresh: %+v %v", next.Access, err)
		}
		// Role changes are picked up on refresh.
		s.Users.SetRole(ctx, "alice", identity.RoleAdmin)
		third, err := s.RefreshSession(ctx, next.RefreshToken)
		if err != nil || third.Access.Role != identity.RoleAdmin {
			t.Fatalf("refresh after role change: %+v %v", third.Access, err)
		}
		// Re-use of the first token kills the session: every access token of it too.
		if _, err := s.RefreshSession(ctx, sess.RefreshToken); !errors.Is(err, ErrRefreshReused) {
			t.Fatalf("re-use: %v", err)
		}
		for i, tok := range []string{sess.AccessToken, next.AccessToken, third.AccessToken} {
			if _, err := s.Authenticate(tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("access token %d of the re-used session still valid", i)
			}
		}
		if _, err := s.RefreshSession(ctx, third.RefreshToken); err == nil {
			t.Fatal("the newest refresh token of the re-used session still works")
		}
		// Logout: access token and session revoked at once.
		s2, _ := s.Login(ctx, "alice", "alice's password", "")
		if err := s.Logout(ctx, s2.Access, s2.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(s2.AccessToken); err == nil {
			t.Fatal("access token valid after logout")
		}
		if _, err := s.RefreshSession(ctx, s2.RefreshToken); err == nil {
			t.Fatal("refresh token valid after logout")
		}
		// Revoking a user ends its sessions at once; a login right after works.
		s4, _ := s.Login(ctx, "alice", "alice's password", "")
		if err := s.RevokeUser(ctx, s4.Access.Subject); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(s4.AccessToken); err == nil {
			t.Fatal("access token valid after the user's revocation")
		}
		if _, err := s.RefreshSession(ctx, s4.RefreshToken); err == nil {
			t.Fatal("refresh token valid after the user's revocation")
		}
		s5, err := s.Login(ctx, "alice", "alice's password", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(s5.AccessToken); err != nil {
			t.Fatalf("a login right after the user's revocation: %v", err)
		}
		// A disabled user cannot refresh.
		s3, _ := s.Login(ctx, "alice", "alice's password", "")
		s.Users.SetDisabled(ctx, "alice", true)
		if _, err := s.RefreshSession(ctx, s3.RefreshToken); !errors.Is(err, ErrInvalidRefresh) {
			t.Fatalf("disabled user refresh: %v", err)
		}
	})
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func mustCost(t *testing.T, hash []byte) int {
	t.Helper()
	c, err := bcrypt.Cost(hash)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRevocationBeatsVerifiedCache: a token that was verified (and so sits in
// the verified-token cache) is refused once revoked: at once by the replica
// that revoked it, after its next sync by another one.
func TestRevocationBeatsVerifiedCache(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		here, there := newTestService(t, db), newTestService(t, db)
		there.Tokens, _ = NewTokens(here.Tokens.cfg) // same key, its own cache
		if err := there.Revocations.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		here.Users.Create(ctx, "alice", "alice's password", identity.RoleUser)
		revoke := []struct {
			name string
			do   func(s Session) error
		}{
			{"logout", func(s Session) error { return here.Logout(ctx, s.Access, "") }},
			{"user", func(s Session) error { return here.RevokeUser(ctx, s.Access.Subject) }},
		}
		for _, rv := range revoke {
			t.Run(rv.name, func(t *testing.T) {
				sess, err := here.Login(ctx, "alice", "alice's password", "")
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range []*Service{here, there} {
					if _, err := s.Authenticate(sess.AccessToken); err != nil {
						t.Fatalf("before the revocation: %v", err)
					}
				}
				if err := rv.do(sess); err != nil {
					t.Fatal(err)
				}
				if _, err := here.Authenticate(sess.AccessToken); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("the revoking replica still accepts the cached token: %v", err)
				}
				if err := there.Revocations.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := there.Authenticate(sess.AccessToken); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("the other replica still accepts the cached token after a sync: %v", err)
				}
			})
		}
	})
}

// TestRevocationOutlastsLeeway: Verify accepts a token until exp plus the
// leeway, so its revocation must be kept that long too: a replica reading the
// list (a full read drops expired entries) between exp and exp+leeway must
// still refuse a logged-out token.
func TestRevocationOutlastsLeeway(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	ctx := context.Background()
	// Issued TTL+10s ago: expired 10 s ago, still inside a 30 s leeway.
	past := newTestTokens(t, TokenConfig{TTL: time.Minute, Now: func() time.Time { return time.Now().Add(-time.Minute - 10*time.Second) }})
	tok, claims, err := past.Issue(alice, "")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestService(t, db) // leeway 30 s
	if _, err := s.Authenticate(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	if err := s.Logout(ctx, claims, ""); err != nil {
		t.Fatal(err)
	}
	replica := newTestService(t, db)
	replica.Tokens = s.Tokens
	if err := replica.Revocations.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Authenticate(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a replica reading the list after exp accepts the logged-out token: %v", err)
	}
}

// TestRefreshConcurrentReuse: the same refresh token presented several times
// at once (a stolen copy raced against its owner) yields at most one new
// session, and the re-use detected meanwhile ends the whole session, that
// new one included.
func TestRefreshConcurrentReuse(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newTestService(t, db)
		s.Users.Create(ctx, "alice", "alice's password", identity.RoleUser)
		sess, err := s.Login(ctx, "alice", "alice's password", "")
		if err != nil {
			t.Fatal(err)
		}
		const n = 6
		var wg sync.WaitGroup
		got := make([]Session, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); got[i], errs[i] = s.RefreshSession(ctx, sess.RefreshToken) }()
		}
		wg.Wait()
		var wins []Session
		reused := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins = append(wins, got[i])
			case errors.Is(err, ErrRefreshReused):
				reused++
			case errors.Is(err, ErrInvalidRefresh):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		// The winner may already learn of the re-use and get ErrInvalidRefresh.
		if len(wins) > 1 || reused == 0 {
			t.Fatalf("%d rotations succeeded, %d saw a re-use; want at most 1 and at least 1", len(wins), reused)
		}
		for _, w := range append(wins, sess) {
			if _, err := s.Authenticate(w.AccessToken); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("an access token of the session outlives the detected re-use: %v", err)
			}
			if _, err := s.RefreshSession(ctx, w.RefreshToken); err == nil {
				t.Fatal("a refresh token of the session outlives the detected re-use")
			}
		}
	})
}

// TestLoginKnownDeviceSkipsUsernameBan: failures from rotating addresses ban
// the username; the real user's browser, which signed in before and holds
// its device token, still signs in, while a new client stays banned. The
// known device stays subject to its own failure limit, and a device token of
// another account, or a forged one, is no exemption.
func TestLoginKnownDeviceSkipsUsernameBan(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newTestService(t, db) // 3 failures ban
		s.Users.Create(ctx, "alice", "alice's password", identity.RoleUser)
		s.Users.Create(ctx, "bob", "bob's password", identity.RoleUser)
		first, err := s.Login(ctx, "alice", "alice's password", "10.0.0.1")
		if err != nil || first.Device == "" {
			t.Fatalf("first login: %+v %v", first, err)
		}
		bobs, err := s.Login(ctx, "bob", "bob's password", "10.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := s.Login(ctx, "alice", "wrong", "192.0.2."+strconv.Itoa(i+1)); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		var banned *BannedError
		for name, device := range map[string]string{
			"no device token":        "",
			"bob's device token":     bobs.Device,
			"a forged device token":  first.Device[:len(first.Device)-2] + "AA",
			"a token of another key": newTestTokens(t, TokenConfig{Key: otherKey}).IssueDevice(first.Access.Subject),
		} {
			if _, err := s.LoginWithDevice(ctx, "alice", "alice's password", "198.51.100.1", device); !errors.As(err, &banned) {
				t.Errorf("new client with %s: err = %v, want the username ban", name, err)
			}
		}
		sess, err := s.LoginWithDevice(ctx, "alice", "alice's password", "198.51.100.2", first.Device)
		if err != nil || sess.Device != first.Device {
			t.Fatalf("alice's own browser: %+v %v", sess, err)
		}
		// The known device's own failures ban it (from whatever address).
		for i := range 3 {
			if _, err := s.LoginWithDevice(ctx, "alice", "wrong", "203.0.113."+strconv.Itoa(i+1), first.Device); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("device failure %d: %v", i, err)
			}
		}
		if _, err := s.LoginWithDevice(ctx, "alice", "alice's password", "203.0.113.9", first.Device); !errors.As(err, &banned) {
			t.Fatalf("a device over its own limit: err = %v", err)
		}
	})
}
