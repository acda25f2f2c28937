package claudesessions

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// TestRouting checks which requests the handler answers, which it passes on,
// and that it refuses requests that carry no user.
func TestRouting(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	st, err := sessions.New(db, t.TempDir(), sessions.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &Handler{store: st, logger: zap.NewNop()}
	alice := identity.User{ID: "u-alice", Username: "alice", Role: identity.RoleUser}
	s, _ := st.Create(context.Background(), alice.ID)

	for _, tc := range []struct {
		method, path string
		user         bool
		status       int
		code         string // "" with status 0: passed to the next handler
	}{
		{"GET", "/api/health", true, 0, ""},
		{"GET", "/api/sessionsx", true, 0, ""},
		{"POST", "/api/sessions/" + s.ID + "/exec", true, 0, ""},
		{"GET", "/api/sessions", false, 401, "invalid_token"},
		{"GET", "/api/sessions/" + s.ID + "/files/", false, 401, "invalid_token"},
		{"GET", "/api/sessions", true, 200, ""},
		{"GET", "/api/sessions/", true, 200, ""},
		{"PUT", "/api/sessions", true, 405, "method_not_allowed"},
		{"GET", "/api/sessions/" + s.ID, true, 200, ""},
		// The backend's per-session routes pass on for the owner only.
		{"GET", "/api/sessions/" + s.ID + "/", true, 0, ""},
		{"GET", "/api/sessions/" + s.ID + "/other", true, 0, ""},
		{"GET", "/api/sessions/" + s.ID + "/exec/x", true, 0, ""},
		{"GET", "/api/sessions/session-00000000000000000000000000000000/other", true, 404, "session_not_found"},
		// Every path naming a session that later handlers serve (a run
		// included) passes on for its owner only.
		{"POST", "/api/sessions/session-00000000000000000000000000000000/exec", true, 404, "session_not_found"},
		{"POST", "/api/Sessions/" + s.ID + "/exec", true, 0, ""},
		{"GET", "/ws/sessions/" + s.ID, true, 0, ""},
		{"GET", "/api/SESSIONS/session-00000000000000000000000000000000/stream", true, 404, "session_not_found"},
		{"GET", "/api/sessions/session-00000000000000000000000000000000/exec/x", true, 404, "session_not_found"},
		{"POST", "/api/sessions/session-00000000000000000000000000000000/exec/", true, 404, "session_not_found"},
		{"GET", "/api/sessions/" + s.ID + "/files", true, 200, ""},
		{"GET", "/api/sessions/session-XYZ/files/", true, 404, "session_not_found"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.user {
			req = req.WithContext(identity.NewContext(req.Context(), alice))
		}
		rec := httptest.NewRecorder()
		passed := false
		next := nextFunc(func(http.ResponseWriter, *http.Request) error { passed = true; return nil })
		if err := h.ServeHTTP(rec, req, next); err != nil {
			// What handle_errors does: claude_error renders the error.
			req = req.WithContext(context.WithValue(req.Context(), caddyhttp.ErrorCtxKey, err))
			if err := new(claudeerror.Handler).ServeHTTP(rec, req, nil); err != nil {
				t.Fatal(err)
			}
		}
		if tc.status == 0 {
			if !passed {
				t.Errorf("%s %s: answered %d, want it passed on", tc.method, tc.path, rec.Code)
			}
			continue
		}
		var env struct{ Error struct{ Code string } }
		json.Unmarshal(rec.Body.Bytes(), &env)
		if passed || rec.Code != tc.status || env.Error.Code != tc.code {
			t.Errorf("%s %s: %d %q (passed on: %v), want %d %q", tc.method, tc.path, rec.Code, env.Error.Code, passed, tc.status, tc.code)
		}
	}
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }
