package commands_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// users runs `claude-gateway users <args>` with stdin and returns its output.
func users(t *testing.T, database, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(gatewaytest.Binary(t), append([]string{"users"}, args...)...)
	cmd.Env = append(os.Environ(), "CLAUDE_DATABASE="+database)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustUsers(t *testing.T, database, stdin string, args ...string) string {
	t.Helper()
	out, err := users(t, database, stdin, args...)
	if err != nil {
		t.Fatalf("users %v: %v\n%s", args, err, out)
	}
	return out
}

type loginResult struct {
	status int
	token  string
}

func login(t *testing.T, gw *gatewaytest.Gateway, user, password string) loginResult {
	t.Helper()
	resp, err := gw.Client().Post(gw.URL("localhost", "/api/auth/login"), "application/json",
		strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &body)
	return loginResult{resp.StatusCode, body.AccessToken}
}

func me(t *testing.T, gw *gatewaytest.Gateway, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, gw.URL("localhost", "/api/auth/me"), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUsersCommand: accounts made with the subcommand log in through a running
// gateway; passwd, disable and delete take effect there, on SQLite and MariaDB.
func TestUsersCommand(t *testing.T) {
	for name, db := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			out := mustUsers(t, db, "bob-password-1\n", "add", "Bob", "--role", "user")
			if !strings.Contains(out, "created user bob (role user") {
				t.Fatalf("add: %s", out)
			}
			refusals := []struct {
				name, stdin string
				args        []string
				want        string
			}{
				{"duplicate", "another-password\n", []string{"add", "bob"}, "exists"},
				{"no password on stdin", "", []string{"add", "carol"}, "no password on stdin"},
				{"short password", "short\n", []string{"add", "carol"}, "8 to 72 bytes"},
				{"password in argv", "", []string{"add", "carol", "carol-password"}, "accepts 1 arg"},
				{"bad role", "carol-password\n", []string{"add", "carol", "--role", "root"}, "invalid role"},
				{"unknown user", "whatever-pass\n", []string{"passwd", "nobody"}, "no such user"},
			}
			for _, r := range refusals {
				out, err := users(t, db, r.stdin, r.args...)
				if err == nil || !strings.Contains(out, r.want) {
					t.Errorf("%s: err %v, output lacks %q:\n%s", r.name, err, r.want, out)
				}
			}
			if out := mustUsers(t, db, "", "list"); !strings.Contains(out, "bob") || !strings.Contains(out, "active") || strings.Contains(out, "carol") {
				t.Fatalf("list: %s", out)
			}

			gw := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{
				"SECRET_KEY": gatewaytest.TestSecret, "CLAUDE_DATABASE": db,
				// More logins and /api/auth calls from one address than
				// Caddyfile.dev's per-IP limits allow.
				"RATE_LIMIT_LOGIN":      "10000/min",
				"RATE_LIMIT_PER_MINUTE": "100000",
			}})
			// Accounts exist, so no admin was made at start-up.
			if out := mustUsers(t, db, "", "list"); strings.Contains(out, "admin") {
				t.Fatalf("an admin was created although accounts exist: %s", out)
			}
			first := login(t, gw, "bob", "bob-password-1")
			if first.status != http.StatusOK || me(t, gw, first.token) != http.StatusOK {
				t.Fatalf("login as bob: %d", first.status)
			}

			// passwd: the old password and the old session stop working.
			mustUsers(t, db, "bob-password-2\n", "passwd", "bob")
			if r := login(t, gw, "bob", "bob-password-1"); r.status != http.StatusUnauthorized {
				t.Fatalf("old password after passwd: %d", r.status)
			}
			second := login(t, gw, "bob", "bob-password-2")
			if second.status != http.StatusOK {
				t.Fatalf("new password: %d", second.status)
			}
			waitStatus(t, gw, first.token, http.StatusUnauthorized, "the session from before passwd")
			if me(t, gw, second.token) != http.StatusOK {
				t.Fatal("the session opened after passwd was revoked")
			}

			// disable: login refused, the running session ends; enable restores login.
			mustUsers(t, db, "", "disable", "bob")
			if r := login(t, gw, "bob", "bob-password-2"); r.status != http.StatusUnauthorized {
				t.Fatalf("disabled login: %d", r.status)
			}
			waitStatus(t, gw, second.token, http.StatusUnauthorized, "the session of a disabled user")
			mustUsers(t, db, "", "enable", "bob")
			if r := login(t, gw, "bob", "bob-password-2"); r.status != http.StatusOK {
				t.Fatalf("enabled login: %d", r.status)
			}

			mustUsers(t, db, "", "delete", "bob")
			if r := login(t, gw, "bob", "bob-password-2"); r.status != http.StatusUnauthorized {
				t.Fatalf("deleted login: %d", r.status)
			}
			if out := mustUsers(t, db, "", "list"); strings.Contains(out, "bob") {
				t.Fatalf("list after delete: %s", out)
			}

			// The audit trail holds each command and each sign-in, and no
			// password or token, neither in the table nor in the log.
			want := []string{"user_created cli bob ", "password_changed cli bob ", "user_disabled cli bob ",
				"user_enabled cli bob ", "user_deleted cli bob ", "sign_in bob  ", "sign_in_failed bob  invalid_credentials"}
			trail := waitAudit(t, db, want)
			for _, secret := range []string{"bob-password-1", "bob-password-2", first.token, second.token} {
				if strings.Contains(trail, secret) || strings.Contains(gw.Log(), secret) {
					t.Errorf("a password or token is in the audit table or the log")
				}
			}
		})
	}
}

// waitStatus waits, up to the revocation sync bound, for /api/auth/me with
// token to answer want: the CLI writes to the database, the gateway reads it.
func waitStatus(t *testing.T, gw *gatewaytest.Gateway, token string, want int, what string) {
	t.Helper()
	// Two 2 s sync intervals and a second: one read may come late on a busy machine.
	deadline := time.Now().Add(2*2*time.Second + time.Second)
	for me(t, gw, token) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: /api/auth/me did not become %d within the revocation sync bound", what, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAudit waits (the gateway writes in the background) until the audit
// table holds a row starting with each of want ("kind actor subject outcome")
// and returns the whole table as text.
func waitAudit(t *testing.T, setting string, want []string) string {
	t.Helper()
	db := testenv.OpenDB(t, setting)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := db.Query("SELECT kind, actor, subject, outcome, actor_id, client_ip, details FROM audit_events ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			var c [7]string
			if err := rows.Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6]); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.Join(c[:], " "))
		}
		rows.Close()
		all := strings.Join(lines, "\n")
		var missing []string
		for _, w := range want {
			if !strings.Contains("\n"+all, "\n"+w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit table lacks %q:\n%s", missing, all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestUsersCommandNeedsADatabase(t *testing.T) {
	cmd := exec.Command(gatewaytest.Binary(t), "users", "list")
	cmd.Env = append(os.Environ(), "CLAUDE_DATABASE=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no database: pass --database or set CLAUDE_DATABASE") {
		t.Fatalf("err %v:\n%s", err, out)
	}
}
