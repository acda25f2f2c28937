// Package ideticket hands a signed-in browser session from the app host to the
// IDE host: the app host issues a one-time ticket for a user, the browser
// carries it to the IDE host in a redirect, and the IDE host redeems it once,
// within seconds, for a cookie of its own. Tickets live in the shared
// database, so any replica can redeem what another issued; only their SHA-256
// is stored.
//
// A ticket is also bound to the browser that started the sign-on: the IDE
// host gives that browser a random nonce in a cookie of its own (NewNonce)
// and sends only its Binding to the app host, which stores it in the ticket
// (Grant.State). Redeem spends a ticket only for the nonce it is bound to, so
// a ticket minted by one person cannot sign another person's browser in
// (login CSRF), in the way OAuth's state parameter and PKCE bind an
// authorization code to the client that asked for it.
package ideticket

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/identity"
)

// Ticket lifetimes.
const (
	// DefaultTTL is how long a ticket may wait for its redemption.
	DefaultTTL = 30 * time.Second
	// MaxTTL bounds TTL: a ticket only covers one redirect.
	MaxTTL = 60 * time.Second
)

// MaxNextLength is the longest Grant.Next a ticket can carry: the size of
// the column that keeps it.
const MaxNextLength = 2048

// ErrNextTooLong is returned by Issue for a Grant.Next longer than
// MaxNextLength; nothing is stored.
var ErrNextTooLong = fmt.Errorf("ideticket: the path to land on is longer than %d bytes", MaxNextLength)

// ErrInvalidTicket is returned for a ticket that is unknown, expired, already
// redeemed or meant for another audience. The cases are not told apart.
var ErrInvalidTicket = errors.New("ideticket: invalid, expired or already used ticket")

// ErrNoState is returned by Issue for a Grant.State that is not a binding
// made by Binding; nothing is stored.
var ErrNoState = errors.New("ideticket: a ticket must be bound to the browser that started the sign-on")

// ErrStateMismatch is returned by Redeem for a valid ticket presented
// without the nonce it is bound to: another browser than the one that
// started the sign-on holds it. The ticket is spent all the same.
var ErrStateMismatch = errors.New("ideticket: the ticket belongs to a sign-on started by another browser")

// Grant is what a ticket carries from the app host to the IDE host.
type Grant struct {
	// User is the signed-in user.
	User identity.User
	// SessionID is the login session (refresh family) of the app host's
	// token, so that logging out there also ends the IDE host's session.
	SessionID string
	// Next is the same-origin path on the IDE host to land on.
	Next string
	// State is the Binding of the nonce of the browser that started the
	// sign-on; only that nonce redeems the ticket.
	State string
}

// nonceBytes is the size of a nonce before encoding: 256 random bits.
const nonceBytes = 32

