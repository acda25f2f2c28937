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

// Context is a context that carries User over the context it embeds, as
// NewContext's does, for a caller that keeps it in a struct it allocates
// anyway: the user then costs no allocation of its own. While User has no
// ID, it carries the embedded context's user, if any.
type Context struct {
	context.Context
	// User is the user the context carries.
	User User
}

// Value returns the user for FromContext's key, and the embedded context's
// value otherwise.
func (c *Context) Value(key any) any {
	if _, ok := key.(ctxKey); ok && c.User.ID != "" {
		return &c.User
	}
	return c.Context.Value(key)
}

// FromContext returns the user ctx carries, if any.
func FromContext(ctx context.Context) (User, bool) {
	switch u := ctx.Value(ctxKey{}).(type) {
	case User:
		return u, u.ID != ""
	case *User:
		return *u, u.ID != ""
	}
	return User{}, false
}
