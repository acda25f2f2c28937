package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/identity"
)

// Password rules. bcrypt reads at most 72 bytes, so longer passwords are
// refused rather than silently truncated.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 72
)

// Errors of the user database.
var (
	ErrUserNotFound = errors.New("no such user")
	ErrUserExists   = errors.New("a user with this name exists")
)

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// NormalizeUsername is the form usernames are stored and looked up in: lower case, trimmed.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidUsername checks a normalized username: 1 to 64 of a-z 0-9 . _ @ -,
// starting with a letter or digit.
func ValidUsername(s string) error {
	if !usernamePattern.MatchString(s) {
		return fmt.Errorf("invalid username %q: use 1 to 64 characters a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit", s)
	}
	return nil
}

// ValidRole checks a role name.
func ValidRole(r string) error {
	if r != identity.RoleAdmin && r != identity.RoleUser {
		return fmt.Errorf("invalid role %q: want %q or %q", r, identity.RoleAdmin, identity.RoleUser)
	}
	return nil
}

// ValidPassword checks a new password's length.
func ValidPassword(p string) error {
	if len(p) < MinPasswordBytes || len(p) > MaxPasswordBytes {
		return fmt.Errorf("the password must be %d to %d bytes long", MinPasswordBytes, MaxPasswordBytes)
	}
	return nil
}

// Account is a stored user.
type Account struct {
	// ID is the stable user id, the tokens' "sub".
	ID string
	// Username is the unique, normalized login name.
	Username string
	// Role is identity.RoleAdmin or identity.RoleUser.
	Role string
	// Disabled accounts cannot log in or refresh.
	Disabled bool
	// CreatedAt and UpdatedAt are when the row was written.
	CreatedAt, UpdatedAt time.Time

	passwordHash []byte
}

// Identity is the account as a request identity.
func (a Account) Identity() identity.User {
	return identity.User{ID: a.ID, Username: a.Username, Role: a.Role}
}

// Users is the account database.
type Users struct {
	db   *database.DB
	cost int
}

// NewUsers returns the account store over db, hashing with bcrypt at cost
// (0 means bcrypt.DefaultCost).
func NewUsers(db *database.DB, cost int) *Users {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return &Users{db: db, cost: cost}
}

// HashPassword hashes a password with the store's bcrypt cost.
func (u *Users) HashPassword(password string) ([]byte, error) {
	if err := ValidPassword(password); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), u.cost)
	if err != nil {
		return nil, fmt.Errorf("hashing the password: %w", err)
	}
	return h, nil
}

// Create adds an account.
func (u *Users) Create(ctx context.Context, username, password, role string) (Account, error) {
	username = NormalizeUsername(username)
	if err := ValidUsername(username); err != nil {
		return Account{}, err
	}
	if err := ValidRole(role); err != nil {
		return Account{}, err
	}
	h, err := u.HashPassword(password)
	if err != nil {
		return Account{}, err
	}
	now := time.Now()
	a := Account{ID: RandomID(), Username: username, Role: role, CreatedAt: now, UpdatedAt: now, passwordHash: h}
	_, err = u.db.ExecContext(ctx,
		"INSERT INTO users (id, username, password_hash, role, disabled, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
		a.ID, a.Username, string(h), a.Role, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		if u.exists(ctx, username) {
			return Account{}, fmt.Errorf("%w: %s", ErrUserExists, username)
		}
		return Account{}, fmt.Errorf("creating user %s: %w", username, err)
	}
	return a, nil
}

func (u *Users) exists(ctx context.Context, username string) bool {
	_, err := u.ByName(ctx, username)
	return err == nil
}

const userColumns = "id, username, password_hash, role, disabled, created_at, updated_at"

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var hash string
	var disabled int
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Username, &hash, &a.Role, &disabled, &created, &updated); err != nil {
		return Account{}, err
	}
	a.passwordHash = []byte(hash)
	a.Disabled = disabled != 0
	a.CreatedAt, a.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return a, nil
}

// ByName returns the account with the given (normalized on the way) username.
func (u *Users) ByName(ctx context.Context, username string) (Account, error) {
	return u.one(ctx, "username", NormalizeUsername(username))
}

// ByID returns the account with the given id.
func (u *Users) ByID(ctx context.Context, id string) (Account, error) {
	return u.one(ctx, "id", id)
}

