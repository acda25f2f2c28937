// Package identity carries the authenticated user of a request from the auth
// handler to the handlers behind it.
package identity

import "context"

// Roles a user can have.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// User is who made a request, as proven by a verified token.
type User struct {
	// ID is the stable user id (the token's "sub").
	ID string
	// Username is the login name.
	Username string
	// Role is RoleAdmin or RoleUser.
	Role string
}

// IsAdmin reports whether the user has the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

type ctxKey struct{}

// NewContext returns a copy of ctx that carries u.
func NewContext(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, ctxKey{}, u)
}

// FromContext returns the user ctx carries, if any.
func FromContext(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(ctxKey{}).(User)
	return u, ok && u.ID != ""
}
