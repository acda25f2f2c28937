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
	// Device is the device token of the client after a login (see
	// LoginWithDevice); empty after a refresh.
	Device string
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
	// OnBan, when set, is called with each regulation key ("user:<name>",
	// "addr:<ip>") that a failed login just banned, and the ban's end.
	OnBan func(key string, until time.Time)

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
func deviceRegKey(id string) string     { return "device:" + id }

// Login checks a username and password from clientAddr and, when they are
// right, starts a session. It is LoginWithDevice without a device token.
func (s *Service) Login(ctx context.Context, username, password, clientAddr string) (Session, error) {
	return s.LoginWithDevice(ctx, username, password, clientAddr, "")
}

// LoginWithDevice checks a username and password from clientAddr and, when
// they are right, starts a session. While the username or the address is
// banned it returns a *BannedError without looking at the password; a wrong
// password, an unknown user and a disabled account all return
// ErrInvalidCredentials after the same bcrypt work. A successful login
// re-hashes a password stored at another bcrypt cost than the configured
// one.
//
// device is the device token the client presents (see IssueDevice), or "".
// A client whose device token is for this username's account has signed in
// to it before: the username's ban does not apply to it (failures from
// rotating addresses would otherwise lock the real user out everywhere);
// its own device's and address's bans do. A successful login returns the
// device token to keep in Session.Device.
func (s *Service) LoginWithDevice(ctx context.Context, username, password, clientAddr, device string) (Session, error) {
	username = NormalizeUsername(username)
	// A name that cannot exist gets no key of its own (it could be longer
	// than the key column, or not UTF-8); the address still counts it.
	validName := ValidUsername(username) == nil
	if validName {
		// Without this, guesses sent at once all pass the ban check before
		// any failure is recorded. (Replicas still check in parallel: at most
		// one extra guess each.)
		defer loginAttempts.lock(username)()
	}
	var deviceID string
	if validName && device != "" {
		if id, uid, ok := s.Tokens.VerifyDevice(device); ok {
			if acct, err := s.Users.ByName(ctx, username); err == nil && acct.ID == uid {
				deviceID = id
			}
		}
	}
	// Failures count against the username, the address and the device; a
	// known device is held to its own and its address's bans only.
	var failKeys, banKeys []string
	if validName {
		failKeys = append(failKeys, userRegKey(username))
		if deviceID == "" {
			banKeys = append(banKeys, userRegKey(username))
		}
	}
	if deviceID != "" {
		failKeys = append(failKeys, deviceRegKey(deviceID))
		banKeys = append(banKeys, deviceRegKey(deviceID))
	}
	if clientAddr != "" {
		failKeys = append(failKeys, addrRegKey(clientAddr))
		banKeys = append(banKeys, addrRegKey(clientAddr))
	}
	now := time.Now()
	d, err := s.Regulator.Banned(ctx, now, banKeys...)
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
		return Session{}, s.failed(ctx, now, failKeys)
	case err != nil:
		return Session{}, err
	}
	ok := checkPassword(acct.passwordHash, password)
	if !ok || acct.Disabled {
		return Session{}, s.failed(ctx, now, failKeys)
	}
	if err := s.Regulator.Reset(ctx, now, userRegKey(username)); err != nil {
		return Session{}, err
	}
	if deviceID != "" {
		if err := s.Regulator.Reset(ctx, now, deviceRegKey(deviceID)); err != nil {
			return Session{}, err
		}
	}
	if err := s.Users.rehashIfNeeded(ctx, acct, password); err != nil {
		return Session{}, err
	}
	refresh, rt, err := s.Refresh.Issue(ctx, acct.ID)
	if err != nil {
		return Session{}, err
	}
	sess, err := s.session(acct, refresh, rt)
	if err != nil {
		return Session{}, err
	}
	if deviceID != "" {
		sess.Device = device
	} else {
		sess.Device = s.Tokens.IssueDevice(acct.ID)
	}
	return sess, nil
}

// failed records a failed login; an unrecorded failure would be a free
// guess, so a store error is returned instead of ErrInvalidCredentials.
func (s *Service) failed(ctx context.Context, now time.Time, keys []string) error {
	if err := s.Regulator.Fail(ctx, now, keys...); err != nil {
		return err
	}
	if s.OnBan != nil {
		// Login checked that none was banned: a ban now began with this failure.
		for _, k := range keys {
			if d, err := s.Regulator.Banned(ctx, now, k); err == nil && d > 0 {
				s.OnBan(k, now.Add(d))
			}
		}
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
	return s.AuthenticateType(token, TokenTypeAccess)
}

// AuthenticateType is Authenticate for a token of type typ (TokenTypeAccess
// or TokenTypeIDE).
func (s *Service) AuthenticateType(token, typ string) (*Claims, error) {
	c, err := s.Tokens.VerifyType(token, typ)
	if err != nil {
		return nil, err
	}
	if s.Revocations.Revoked(c) {
		return nil, fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	return c, nil
}

// IssueIDE signs an IDE token (valid on the IDE host only) for a user
// already authenticated on the app host, in the same login session sid: the
// app's logout or a revocation of the session ends it too.
func (s *Service) IssueIDE(u identity.User, sid string) (string, *Claims, error) {
	return s.Tokens.IssueType(TokenTypeIDE, u, sid)
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
