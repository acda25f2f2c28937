package claudeauth

import (
	"errors"
	"net/http"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
)

// RecordLogin adds a sign-in to trail: a success with the account,
// or a failure with the name tried and why ("banned", "invalid_credentials",
// "error"). via says where ("api", "form"). The password is never recorded.
func RecordLogin(trail *audit.Writer, r *http.Request, username, via string, sess *auth.Session, err error) {
	e := audit.Event{Kind: audit.SignIn, Actor: auth.NormalizeUsername(username), ClientIP: ClientIP(r),
		Details: map[string]string{"via": via}}
	var banned *auth.BannedError
	switch {
	case err == nil && sess != nil:
		e.Actor, e.ActorID = sess.Access.Username, sess.Access.Subject
	case errors.As(err, &banned):
		e.Kind, e.Outcome = audit.SignInFailed, "banned"
	case errors.Is(err, auth.ErrInvalidCredentials):
		e.Kind, e.Outcome = audit.SignInFailed, "invalid_credentials"
	default:
		e.Kind, e.Outcome = audit.SignInFailed, "error"
	}
	trail.Record(e)
}
