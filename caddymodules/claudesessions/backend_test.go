package claudesessions_test

import (
	"encoding/json"
	"testing"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// TestBackendSessionRoutes: per-session paths the gateway does not serve
// reach the backend for the owner only; anyone else gets the same 404 as for
// a session that does not exist, and the backend sees nothing.
func TestBackendSessionRoutes(t *testing.T) {
	backend := gatewaytest.NewUpstream(t, "backend")
	w := startGateway(t, testenv.SQLiteDatabase(t), map[string]string{"BACKEND_UPSTREAM": backend.Addr()})
	s := w.create(w.alice)
	path := "/api/sessions/" + s.ID + "/messages"

	r := w.do("GET", path, w.alice, nil)
	var e gatewaytest.Echo
	if r.status != 200 || json.Unmarshal(r.body, &e) != nil || e.Upstream != "backend" || e.Path != path {
		t.Fatalf("owner: %d %s", r.status, r.body)
	}
	if got := e.Header.Get("X-Auth-User-Id"); got != "u-alice" {
		t.Fatalf("backend saw X-Auth-User-Id %q", got)
	}

	hits := backend.Hits.Load()
	expect(t, "other user", w.do("GET", path, w.bob, nil), 404, "session_not_found")
	expect(t, "other user, POST", w.do("POST", path, w.bob, nil), 404, "session_not_found")
	// A run (…/exec, claude_exec's) and anything below it: the same check.
	expect(t, "other user, exec", w.do("POST", "/api/sessions/"+s.ID+"/exec", w.bob, nil), 404, "session_not_found")
	expect(t, "other user, below exec", w.do("POST", "/api/sessions/"+s.ID+"/exec/x", w.bob, nil), 404, "session_not_found")
	expect(t, "other user, exec/", w.do("POST", "/api/sessions/"+s.ID+"/exec/", w.bob, nil), 404, "session_not_found")
	expect(t, "unknown session", w.do("GET", "/api/sessions/session-00000000000000000000000000000000/messages", w.alice, nil), 404, "session_not_found")
	if got := backend.Hits.Load(); got != hits {
		t.Fatalf("the backend saw %d requests for sessions the user does not own", got-hits)
	}
}
