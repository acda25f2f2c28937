// Package console is the domain of the operator's console: the
// administrative actions on accounts, sessions and bans, each recorded in
// the audit trail with the administrator who did it, and the views the
// console's pages show. It knows nothing of HTTP or Caddy;
// caddymodules/claudeconsole serves it.
package console

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// Errors of the console's actions; the messages are shown to the operator.
var (
	// ErrSelf refuses an administrator disabling or deleting their own account.
	ErrSelf = errors.New("you cannot disable or delete your own account here; use another admin account or the users command")
	// ErrNoBanList means the login regulator cannot list or lift bans.
	ErrNoBanList = errors.New("the login regulator cannot list bans")
)

// InputError is an action refused because of what the operator entered
// (a bad username, role or password); its message says what to change.
type InputError struct{ Err error }

// Error returns the reason.
func (e *InputError) Error() string { return e.Err.Error() }

// Unwrap returns the reason.
func (e *InputError) Unwrap() error { return e.Err }

// Console carries out the operator's actions.
type Console struct {
	// Service is the auth service: accounts, token revocation, regulation.
	Service *auth.Service
	// Sessions is the session store.
	Sessions *sessions.Store
	// Audit records every action.
	Audit *audit.Writer
	// Workspaces reports and stops the sessions' workspace containers; nil
	// when the gateway runs none (the sessions page then reports nothing).
	Workspaces WorkspaceControl
}

// WorkspaceControl is what the console needs of the workspace manager
// (*workspaces.Manager).
type WorkspaceControl interface {
	// Running reports, by session id, whether each session's workspace
	// container runs; a session without one is absent.
	Running(ctx context.Context) (map[string]bool, error)
	// Stop stops a session's workspace; a missing one is no error.
	Stop(ctx context.Context, sessionID string) error
}

// ErrNoWorkspaces means the gateway runs no session workspaces.
var ErrNoWorkspaces = errors.New("this gateway runs no session workspaces")

// Actor is the administrator acting, and where from.
type Actor struct {
	// User is the administrator.
	User identity.User
	// ClientIP is the request's client address.
	ClientIP string
}

func (c *Console) record(a Actor, kind audit.Kind, subject string, details map[string]string) {
	c.Audit.Record(audit.Event{Kind: kind, Actor: a.User.Username, ActorID: a.User.ID, ClientIP: a.ClientIP,
		Subject: subject, Outcome: "console", Details: details})
}

// AddUser creates an account.
func (c *Console) AddUser(ctx context.Context, a Actor, username, password, role string) (auth.Account, error) {
	if err := auth.ValidRole(role); err != nil {
		return auth.Account{}, &InputError{err}
	}
	username = auth.NormalizeUsername(username)
	if err := auth.ValidUsername(username); err != nil {
		return auth.Account{}, &InputError{err}
	}
	if err := auth.ValidPassword(password); err != nil {
		return auth.Account{}, &InputError{err}
	}
	acct, err := c.Service.Users.Create(ctx, username, password, role)
	if err != nil {
		return auth.Account{}, err
	}
	c.record(a, audit.UserCreated, acct.Username, map[string]string{"role": acct.Role})
	return acct, nil
}

// ResetPassword sets a new password and ends the account's sessions.
func (c *Console) ResetPassword(ctx context.Context, a Actor, username, password string) error {
	if err := auth.ValidPassword(password); err != nil {
		return &InputError{err}
	}
	acct, err := c.Service.Users.SetPassword(ctx, username, password)
	if err != nil {
		return err
	}
	if err := c.Service.RevokeUser(ctx, acct.ID); err != nil {
		return fmt.Errorf("the password was changed but the sessions were not ended: %w", err)
	}
	c.record(a, audit.PasswordChanged, acct.Username, nil)
	return nil
}

// SetDisabled disables (and ends the sessions of) or enables an account.
func (c *Console) SetDisabled(ctx context.Context, a Actor, username string, disabled bool) error {
	if disabled && auth.NormalizeUsername(username) == a.User.Username {
		return ErrSelf
	}
	acct, err := c.Service.Users.SetDisabled(ctx, username, disabled)
	if err != nil {
		return err
	}
	if !disabled {
		c.record(a, audit.UserEnabled, acct.Username, nil)
		return nil
	}
	if err := c.Service.RevokeUser(ctx, acct.ID); err != nil {
		return fmt.Errorf("the account was disabled but its sessions were not ended: %w", err)
	}
	c.record(a, audit.UserDisabled, acct.Username, nil)
	return nil
}