func (u *Users) one(ctx context.Context, col, val string) (Account, error) {
	a, err := scanAccount(u.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE "+col+" = ?", val))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: %s", ErrUserNotFound, val)
	}
	if err != nil {
		return Account{}, fmt.Errorf("reading user: %w", err)
	}
	return a, nil
}

// List returns every account, by username.
func (u *Users) List(ctx context.Context) ([]Account, error) {
	rows, err := u.db.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY username")
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Count returns the number of accounts.
func (u *Users) Count(ctx context.Context) (int, error) {
	var n int
	if err := u.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	return n, nil
}

// SetPassword replaces an account's password.
func (u *Users) SetPassword(ctx context.Context, username, password string) (Account, error) {
	h, err := u.HashPassword(password)
	if err != nil {
		return Account{}, err
	}
	return u.update(ctx, username, "password_hash = ?", string(h))
}

// rehashIfNeeded stores a new hash of password, the account's verified
// current password, when its stored hash has another cost than the store's:
// an unknown user is checked against a dummy hash of the store's cost, so
// every account's hash must have it too, or a wrong password would take a
// different time than an unknown user.
func (u *Users) rehashIfNeeded(ctx context.Context, a Account, password string) error {
	if c, err := bcrypt.Cost(a.passwordHash); err == nil && c == u.cost {
		return nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), u.cost)
	if err != nil {
		return fmt.Errorf("re-hashing the password of %s: %w", a.Username, err)
	}
	// Only over the hash just verified: a concurrent password change wins.
	if _, err := u.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
		string(h), a.ID, string(a.passwordHash)); err != nil {
		return fmt.Errorf("re-hashing the password of %s: %w", a.Username, err)
	}
	return nil
}

// SetDisabled disables or re-enables an account.
func (u *Users) SetDisabled(ctx context.Context, username string, disabled bool) (Account, error) {
	v := 0
	if disabled {
		v = 1
	}
	return u.update(ctx, username, "disabled = ?", v)
}

// SetRole changes an account's role.
func (u *Users) SetRole(ctx context.Context, username, role string) (Account, error) {
	if err := ValidRole(role); err != nil {
		return Account{}, err
	}
	return u.update(ctx, username, "role = ?", role)
}

func (u *Users) update(ctx context.Context, username, set string, val any) (Account, error) {
	a, err := u.ByName(ctx, username)
	if err != nil {
		return Account{}, err
	}
	if _, err := u.db.ExecContext(ctx, "UPDATE users SET "+set+", updated_at = ? WHERE id = ?", val, database.NowMillis(), a.ID); err != nil {
		return Account{}, fmt.Errorf("updating user %s: %w", a.Username, err)
	}
	return u.ByID(ctx, a.ID)
}

// Delete removes an account.
func (u *Users) Delete(ctx context.Context, username string) (Account, error) {
	a, err := u.ByName(ctx, username)
	if err != nil {
		return Account{}, err
	}
	if _, err := u.db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", a.ID); err != nil {
		return Account{}, fmt.Errorf("deleting user %s: %w", a.Username, err)
	}
	return a, nil
}

// EnsureAdmin creates the account "admin" when the store has no account at
// all: with password when it is not empty, else with a generated one, which it
// returns (the caller shows it once). It returns "", false when accounts exist.
func (u *Users) EnsureAdmin(ctx context.Context, password string) (generated string, created bool, err error) {
	n, err := u.Count(ctx)
	if err != nil || n > 0 {
		return "", false, err
	}
	if password == "" {
		generated = GeneratePassword(24)
		password = generated
	}
	if _, err := u.Create(ctx, "admin", password, identity.RoleAdmin); err != nil {
		if errors.Is(err, ErrUserExists) {
			return "", false, nil // another replica was first
		}
		return "", false, fmt.Errorf("creating the first admin: %w", err)
	}
	return generated, true, nil
}

// GeneratePassword returns n characters drawn uniformly from letters and
// digits (about 5.8 bits each, so 24 give 139 bits).
func GeneratePassword(n int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out)
}

// checkPassword compares a password with a stored hash in constant time.
func checkPassword(hash []byte, password string) bool {
	if len(password) > MaxPasswordBytes {
		// bcrypt would refuse it; still spend the time so the answer takes as long.
		password = password[:MaxPasswordBytes]
		bcrypt.CompareHashAndPassword(hash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}
