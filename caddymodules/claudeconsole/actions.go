package claudeconsole

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/console"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// refused turns an action's error into the status and message the page
// shows again; ok is false for a server fault, answered 500.
func refused(err error) (status int, msg string, ok bool) {
	var input *console.InputError
	switch {
	case errors.As(err, &input):
		return http.StatusBadRequest, input.Error(), true
	case errors.Is(err, console.ErrSelf):
		return http.StatusBadRequest, err.Error(), true
	case errors.Is(err, auth.ErrUserExists):
		return http.StatusConflict, "A user with this name exists.", true
	case errors.Is(err, auth.ErrUserNotFound):
		return http.StatusNotFound, "No such user.", true
	case errors.Is(err, sessions.ErrNotFound):
		return http.StatusNotFound, "No such session.", true
	case errors.Is(err, console.ErrNoWorkspaces):
		return http.StatusConflict, "This gateway runs no session workspaces.", true
	}
	return 0, "", false
}

// after answers an action: its page with a notice, or the page again with
// the refusal.
func (q *request) after(err error, page, notice string, again func(int, string) error) error {
	if err == nil {
		return q.done(page, notice)
	}
	status, msg, ok := refused(err)
	if !ok {
		q.h.logger.Error("console action", zap.String("action", q.sub), zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return again(status, msg)
}

func (q *request) form(name string) string { return q.r.PostForm.Get(name) }

func (q *request) addUser() error {
	_, err := q.h.console.AddUser(q.r.Context(), q.actor(), q.form("username"), q.form("password"), q.form("role"))
	return q.after(err, "users", "user_added", q.usersWith)
}

func (q *request) resetPassword() error {
	err := q.h.console.ResetPassword(q.r.Context(), q.actor(), q.form("username"), q.form("password"))
	return q.after(err, "users", "password_reset", q.usersWith)
}

func (q *request) disableUser() error {
	err := q.h.console.SetDisabled(q.r.Context(), q.actor(), q.form("username"), true)
	return q.after(err, "users", "user_disabled", q.usersWith)
}

func (q *request) enableUser() error {
	err := q.h.console.SetDisabled(q.r.Context(), q.actor(), q.form("username"), false)
	return q.after(err, "users", "user_enabled", q.usersWith)
}

func (q *request) deleteUser() error {
	err := q.h.console.DeleteUser(q.r.Context(), q.actor(), q.form("username"))
	return q.after(err, "users", "user_deleted", q.usersWith)
}

func (q *request) deleteSession() error {
	err := q.h.console.DeleteSession(q.r.Context(), q.actor(), q.form("id"))
	return q.after(err, "sessions", "session_deleted", q.sessionsWith)
}

func (q *request) stopWorkspace() error {
	err := q.h.console.StopWorkspace(q.r.Context(), q.actor(), q.form("id"))
	return q.after(err, "sessions", "workspace_stopped", q.sessionsWith)
}

func (q *request) liftBan() error {
	err := q.h.console.LiftBan(q.r.Context(), q.actor(), q.form("key"))
	return q.after(err, "limits", "ban_lifted", q.limitsWith)
}
