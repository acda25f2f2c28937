// Package auth is the gateway's authentication domain: HS256 access tokens
// (issue, verify, revoke), accounts with bcrypt password hashes, rotated
// refresh tokens in families, and login regulation against brute force. It
// knows nothing of Caddy; caddymodules/claudeauth wires it into HTTP.
package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/claude-gateway/claude-gateway/identity"
)

// Errors of the login flow.
var (
	// ErrInvalidCredentials: unknown user, wrong password or disabled account,
	// deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("invalid username or password")
)

// BannedError is returned by Login while the username or the client address is banned.
type BannedError struct {
	// RetryAfter is how long the ban still lasts.
	RetryAfter time.Duration
}

// Error says how long the ban lasts.
func (e *BannedError) Error() string {
	return fmt.Sprintf("too many failed logins; retry in %s", e.RetryAfter.Round(time.Second))
}

// Session is what a login or a refresh hands to the client.
type Session struct {
	// AccessToken is the signed access JWT.
	AccessToken string
	// Access are its claims.
	Access *Claims
	// RefreshToken is the opaque refresh token of the session.
	RefreshToken string
	// RefreshExpires is when RefreshToken stops being accepted.
	RefreshExpires time.Time
}

// Service ties the pieces of the domain together for the HTTP layer.
type Service struct {
	// Tokens issues and verifies access tokens.
	Tokens *Tokens
	// Users is the account store.
	Users *Users
	// Refresh is the refresh token store.
	Refresh *RefreshTokens
	// Revocations is the revocation list (shared by the replicas' snapshots).
	Revocations *Revocations
	// Regulator bans usernames and addresses after repeated login failures.
	Regulator RegulationStore

	dummyHash []byte
}

// loginAttempts lets one login attempt per username run at a time in the
// process, across every Service (each handler and config has its own).
var loginAttempts keyLock

// NewService returns a Service over its parts.
func NewService(tokens *Tokens, users *Users, refresh *RefreshTokens, revocations *Revocations, regulator RegulationStore) *Service {
	return &Service{Tokens: tokens, Users: users, Refresh: refresh, Revocations: revocations, Regulator: regulator,
		dummyHash: dummyHash(users.cost)}
}

// dummyHashes holds, per bcrypt cost, the hash of a random password that
// unknown usernames are compared against, so they take as long as a wrong
// password. Made once per cost and process: bcrypt is slow on purpose.
var dummyHashes sync.Map // int → []byte

func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(GeneratePassword(20)), cost)
	if err != nil {
		panic("bcrypt: " + err.Error())
	}
	actual, _ := dummyHashes.LoadOrStore(cost, h)
	return actual.([]byte)
}

// Regulation keys.
func userRegKey(username string) string { return "user:" + username }
func addrRegKey(addr string) string     { return "addr:" + addr }

// Login checks a username and password from clientAddr and, when they are
// right, starts a session. While the username or the address is banned it
// returns a *BannedError without looking at the password; a wrong password,
// an unknown user and a disabled account all return ErrInvalidCredentials
// after the same bcrypt work. A successful login re-hashes a password stored
// at another bcrypt cost than the configured one.
func (s *Service) Login(ctx context.Context, username, password, clientAddr string) (Session, error) {
	username = NormalizeUsername(username)
	// A name that cannot exist gets no key of its own (it could be longer
	// than the key column, or not UTF-8); the address still counts it.
	var keys []string
	if ValidUsername(username) == nil {
		keys = append(keys, userRegKey(username))
		// Without this, guesses sent at once all pass the ban check before
		// any failure is recorded. (Replicas still check in parallel: at most
		// one extra guess each.)
		defer loginAttempts.lock(username)()
	}
	if clientAddr != "" {
		keys = append(keys, addrRegKey(clientAddr))
	}
	now := time.Now()
	d, err := s.Regulator.Banned(ctx, now, keys...)
	if err != nil {
		return Session{}, err
	}
	if d > 0 {
		return Session{}, &BannedError{RetryAfter: d}
	}
	acct, err := s.Users.ByName(ctx, username)
	switch {
	case errors.Is(err, ErrUserNotFound):
		checkPassword(s.dummyHash, password)
		return Session{}, s.failed(ctx, now, keys)
	case err != nil:
		return Session{}, err
	}
	ok := checkPassword(acct.passwordHash, password)
	if !ok || acct.Disabled {
		return Session{}, s.failed(ctx, now, keys)
	}
	if err := s.Regulator.Reset(ctx, now, userRegKey(username)); err != nil {
		return Session{}, err
	}
	if err := s.Users.rehashIfNeeded(ctx, acct, password); err != nil {
		return Session{}, err
	}
	refresh, rt, err := s.Refresh.Issue(ctx, acct.ID)
	if err != nil {
		return Session{}, err
	}
	return s.session(acct, refresh, rt)
}

