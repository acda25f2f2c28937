package auth

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

	"github.com/claude-gateway/claude-gateway/database"
)

// DefaultRefreshTTL is the lifetime of a refresh token; each rotation starts a new one.
const DefaultRefreshTTL = 7 * 24 * time.Hour

// Errors of refresh token rotation.
var (
	// ErrInvalidRefresh: unknown, expired or revoked refresh token.
	ErrInvalidRefresh = errors.New("invalid refresh token")
	// ErrRefreshReused: a refresh token that was already rotated came back;
	// its whole family has been revoked.
	ErrRefreshReused = errors.New("refresh token re-used; its session has been revoked")
)

// RefreshToken is one stored refresh token.
type RefreshToken struct {
	// Family is the login session the token belongs to; rotations stay in it.
	Family string
	// UserID is the account it was issued to.
	UserID string
	// ExpiresAt is when it stops being accepted.
	ExpiresAt time.Time
}

// RefreshTokens stores refresh tokens by their SHA-256 only, in families:
// each rotation marks the presented token used and issues the next one of the
// family; presenting a used one revokes the family.
type RefreshTokens struct {
	db  *database.DB
	ttl time.Duration
}

// NewRefreshTokens returns the refresh token store over db; ttl 0 means DefaultRefreshTTL.
func NewRefreshTokens(db *database.DB, ttl time.Duration) *RefreshTokens {
	if ttl == 0 {
		ttl = DefaultRefreshTTL
	}
	return &RefreshTokens{db: db, ttl: ttl}
}

func hashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Issue starts a new family for userID and returns its first token.
func (r *RefreshTokens) Issue(ctx context.Context, userID string) (string, RefreshToken, error) {
	return r.insert(ctx, r.db, RandomID(), userID)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (r *RefreshTokens) insert(ctx context.Context, db execer, family, userID string) (string, RefreshToken, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", RefreshToken{}, fmt.Errorf("generating a refresh token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := time.Now()
	rt := RefreshToken{Family: family, UserID: userID, ExpiresAt: now.Add(r.ttl)}
	if _, err := db.ExecContext(ctx,
		"INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		hashRefresh(token), family, userID, now.UnixMilli(), rt.ExpiresAt.UnixMilli()); err != nil {
		return "", RefreshToken{}, fmt.Errorf("storing a refresh token: %w", err)
	}
	return token, rt, nil
}

// Lookup returns the stored record of a token without changing it.
func (r *RefreshTokens) Lookup(ctx context.Context, token string) (RefreshToken, error) {
	var rt RefreshToken
	var exp int64
	err := r.db.QueryRowContext(ctx, "SELECT family_id, user_id, expires_at FROM refresh_tokens WHERE token_hash = ?",
		hashRefresh(token)).Scan(&rt.Family, &rt.UserID, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, ErrInvalidRefresh
	}
	if err != nil {
		return RefreshToken{}, fmt.Errorf("reading a refresh token: %w", err)
	}
	rt.ExpiresAt = time.UnixMilli(exp)
	return rt, nil
}

// Rotate consumes token and returns the next token of its family. A token
// that was already consumed revokes the family and returns ErrRefreshReused;
// an unknown, expired or revoked one returns ErrInvalidRefresh.
func (r *RefreshTokens) Rotate(ctx context.Context, token string) (string, RefreshToken, error) {
	if token == "" || len(token) > 256 {
		return "", RefreshToken{}, ErrInvalidRefresh
	}
	h := hashRefresh(token)
	var family, userID string
	var exp int64
	var used, revoked sql.NullInt64
	err := r.db.QueryRowContext(ctx,
		"SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?", h).
		Scan(&family, &userID, &exp, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return "", RefreshToken{}, ErrInvalidRefresh
	}
	if err != nil {
		return "", RefreshToken{}, fmt.Errorf("reading a refresh token: %w", err)
	}
	now := time.Now()
	switch {
	case revoked.Valid:
		return "", RefreshToken{}, ErrInvalidRefresh
	case used.Valid:
		return "", RefreshToken{Family: family, UserID: userID}, r.reused(ctx, family)
	case now.UnixMilli() >= exp:
		return "", RefreshToken{}, ErrInvalidRefresh
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return "", RefreshToken{}, fmt.Errorf("rotating a refresh token: %w", err)
	}
	defer tx.Rollback()
	// Only one of two concurrent rotations of the same token wins this update;
	// the loser is treated as a re-use.
	res, err := tx.ExecContext(ctx,
		"UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL",
		now.UnixMilli(), h)
	if err != nil {
		return "", RefreshToken{}, fmt.Errorf("rotating a refresh token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		tx.Rollback()
		return "", RefreshToken{Family: family, UserID: userID}, r.reused(ctx, family)
	}
	next, rt, err := r.insert(ctx, tx, family, userID)
	if err != nil {
		return "", RefreshToken{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", RefreshToken{}, fmt.Errorf("rotating a refresh token: %w", err)
	}
	return next, rt, nil
}

func (r *RefreshTokens) reused(ctx context.Context, family string) error {
	if err := r.RevokeFamily(ctx, family); err != nil {
		return errors.Join(ErrRefreshReused, err)
	}
	return ErrRefreshReused
}

// RevokeFamily revokes every token of a family.
func (r *RefreshTokens) RevokeFamily(ctx context.Context, family string) error {
	if _, err := r.db.ExecContext(ctx,
		"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
		database.NowMillis(), family); err != nil {
		return fmt.Errorf("revoking a refresh token family: %w", err)
	}
	return nil
}

// RevokeUser revokes every refresh token of an account and returns the
// families (login sessions) that were still live.
func (r *RefreshTokens) RevokeUser(ctx context.Context, userID string) ([]string, error) {
	now := database.NowMillis()
	rows, err := r.db.QueryContext(ctx,
		"SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, now)
	if err != nil {
		return nil, fmt.Errorf("listing a user's sessions: %w", err)
	}
	var families []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing a user's sessions: %w", err)
		}
		families = append(families, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing a user's sessions: %w", err)
	}
	if _, err := r.db.ExecContext(ctx,
		"UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", now, userID); err != nil {
		return nil, fmt.Errorf("revoking a user's refresh tokens: %w", err)
	}
	return families, nil
}

// DeleteExpired removes tokens that expired before cutoff and returns how many.
func (r *RefreshTokens) DeleteExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := r.db.ExecContext(ctx, "DELETE FROM refresh_tokens WHERE expires_at < ?", cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("deleting expired refresh tokens: %w", err)
	}
	return res.RowsAffected()
}