// NewNonce returns a fresh random nonce for a browser starting a sign-on,
// 43 base64url characters; it belongs in that browser's cookie and nowhere
// else.
func NewNonce() (string, error) {
	raw := make([]byte, nonceBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("ideticket: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// Binding returns what may leave the browser in place of nonce: its SHA-256
// in base64url, 43 characters. The nonce cannot be recovered from it.
func Binding(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidBinding reports whether b has the form of a Binding.
func ValidBinding(b string) bool { return encoded(b, sha256.Size) }

// ValidNonce reports whether n has the form of a nonce from NewNonce.
func ValidNonce(n string) bool { return encoded(n, nonceBytes) }

// encoded reports whether s is the strict base64url encoding (no padding)
// of size bytes.
func encoded(s string, size int) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(size) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// Store issues and redeems tickets. It is safe for concurrent use.
type Store struct {
	db  *database.DB
	ttl time.Duration
	now func() time.Time
}

// NewStore returns a Store whose tickets live for ttl (0 means DefaultTTL; at
// most MaxTTL).
func NewStore(db *database.DB, ttl time.Duration) (*Store, error) {
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0 || ttl > MaxTTL:
		return nil, fmt.Errorf("ideticket: ticket lifetime %s is outside (0, %s]", ttl, MaxTTL)
	}
	return &Store{db: db, ttl: ttl, now: time.Now}, nil
}

// TTL is the lifetime of new tickets.
func (s *Store) TTL() time.Duration { return s.ttl }

// Issue stores a ticket for g, redeemable once by audience (the IDE host's
// origin) within the store's TTL and only with the nonce of g.State, and
// returns it.
func (s *Store) Issue(ctx context.Context, audience string, g Grant) (string, error) {
	if g.User.ID == "" || audience == "" {
		return "", errors.New("ideticket: a ticket needs a user and an audience")
	}
	if len(g.Next) > MaxNextLength {
		return "", ErrNextTooLong
	}
	if !ValidBinding(g.State) {
		return "", ErrNoState
	}
	ticket, err := NewNonce()
	if err != nil {
		return "", err
	}
	now := s.now()
	// Expired tickets are useless; drop them while we are here.
	if _, err := s.db.ExecContext(ctx, "DELETE FROM ide_tickets WHERE expires_at < ?", now.UnixMilli()); err != nil {
		return "", fmt.Errorf("ideticket: deleting expired tickets: %w", err)
	}
	_, err = s.db.ExecContext(ctx,
		"INSERT INTO ide_tickets (ticket_hash, audience, user_id, username, role, session_id, next_path, state_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		hash(ticket), audience, g.User.ID, g.User.Username, g.User.Role, g.SessionID, g.Next, g.State, now.UnixMilli(), now.Add(s.ttl).UnixMilli())
	if err != nil {
		return "", fmt.Errorf("ideticket: storing a ticket: %w", err)
	}
	return ticket, nil
}

// Redeem spends ticket for audience and returns its grant when nonce (the
// presenting browser's state cookie) is the one the ticket is bound to. A
// ticket is redeemed at most once, even by replicas racing on the same
// database: the redemption is one conditional UPDATE, and only the caller
// that changed the row wins.
//
// A ticket presented with the wrong nonce, or none, is spent as well and
// ErrStateMismatch returned: a ticket is good for one presentation whatever
// its outcome, as an OAuth authorization code is, so a ticket that left its
// browser cannot be tried again.
func (s *Store) Redeem(ctx context.Context, audience, ticket, nonce string) (Grant, error) {
	if len(ticket) != 43 {
		return Grant{}, ErrInvalidTicket
	}
	h := hash(ticket)
	now := s.now().UnixMilli()
	res, err := s.db.ExecContext(ctx,
		"UPDATE ide_tickets SET used_at = ? WHERE ticket_hash = ? AND audience = ? AND used_at IS NULL AND expires_at >= ?",
		now, h, audience, now)
	if err != nil {
		return Grant{}, fmt.Errorf("ideticket: redeeming a ticket: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Grant{}, fmt.Errorf("ideticket: redeeming a ticket: %w", err)
	} else if n != 1 {
		return Grant{}, ErrInvalidTicket
	}
	var g Grant
	err = s.db.QueryRowContext(ctx,
		"SELECT user_id, username, role, session_id, next_path, state_hash FROM ide_tickets WHERE ticket_hash = ?", h).
		Scan(&g.User.ID, &g.User.Username, &g.User.Role, &g.SessionID, &g.Next, &g.State)
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, ErrInvalidTicket
	}
	if err != nil {
		return Grant{}, fmt.Errorf("ideticket: reading a ticket: %w", err)
	}
	// A row without a binding (written before migration 8) never matches:
	// ValidBinding refuses the empty string.
	if nonce == "" || !ValidBinding(g.State) ||
		subtle.ConstantTimeCompare([]byte(Binding(nonce)), []byte(g.State)) != 1 {
		return Grant{}, ErrStateMismatch
	}
	return g, nil
}

// Recent counts the tickets issued to userID within the store's TTL. A browser
// that does not keep the IDE host's cookie comes back for ticket after ticket;
// the count lets the caller break that loop.
func (s *Store) Recent(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ide_tickets WHERE user_id = ? AND created_at >= ?",
		userID, s.now().Add(-s.ttl).UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("ideticket: counting recent tickets: %w", err)
	}
	return n, nil
}

func hash(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return hex.EncodeToString(sum[:])
}