// failed records a failed login; an unrecorded failure would be a free
// guess, so a store error is returned instead of ErrInvalidCredentials.
func (s *Service) failed(ctx context.Context, now time.Time, keys []string) error {
	if err := s.Regulator.Fail(ctx, now, keys...); err != nil {
		return err
	}
	return ErrInvalidCredentials
}

func (s *Service) session(acct Account, refresh string, rt RefreshToken) (Session, error) {
	tok, claims, err := s.Tokens.Issue(acct.Identity(), rt.Family)
	if err != nil {
		return Session{}, err
	}
	return Session{AccessToken: tok, Access: claims, RefreshToken: refresh, RefreshExpires: rt.ExpiresAt}, nil
}

// RefreshSession rotates a refresh token and issues a new access token with
// the account's current name and role. Re-use of a rotated token revokes the
// whole session (its refresh family and every access token of it) and
// returns ErrRefreshReused.
func (s *Service) RefreshSession(ctx context.Context, refresh string) (Session, error) {
	next, rt, err := s.Refresh.Rotate(ctx, refresh)
	if errors.Is(err, ErrRefreshReused) {
		if rerr := s.Revocations.RevokeSession(ctx, rt.Family); rerr != nil {
			return Session{}, errors.Join(err, rerr)
		}
		return Session{}, err
	}
	if err != nil {
		return Session{}, err
	}
	if s.Revocations.SessionRevoked(rt.Family) {
		s.Refresh.RevokeFamily(ctx, rt.Family)
		return Session{}, ErrInvalidRefresh
	}
	acct, err := s.Users.ByID(ctx, rt.UserID)
	if errors.Is(err, ErrUserNotFound) || (err == nil && acct.Disabled) {
		s.Refresh.RevokeFamily(ctx, rt.Family)
		return Session{}, ErrInvalidRefresh
	}
	if err != nil {
		return Session{}, err
	}
	return s.session(acct, next, rt)
}

// Logout revokes the access token access (when not nil) and its session, and
// the session of the refresh token refresh (when not empty), at once.
func (s *Service) Logout(ctx context.Context, access *Claims, refresh string) error {
	var errs []error
	if access != nil {
		exp := time.Now().Add(MaxAccessTTL)
		if access.ExpiresAt != nil {
			exp = access.ExpiresAt.Time
		}
		errs = append(errs, s.Revocations.RevokeToken(ctx, access.ID, exp))
		if access.SessionID != "" {
			errs = append(errs, s.Refresh.RevokeFamily(ctx, access.SessionID), s.Revocations.RevokeSession(ctx, access.SessionID))
		}
	}
	if refresh != "" {
		if rt, err := s.Refresh.Lookup(ctx, refresh); err == nil && (access == nil || rt.Family != access.SessionID) {
			errs = append(errs, s.Refresh.RevokeFamily(ctx, rt.Family), s.Revocations.RevokeSession(ctx, rt.Family))
		}
	}
	return errors.Join(errs...)
}

// Authenticate verifies an access token and checks it against the revocation
// list. Errors wrap ErrInvalidToken.
func (s *Service) Authenticate(token string) (*Claims, error) {
	c, err := s.Tokens.Verify(token)
	if err != nil {
		return nil, err
	}
	if s.Revocations.Revoked(c) {
		return nil, fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	return c, nil
}

// IssueAccess signs an access token for a user already authenticated (for
// instance on another host of the gateway), in the same session sid.
func (s *Service) IssueAccess(u identity.User, sid string) (string, *Claims, error) {
	return s.Tokens.Issue(u, sid)
}

// RevokeUser ends every session of an account and every access token issued
// to it so far (after a password change, a disable or a delete).
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	return RevokeUser(ctx, s.Refresh, s.Revocations, userID)
}

// RevokeUser ends every login session of an account (its refresh families
// and their access tokens) and revokes the access tokens issued to it before
// the current second that belong to no session. New logins are unaffected.
func RevokeUser(ctx context.Context, refresh *RefreshTokens, revocations *Revocations, userID string) error {
	families, err := refresh.RevokeUser(ctx, userID)
	if err != nil {
		return err
	}
	errs := []error{revocations.RevokeUser(ctx, userID)}
	for _, f := range families {
		errs = append(errs, revocations.RevokeSession(ctx, f))
	}
	return errors.Join(errs...)
}
