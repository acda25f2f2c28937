package claudeconsole_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/audit"
)

// TestConsolePagesAndActions: every page renders for the admin under the
// strict CSP with no script, and each action does what it says and leaves
// its audit event.
func TestConsolePagesAndActions(t *testing.T) {
	s := start(t)
	admin := s.browser(t)
	if st := admin.signIn("admin", adminPassword); st != http.StatusOK {
		t.Fatalf("admin sign-in: %d", st)
	}
	for _, p := range []string{"/admin/users", "/admin/sessions", "/admin/executor", "/admin/health", "/admin/limits", "/admin/audit"} {
		resp, body := admin.get(p)
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Gateway console") || strings.Contains(body, "<script") ||
			!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: %d, CSP %q", p, resp.StatusCode, csp)
		}
	}
	tok := admin.csrf()
	act := func(path string, form url.Values, want int) string {
		t.Helper()
		form.Set("csrf", tok)
		resp, body := admin.post(path, form, nil)
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d\n%s", path, resp.StatusCode, want, body)
		}
		return body
	}

	act("/admin/users/add", url.Values{"username": {"Carol"}, "password": {"carol password 1"}, "role": {"user"}}, http.StatusSeeOther)
	s.expectEvent(t, audit.UserCreated, "admin", "carol")
	if body := act("/admin/users/add", url.Values{"username": {"carol"}, "password": {"carol password 1"}, "role": {"user"}}, http.StatusConflict); !strings.Contains(body, "exists") {
		t.Error("a duplicate is not explained")
	}
	act("/admin/users/add", url.Values{"username": {"dave"}, "password": {"short"}, "role": {"user"}}, http.StatusBadRequest)
	act("/admin/users/disable", url.Values{"username": {"admin"}}, http.StatusBadRequest) // never oneself

	carol := s.browser(t)
	if st := carol.signIn("carol", "carol password 1"); st != http.StatusOK {
		t.Fatalf("carol sign-in: %d", st)
	}
	act("/admin/users/password", url.Values{"username": {"carol"}, "password": {"carol password 2"}}, http.StatusSeeOther)
	s.expectEvent(t, audit.PasswordChanged, "admin", "carol")
	if st := carol.signIn("carol", "carol password 1"); st != http.StatusUnauthorized {
		t.Fatalf("the old password after the reset: %d", st)
	}
	act("/admin/users/disable", url.Values{"username": {"carol"}}, http.StatusSeeOther)
	s.expectEvent(t, audit.UserDisabled, "admin", "carol")
	if st := carol.signIn("carol", "carol password 2"); st != http.StatusUnauthorized {
		t.Fatalf("a disabled account signed in: %d", st)
	}
	act("/admin/users/enable", url.Values{"username": {"carol"}}, http.StatusSeeOther)
	s.expectEvent(t, audit.UserEnabled, "admin", "carol")
	if st := carol.signIn("carol", "carol password 2"); st != http.StatusOK {
		t.Fatalf("the enabled account: %d", st)
	}

	// Carol's session shows with its owner; the admin deletes it.
	sess := struct{ ID string }{carol.newSession()}
	if _, body := admin.get("/admin/sessions"); !strings.Contains(body, sess.ID) || !strings.Contains(body, "carol") {
		t.Fatal("the sessions page lacks carol's session")
	}
	act("/admin/sessions/delete", url.Values{"id": {sess.ID}}, http.StatusSeeOther)
	s.expectEvent(t, audit.SessionDeleted, "admin", sess.ID)
	if _, body := admin.get("/admin/sessions"); strings.Contains(body, sess.ID) {
		t.Fatal("the deleted session is still listed")
	}
	act("/admin/sessions/delete", url.Values{"id": {sess.ID}}, http.StatusNotFound)

	// A ban shows on the limits page and is lifted there. (Carol's two
	// failures above count against the address too: it is banned first.)
	mallory := s.browser(t)
	for range 5 {
		mallory.signIn("mallory", "wrong password")
	}
	if _, body := admin.get("/admin/limits"); !strings.Contains(body, "addr:127.0.0.1") {
		t.Fatal("the limits page lacks the ban of the address")
	}
	s.expectEvent(t, audit.Ban, "system", "addr:127.0.0.1")
	if st := s.browser(t).signIn("admin", adminPassword); st != http.StatusTooManyRequests {
		t.Fatalf("a sign-in from the banned address: %d", st)
	}
	act("/admin/limits/lift", url.Values{"key": {"addr:127.0.0.1"}}, http.StatusSeeOther)
	s.expectEvent(t, audit.BanLifted, "admin", "addr:127.0.0.1")
	if _, body := admin.get("/admin/limits"); strings.Contains(body, "addr:127.0.0.1") {
		t.Fatal("the lifted ban is still listed")
	}
	if st := s.browser(t).signIn("admin", adminPassword); st != http.StatusOK {
		t.Fatalf("a sign-in after the lift: %d", st)
	}

	act("/admin/users/delete", url.Values{"username": {"carol"}}, http.StatusSeeOther)
	s.expectEvent(t, audit.UserDeleted, "admin", "carol")
	if s.userExists(t, "carol") {
		t.Fatal("carol still exists")
	}

	// The audit page filters by kind and by user.
	if _, body := admin.get("/admin/audit?kind=user_deleted"); !strings.Contains(body, "carol") || strings.Contains(body, "user_created</td>") {
		t.Fatal("the kind filter")
	}
	if _, body := admin.get("/admin/audit?user=mallory"); !strings.Contains(body, "sign_in_failed") || strings.Contains(body, "user_deleted</td>") {
		t.Fatal("the user filter")
	}
	// No password reached the trail.
	p, err := audit.Query(t.Context(), s.db, audit.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(p.Events)
	for _, secret := range []string{"carol password", "wrong password", adminPassword} {
		if strings.Contains(string(dump), secret) || strings.Contains(s.g.Log(), secret) {
			t.Errorf("a password is in the audit table or the log")
		}
	}
}