// DeleteUser deletes an account and ends its sessions.
func (c *Console) DeleteUser(ctx context.Context, a Actor, username string) error {
	if auth.NormalizeUsername(username) == a.User.Username {
		return ErrSelf
	}
	acct, err := c.Service.Users.Delete(ctx, username)
	if err != nil {
		return err
	}
	if err := c.Service.RevokeUser(ctx, acct.ID); err != nil {
		return fmt.Errorf("the account was deleted but its sessions were not ended: %w", err)
	}
	c.record(a, audit.UserDeleted, acct.Username, nil)
	return nil
}

// DeleteSession deletes any user's session and its workspace.
func (c *Console) DeleteSession(ctx context.Context, a Actor, id string) error {
	owner, err := c.owner(ctx, id)
	if err != nil {
		return err
	}
	if err := c.Sessions.Delete(ctx, id, owner); err != nil {
		return err
	}
	c.record(a, audit.SessionDeleted, id, map[string]string{"owner_id": owner})
	return nil
}

// StopWorkspace stops any user's session workspace (its container and
// state stay; the owner's next IDE visit or run starts it again).
func (c *Console) StopWorkspace(ctx context.Context, a Actor, id string) error {
	if c.Workspaces == nil {
		return ErrNoWorkspaces
	}
	owner, err := c.owner(ctx, id)
	if err != nil {
		return err
	}
	if err := c.Workspaces.Stop(ctx, id); err != nil {
		return fmt.Errorf("stopping the workspace of %s: %w", id, err)
	}
	c.record(a, audit.AdminAction, id, map[string]string{"action": "stop_workspace", "owner_id": owner})
	return nil
}

func (c *Console) owner(ctx context.Context, id string) (string, error) {
	all, err := c.Sessions.ListAll(ctx)
	if err != nil {
		return "", err
	}
	for _, s := range all {
		if s.ID == id {
			return s.UserID, nil
		}
	}
	return "", sessions.ErrNotFound
}

// Bans lists the running login bans.
func (c *Console) Bans(ctx context.Context) ([]auth.Ban, error) {
	bl, ok := c.Service.Regulator.(auth.BanList)
	if !ok {
		return nil, ErrNoBanList
	}
	return bl.Bans(ctx, time.Now())
}

// LiftBan ends the ban of a regulation key ("user:<name>", "addr:<ip>").
func (c *Console) LiftBan(ctx context.Context, a Actor, key string) error {
	bl, ok := c.Service.Regulator.(auth.BanList)
	if !ok {
		return ErrNoBanList
	}
	if err := bl.Lift(ctx, key); err != nil {
		return err
	}
	c.record(a, audit.BanLifted, key, nil)
	return nil
}

// SessionView is one row of the sessions page.
type SessionView struct {
	sessions.Session
	// Owner is the owner's username ("" when the account is gone).
	Owner string
	// Size is the bytes under the session's files/, -1 when unknown.
	Size int64
	// Workspace is "running", "stopped" (or never started) or "" when no
	// workspace manager reports it (none configured, or the engine is down).
	Workspace string
}

// SessionViews lists every user's sessions with their owner and size.
func (c *Console) SessionViews(ctx context.Context) ([]SessionView, error) {
	all, err := c.Sessions.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	names, err := c.Usernames(ctx)
	if err != nil {
		return nil, err
	}
	var running map[string]bool
	if c.Workspaces != nil {
		if running, err = c.Workspaces.Running(ctx); err != nil {
			running = nil // the engine is down: the page reports nothing
		}
	}
	out := make([]SessionView, 0, len(all))
	for _, s := range all {
		v := SessionView{Session: s, Owner: names[s.UserID], Size: -1}
		if running != nil {
			v.Workspace = "stopped"
			if running[s.ID] {
				v.Workspace = "running"
			}
		}
		v.Size = c.size(ctx, s.ID)
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastActiveAt.After(out[j].LastActiveAt) })
	return out, nil
}

// size measures the bytes under session id's files/ now, for an operator
// (any user's session: the unscoped open); -1 when it cannot.
func (c *Console) size(ctx context.Context, id string) int64 {
	sess, release, err := c.Sessions.OpenUnscoped(ctx, id)
	if err != nil {
		return -1
	}
	defer release()
	f, err := sess.Files()
	if err != nil {
		return -1
	}
	n, err := f.Usage()
	if err != nil {
		return -1
	}
	return n
}

// Usernames maps user ids to usernames.
func (c *Console) Usernames(ctx context.Context) (map[string]string, error) {
	accts, err := c.Service.Users.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(accts))
	for _, a := range accts {
		out[a.ID] = a.Username
	}
	return out, nil
}
