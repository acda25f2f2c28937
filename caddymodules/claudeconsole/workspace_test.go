package claudeconsole_test

import (
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// containerRunning asks the engine whether a container runs ("" when it
// does not exist).
func containerRunning(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// sessionRow is a session's row of the sessions page.
func sessionRow(t *testing.T, body, id string) string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr id="` + regexp.QuoteMeta(id) + `">.*?</tr>`).FindString(body)
	if row == "" {
		t.Fatalf("the sessions page lacks %s", id)
	}
	return row
}

// TestConsoleStopsAWorkspace: a run starts the session's workspace (a
// workspace_started event); the sessions page shows it running with a stop
// form; a non-admin's post to it is 404 and the workspace runs on; the
// admin's stops the container, with the admin action and the
// workspace_stopped event in the trail, and the page shows it stopped.
func TestConsoleStopsAWorkspace(t *testing.T) {
	env := gatewaytest.WorkspaceEnv(t)
	s := startWith(t, env)
	admin := s.browser(t)
	if st := admin.signIn("admin", adminPassword); st != http.StatusOK {
		t.Fatalf("admin sign-in: %d", st)
	}
	tok := admin.csrf()
	for _, u := range []string{"carol", "bob"} {
		if r, body := admin.post("/admin/users/add", url.Values{"csrf": {tok}, "username": {u}, "password": {u + " password 1"}, "role": {"user"}}, nil); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("adding %s: %d %s", u, r.StatusCode, body)
		}
	}
	carol, bob := s.browser(t), s.browser(t)
	for name, b := range map[string]*browser{"carol": carol, "bob": bob} {
		if st := b.signIn(name, name+" password 1"); st != http.StatusOK {
			t.Fatalf("%s sign-in: %d", name, st)
		}
	}
	var carolID string
	if err := s.db.QueryRow("SELECT id FROM users WHERE username = ?", "carol").Scan(&carolID); err != nil {
		t.Fatal(err)
	}
	id := carol.newSession()
	container := env["CLAUDE_WORKSPACE_PREFIX"] + id

	if _, body := admin.get("/admin/sessions"); !strings.Contains(sessionRow(t, body, id), "stopped") || strings.Contains(sessionRow(t, body, id), "/sessions/stop") {
		t.Fatalf("a session whose workspace never started: %s", sessionRow(t, body, id))
	}
	if resp, body := carol.send(http.MethodPost, "/api/sessions/"+id+"/exec", `{"language":"python","code":"print(6*7)"}`); resp.StatusCode != http.StatusOK || !strings.Contains(body, "42") {
		t.Fatalf("carol's run: %d %s", resp.StatusCode, body)
	}
	if got := containerRunning(t, container); got != "true" {
		t.Fatalf("after the run the workspace %s runs: %q", container, got)
	}
	started := s.expectEvent(t, audit.WorkspaceStarted, "", id)
	if started.ActorID != carolID || started.Details["container_id"] == "" {
		t.Errorf("workspace_started event: %+v", started)
	}
	_, body := admin.get("/admin/sessions")
	row := sessionRow(t, body, id)
	if !strings.Contains(row, "running") || !strings.Contains(row, `action="/admin/sessions/stop"`) {
		t.Fatalf("the running workspace's row: %s", row)
	}

	// A non-admin, even with a token pair of their own making, gets 404.
	u, _ := url.Parse(s.origin())
	bob.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-claude_console_csrf", Value: tok, Path: "/", Secure: true}})
	if resp, _ := bob.post("/admin/sessions/stop", url.Values{"csrf": {tok}, "id": {id}}, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob's stop: %d, want 404", resp.StatusCode)
	}
	if got := containerRunning(t, container); got != "true" {
		t.Fatalf("after bob's stop the workspace runs: %q", got)
	}

	if resp, body := admin.post("/admin/sessions/stop", url.Values{"csrf": {tok}, "id": {id}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin's stop: %d %s", resp.StatusCode, body)
	}
	if got := containerRunning(t, container); got != "false" {
		t.Fatalf("after the admin's stop the workspace: %q, want a stopped container", got)
	}
	act := s.expectEvent(t, audit.AdminAction, "admin", id)
	if act.Details["action"] != "stop_workspace" || act.Details["owner_id"] != carolID {
		t.Errorf("admin_action event: %+v", act)
	}
	stopped := s.expectEvent(t, audit.WorkspaceStopped, "", id)
	if stopped.Outcome != "stopped" || stopped.ActorID != carolID {
		t.Errorf("workspace_stopped event: %+v", stopped)
	}
	if acts := s.events(t, audit.AdminAction, 1); len(acts) != 1 {
		t.Errorf("admin actions: %+v, want only the admin's stop", acts)
	}
	if _, body := admin.get("/admin/sessions?ok=workspace_stopped"); !strings.Contains(body, "Workspace stopped") ||
		!strings.Contains(sessionRow(t, body, id), "stopped") || strings.Contains(sessionRow(t, body, id), "/sessions/stop") {
		t.Fatalf("the page after the stop: %s", sessionRow(t, body, id))
	}
	if resp, _ := admin.post("/admin/sessions/stop", url.Values{"csrf": {tok}, "id": {"session-" + strings.Repeat("0", 32)}}, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("stopping an unknown session's workspace: %d, want 404", resp.StatusCode)
	}

	// The next run starts it again; deleting the session removes it, a
	// running workspace's removal being a stop too.
	if resp, body := carol.send(http.MethodPost, "/api/sessions/"+id+"/exec", `{"language":"python","code":"print(1)"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("carol's second run: %d %s", resp.StatusCode, body)
	}
	if r, body := admin.post("/admin/sessions/delete", url.Values{"csrf": {tok}, "id": {id}}, nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("deleting the session: %d %s", r.StatusCode, body)
	}
	if got := containerRunning(t, container); got != "" {
		t.Errorf("the deleted session's workspace: %q, want none", got)
	}
	if ev := s.events(t, audit.WorkspaceStopped, 2); len(ev) != 2 || ev[0].Outcome != "removed" || ev[0].Subject != id {
		t.Errorf("workspace_stopped events: %+v", ev)
	}
	if ev := s.events(t, audit.WorkspaceStarted, 2); len(ev) != 2 {
		t.Errorf("workspace_started events: %+v", ev)
	}
}
