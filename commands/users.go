package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/identity"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "users",
		Usage: "add|list|passwd|disable|enable|delete [<username>] [--database <setting>]",
		Short: "Manages the gateway's user accounts",
		Long: `
Manages the accounts stored in the gateway's database. Passwords are read from
standard input (one line; prompted for without echo on a terminal), never from
the command line. The database comes from --database or the CLAUDE_DATABASE
environment variable, the setting the Caddyfiles read.

Changing a password, disabling or deleting an account ends its sessions and
revokes its access tokens; running gateways notice within their revocation
sync interval (2s by default).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("database", "", "database setting: sqlite:<path> or mysql://user:pass@tcp(host:3306)/db (default $CLAUDE_DATABASE)")
			add := &cobra.Command{
				Use:   "add <username>",
				Short: "Creates an account; the password is read from stdin",
				Args:  cobra.ExactArgs(1),
				RunE:  usersRun(usersAdd),
			}
			add.Flags().String("role", identity.RoleUser, "role: user or admin")
			cmd.AddCommand(
				add,
				&cobra.Command{Use: "list", Short: "Lists the accounts", Args: cobra.NoArgs, RunE: usersRun(usersList)},
				&cobra.Command{Use: "passwd <username>", Short: "Sets a new password, read from stdin", Args: cobra.ExactArgs(1), RunE: usersRun(usersPasswd)},
				&cobra.Command{Use: "disable <username>", Short: "Disables an account and ends its sessions", Args: cobra.ExactArgs(1), RunE: usersRun(usersDisable(true))},
				&cobra.Command{Use: "enable <username>", Short: "Enables a disabled account", Args: cobra.ExactArgs(1), RunE: usersRun(usersDisable(false))},
				&cobra.Command{Use: "delete <username>", Short: "Deletes an account and ends its sessions", Args: cobra.ExactArgs(1), RunE: usersRun(usersDelete)},
			)
		},
	})
}

// usersEnv is what each users subcommand works with.
type usersEnv struct {
	ctx   context.Context
	cmd   *cobra.Command
	args  []string
	db    *database.DB
	users *auth.Users
	out   io.Writer
}

func usersRun(f func(e *usersEnv) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		setting, err := DatabaseSetting(caddycmd.Flags{FlagSet: cmd.Flags()})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		db, err := database.Open(ctx, setting)
		if err != nil {
			return err
		}
		defer db.Close()
		return f(&usersEnv{ctx: ctx, cmd: cmd, args: args, db: db, users: auth.NewUsers(db, 0), out: cmd.OutOrStdout()})
	}
}

func usersAdd(e *usersEnv) error {
	role, _ := e.cmd.Flags().GetString("role")
	if err := auth.ValidRole(role); err != nil {
		return err
	}
	name := auth.NormalizeUsername(e.args[0])
	if err := auth.ValidUsername(name); err != nil {
		return err
	}
	pw, err := readPassword(e.cmd.InOrStdin(), e.cmd.ErrOrStderr(), "Password for "+name)
	if err != nil {
		return err
	}
	a, err := e.users.Create(e.ctx, name, pw, role)
	if err != nil {
		return err
	}
	e.record(audit.UserCreated, a, map[string]string{"role": a.Role})
	fmt.Fprintf(e.out, "created user %s (role %s, id %s)\n", a.Username, a.Role, a.ID)
	return nil
}

func usersList(e *usersEnv) error {
	accts, err := e.users.List(e.ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tROLE\tSTATUS\tID\tCREATED")
	for _, a := range accts {
		status := "active"
		if a.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Username, a.Role, status, a.ID, a.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func usersPasswd(e *usersEnv) error {
	a, err := e.users.ByName(e.ctx, e.args[0])
	if err != nil {
		return err
	}
	pw, err := readPassword(e.cmd.InOrStdin(), e.cmd.ErrOrStderr(), "New password for "+a.Username)
	if err != nil {
		return err
	}
	if _, err := e.users.SetPassword(e.ctx, a.Username, pw); err != nil {
		return err
	}
	if err := revokeUser(e, a.ID); err != nil {
		return err
	}
	e.record(audit.PasswordChanged, a, nil)
	fmt.Fprintf(e.out, "password of %s changed; its sessions were ended\n", a.Username)
	return nil
}

func usersDisable(disabled bool) func(e *usersEnv) error {
	return func(e *usersEnv) error {
		a, err := e.users.SetDisabled(e.ctx, e.args[0], disabled)
		if err != nil {
			return err
		}
		if !disabled {
			e.record(audit.UserEnabled, a, nil)
			fmt.Fprintf(e.out, "user %s enabled\n", a.Username)
			return nil
		}
		if err := revokeUser(e, a.ID); err != nil {
			return err
		}
		e.record(audit.UserDisabled, a, nil)
		fmt.Fprintf(e.out, "user %s disabled; its sessions were ended\n", a.Username)
		return nil
	}
}

func usersDelete(e *usersEnv) error {
	a, err := e.users.Delete(e.ctx, e.args[0])
	if err != nil {
		return err
	}
	if err := revokeUser(e, a.ID); err != nil {
		return err
	}
	e.record(audit.UserDeleted, a, nil)
	fmt.Fprintf(e.out, "user %s deleted; its sessions were ended\n", a.Username)
	return nil
}

// record adds what the command did to account a to the audit trail, with
// the actor "cli". The change is made already: a failure to record it is
// reported, not returned.
func (e *usersEnv) record(kind audit.Kind, a auth.Account, details map[string]string) {
	ev := audit.Event{Kind: kind, Actor: "cli", Subject: a.Username, Details: details}
	if err := audit.Insert(e.ctx, e.db, ev); err != nil {
		fmt.Fprintf(e.cmd.ErrOrStderr(), "warning: the change was made but not recorded in the audit trail: %v\n", err)
	}
}

// revokeUser ends the account's refresh sessions and revokes its access
// tokens issued so far.
func revokeUser(e *usersEnv, userID string) error {
	return auth.RevokeUser(e.ctx, auth.NewRefreshTokens(e.db, 0), auth.NewRevocations(e.db), userID)
}

// readPassword reads a password: prompted for twice without echo when stdin
// is a terminal, else the first line of stdin.
func readPassword(in io.Reader, prompt io.Writer, label string) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, label+": ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(prompt, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), auth.ValidPassword(string(a))
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin (pipe it in, e.g. `printf '%s\\n' \"$PW\" | claude-gateway users add NAME`)")
	}
	return pw, auth.ValidPassword(pw)
}
