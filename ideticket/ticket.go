// Package ideticket hands a signed-in browser session from the app host to the
// IDE host: the app host issues a one-time ticket for a user, the browser
// carries it to the IDE host in a redirect, and the IDE host redeems it once,
// within seconds, for a cookie of its own. Tickets live in the shared
// database, so any replica can redeem what another issued; only their SHA-256
// is stored.
package ideticket

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/store"
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

// Grant is what a ticket carries from the app host to the IDE host.
type Grant struct {
	// User is the signed-in user.
	User identity.User
	// SessionID is the login session (refresh family) of the app host's
	// token, so that logging out there also ends the IDE host's session.
	SessionID string
	// Next is the same-origin path on the IDE host to land on.
	Next string
}

// Store issues and redeems tickets. It is safe for concurrent use.
type Store struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time
}

// NewStore returns a Store whose tickets live for ttl (0 means DefaultTTL; at
// most MaxTTL).
func NewStore(db *store.DB, ttl time.Duration) (*Store, error) {
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
// origin) within the store's TTL, and returns it.
func (s *Store) Issue(ctx context.Context, audience string, g Grant) (string, error) {
	if g.User.ID == "" || audience == "" {
		return "", errors.New("ideticket: a ticket needs a user and an audience")
	}
	if len(g.Next) > MaxNextLength {
		return "", ErrNextTooLong
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("ideticket: %w", err)
	}
	ticket := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	// Expired tickets are useless; drop them while we are here.
	if _, err := s.db.ExecContext(ctx, "DELETE FROM ide_tickets WHERE expires_at < ?", now.UnixMilli()); err != nil {
		return "", fmt.Errorf("ideticket: deleting expired tickets: %w", err)
	}
	_, err := s.db.ExecContext(ctx,
		"INSERT INTO ide_tickets (ticket_hash, audience, user_id, username, role, session_id, next_path, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		hash(ticket), audience, g.User.ID, g.User.Username, g.User.Role, g.SessionID, g.Next, now.UnixMilli(), now.Add(s.ttl).UnixMilli())
	if err != nil {
		return "", fmt.Errorf("ideticket: storing a ticket: %w", err)
	}
	return ticket, nil
}

// Redeem spends ticket for audience and returns its grant. A ticket is
// redeemed at most once, even by replicas racing on the same database: the
// redemption is one conditional UPDATE, and only the caller that changed
// the row wins.
func (s *Store) Redeem(ctx context.Context, audience, ticket string) (Grant, error) {
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
		"SELECT user_id, username, role, session_id, next_path FROM ide_tickets WHERE ticket_hash = ?", h).
		Scan(&g.User.ID, &g.User.Username, &g.User.Role, &g.SessionID, &g.Next)
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, ErrInvalidTicket
	}
	if err != nil {
		return Grant{}, fmt.Errorf("ideticket: reading a ticket: %w", err)
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
