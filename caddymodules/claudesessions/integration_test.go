package claudesessions_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
	"github.com/claude-gateway/claude-gateway/sessions/sessionstest"
)

// TestSessionAPI walks the whole API with real tokens through the running
// gateway, on SQLite and on MariaDB.
func TestSessionAPI(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			w := startGateway(t, setting, nil)

			expect(t, "no token", w.do("POST", "/api/sessions", "", nil), 401, "invalid_token")
			expect(t, "bad token", w.do("GET", "/api/sessions", "not.a.token", nil), 401, "invalid_token")

			s := w.create(w.alice)
			if !sessions.ValidID(s.ID) || s.UserID != "u-alice" || s.CreatedAt.IsZero() || !s.ExpiresAt.After(s.LastActiveAt) {
				t.Fatalf("created %+v", s)
			}
			base := "/api/sessions/" + s.ID
			if _, err := os.Stat(filepath.Join(w.sessionsDir(), s.ID, "files")); err != nil {
				t.Fatalf("workspace: %v", err)
			}

			var list struct{ Sessions []sessions.Session }
			w.do("GET", "/api/sessions", w.alice, nil).json(t, &list)
			if len(list.Sessions) != 1 || list.Sessions[0].ID != s.ID {
				t.Errorf("alice's list: %+v", list)
			}
			var got sessions.Session
			r := w.do("GET", base, w.alice, nil)
			r.json(t, &got)
			if r.status != 200 || got.ID != s.ID {
				t.Errorf("get: %d %s", r.status, r.body)
			}

			// Files: create, replace, read, list, directories, delete.
			expect(t, "put new", w.do("PUT", base+"/files/src/main.py", w.alice, bytes.NewReader([]byte("print(1)\n"))), 201, "")
			expect(t, "put replace", w.do("PUT", base+"/files/src/main.py", w.alice, bytes.NewReader([]byte("print(2)\n"))), 200, "")
			r = w.do("GET", base+"/files/src/main.py", w.alice, nil)
			if r.status != 200 || string(r.body) != "print(2)\n" {
				t.Errorf("get file: %d %q", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" || r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("file served as %q", ct)
			}
			expect(t, "mkdir", w.do("PUT", base+"/files/empty%20dir/", w.alice, nil), 201, "")
			var listing struct {
				Path    string
				Entries []sessions.Entry
			}
			w.do("GET", base+"/files/", w.alice, nil).json(t, &listing)
			if len(listing.Entries) != 2 || listing.Entries[0].Name != "empty dir" || listing.Entries[1].Name != "src" || listing.Entries[1].Type != "dir" {
				t.Errorf("root listing: %+v", listing)
			}
			w.do("GET", base+"/files/src/", w.alice, nil).json(t, &listing)
			if listing.Path != "src/" || len(listing.Entries) != 1 || listing.Entries[0].Size != 9 || listing.Entries[0].Type != "file" {
				t.Errorf("src listing: %+v", listing)
			}
			expect(t, "get dir without /", w.do("GET", base+"/files/src", w.alice, nil), 400, "is_a_directory")
			expect(t, "list a file", w.do("GET", base+"/files/src/main.py/", w.alice, nil), 400, "not_a_directory")
			expect(t, "missing file", w.do("GET", base+"/files/nope.txt", w.alice, nil), 404, "file_not_found")
			expect(t, "delete file", w.do("DELETE", base+"/files/src/main.py", w.alice, nil), 204, "")
			expect(t, "deleted file", w.do("GET", base+"/files/src/main.py", w.alice, nil), 404, "file_not_found")
			expect(t, "delete dir", w.do("DELETE", base+"/files/empty%20dir/", w.alice, nil), 204, "")
			expect(t, "method", w.do("PATCH", base+"/files/x", w.alice, nil), 405, "method_not_allowed")

			// History.
			expect(t, "history 1", w.do("POST", base+"/history", w.alice, strings.NewReader(`{"role":"user","text":"hi"}`)), 201, "")
			expect(t, "history 2", w.do("POST", base+"/history", w.alice, strings.NewReader(`{"role":"assistant","text":"hello"}`)), 201, "")
			expect(t, "history junk", w.do("POST", base+"/history", w.alice, strings.NewReader(`{"role":`)), 400, "invalid_history_entry")
			var hist struct{ Entries []map[string]string }
			w.do("GET", base+"/history", w.alice, nil).json(t, &hist)
			if len(hist.Entries) != 2 || hist.Entries[0]["text"] != "hi" || hist.Entries[1]["role"] != "assistant" {
				t.Errorf("history: %+v", hist)
			}

			// Bob sees none of it: 404 everywhere, and nothing changes.
			w.do("PUT", base+"/files/keep.txt", w.alice, bytes.NewReader([]byte("alice")))
			for _, c := range []struct{ method, path string }{
				{"GET", base}, {"DELETE", base},
				{"GET", base + "/files/"}, {"GET", base + "/files/keep.txt"},
				{"PUT", base + "/files/keep.txt"}, {"DELETE", base + "/files/keep.txt"},
				{"GET", base + "/history"}, {"POST", base + "/history"},
			} {
				expect(t, "bob "+c.method+" "+c.path, w.do(c.method, c.path, w.bob, strings.NewReader(`{"x":1}`)), 404, "session_not_found")
			}
			if b, _ := os.ReadFile(filepath.Join(w.sessionsDir(), s.ID, "files", "keep.txt")); string(b) != "alice" {
				t.Errorf("alice's file after bob: %q", b)
			}
			w.do("GET", "/api/sessions", w.bob, nil).json(t, &list)
			if len(list.Sessions) != 0 {
				t.Errorf("bob's list shows %+v", list.Sessions)
			}
			expect(t, "bob lists all", w.do("GET", "/api/sessions?all=true", w.bob, nil), 403, "forbidden")
			bs := w.create(w.bob)
			w.do("GET", "/api/sessions?all=true", w.admin, nil).json(t, &list)
			if len(list.Sessions) != 2 {
				t.Errorf("admin's list: %+v", list.Sessions)
			}
			expect(t, "admin gets alice's", w.do("GET", base, w.admin, nil), 404, "session_not_found")
			expect(t, "unknown id", w.do("GET", "/api/sessions/session-0123", w.alice, nil), 404, "session_not_found")

			// The gauge in Caddy's metrics.
			resp, err := http.Get("http://" + w.g.AdminAddr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Contains(metrics, []byte("\nclaude_active_sessions 2\n")) {
				t.Errorf("metrics lack claude_active_sessions 2")
			}

			expect(t, "delete", w.do("DELETE", base, w.alice, nil), 204, "")
			expect(t, "deleted", w.do("GET", base, w.alice, nil), 404, "session_not_found")
			expect(t, "deleted files", w.do("GET", base+"/files/keep.txt", w.alice, nil), 404, "session_not_found")
			if _, err := os.Stat(filepath.Join(w.sessionsDir(), s.ID)); !os.IsNotExist(err) {
				t.Errorf("workspace after delete: %v", err)
			}
			expect(t, "bob's still there", w.do("GET", "/api/sessions/"+bs.ID, w.bob, nil), 200, "")
			sessionstest.AssertConsistent(t, setting, w.sessionsDir())
		})
	}
}

// TestTraversalRefused sends every escape of the table, reading and
// writing, and checks that all are refused and nothing outside changed.
func TestTraversalRefused(t *testing.T) {
	w := startGateway(t, testenv.SQLiteDatabase(t), nil)
	a := w.create(w.alice)
	b := w.create(w.bob)
	aFiles := filepath.Join(w.sessionsDir(), a.ID, "files")
	bFiles := filepath.Join(w.sessionsDir(), b.ID, "files")
	os.WriteFile(filepath.Join(bFiles, "secret.txt"), []byte("bob's secret"), 0o644)
	os.WriteFile(filepath.Join(w.sessionsDir(), a.ID, "x"), []byte("outside files/"), 0o644)
	if err := os.Symlink(filepath.Join("..", "..", b.ID, "files"), filepath.Join(aFiles, "to-bob")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/", filepath.Join(aFiles, "to-root"))
	os.Symlink("/etc/passwd", filepath.Join(aFiles, "passwd"))
	os.Symlink("..", filepath.Join(aFiles, "up"))

	base := "/api/sessions/" + a.ID + "/files/"
	for _, tc := range []struct {
		path    string
		methods []string
	}{
		{"../x", all}, {"%2e%2e/x", all}, {"%2E%2E/x", all}, {".%2e/x", all}, {"..%2fx", all}, {"..%2Fx", all},
		{"/etc/passwd", all}, {"%2fetc%2fpasswd", all}, {"a/../../x", all}, {"a/..%2f..%2fx", all},
		{"x%00.txt", all}, {"x%00/../x", all}, {"%5c..%5cx", all},
		{"to-bob/secret.txt", all}, {"to-root/etc/passwd", all}, {"up/x", all}, {"up/metadata.json", all},
		// The links themselves: reading or writing through them is refused
		// (deleting a link is allowed and checked below).
		{"to-bob/", readWrite}, {"to-root/", readWrite}, {"passwd", readWrite},
	} {
		p := tc.path
		for _, method := range tc.methods {
			r := w.do(method, base+p, w.alice, strings.NewReader("pwned"))
			if r.status != 400 || r.code() != "invalid_path" {
				t.Errorf("%s %s: %d %s, want 400 invalid_path", method, p, r.status, bytes.TrimSpace(r.body))
			}
			if bytes.Contains(r.body, []byte("root:x:")) || bytes.Contains(r.body, []byte("bob's secret")) || bytes.Contains(r.body, []byte("outside files/")) {
				t.Errorf("%s %s leaked: %s", method, p, r.body)
			}
		}
	}
	if got, _ := os.ReadFile(filepath.Join(bFiles, "secret.txt")); string(got) != "bob's secret" {
		t.Errorf("bob's file is now %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(w.sessionsDir(), a.ID, "x")); string(got) != "outside files/" {
		t.Errorf("a file beside files/ is now %q", got)
	}
	if es, _ := os.ReadDir(bFiles); len(es) != 1 {
		t.Errorf("bob's files/ holds %d entries, want 1", len(es))
	}
	for _, p := range []string{filepath.Join(w.sessionsDir(), "x"), filepath.Join(w.g.Dir, "workspace", "x"), "/x"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	// The links themselves stay where they are, and listing shows them as links.
	var listing struct{ Entries []sessions.Entry }
	w.do("GET", base, w.alice, nil).json(t, &listing)
	if len(listing.Entries) != 4 || listing.Entries[0].Type != "symlink" {
		t.Errorf("listing: %+v", listing.Entries)
	}
	// Deleting a link removes the link, never what it points to.
	expect(t, "delete link", w.do("DELETE", base+"passwd", w.alice, nil), 204, "")
	expect(t, "delete link as dir", w.do("DELETE", base+"to-bob/", w.alice, nil), 400, "not_a_directory")
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(bFiles, "secret.txt")); string(got) != "bob's secret" {
		t.Errorf("bob's file is now %q", got)
	}
	// A session id that is a path is refused before any handler (claude_path).
	expect(t, "id traversal", w.do("GET", "/api/sessions/..%2f..%2fetc/files/passwd", w.alice, nil), 400, "invalid_path")
	expect(t, "id dots", w.do("GET", "/api/sessions/../sessions/"+b.ID+"/files/secret.txt", w.alice, nil), 400, "invalid_path")
}

// TestUploadLimits: over max_file_size is 413 with nothing written, announced
// or streamed; a client that goes away mid-upload leaves the old file; over
// the quota is 507.
func TestUploadLimits(t *testing.T) {
	w := startGateway(t, testenv.SQLiteDatabase(t), map[string]string{"MAX_FILE_SIZE": "1048576", "SESSION_QUOTA": "1500000"})
	s := w.create(w.alice)
	files := filepath.Join(w.sessionsDir(), s.ID, "files")
	base := "/api/sessions/" + s.ID + "/files/"
	big := bytes.Repeat([]byte("x"), 1<<20+1)

	expect(t, "announced", w.do("PUT", base+"big.bin", w.alice, bytes.NewReader(big)), 413, "file_too_large")
	expect(t, "streamed", w.do("PUT", base+"big.bin", w.alice, io.MultiReader(bytes.NewReader(big))), 413, "file_too_large")
	expect(t, "history", w.do("POST", "/api/sessions/"+s.ID+"/history", w.alice, bytes.NewReader(big)), 413, "file_too_large")
	if es, _ := os.ReadDir(files); len(es) != 0 {
		t.Errorf("files/ after 413: %v", es)
	}
	sessionstest.AssertConsistent(t, w.setting, w.sessionsDir())

	old := bytes.Repeat([]byte("o"), 1000)
	expect(t, "old", w.do("PUT", base+"keep.bin", w.alice, bytes.NewReader(old)), 201, "")

	// Announce 800 KB, send 300 KB, hang up.
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", w.g.HTTPSPort), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %skeep.bin HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nContent-Length: 800000\r\n\r\n", base, w.alice)
	conn.Write(bytes.Repeat([]byte("n"), 300000))
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, _ := os.ReadDir(files)
		journal, _ := os.ReadDir(filepath.Join(w.sessionsDir(), s.ID, ".uploads"))
		if len(es) == 1 && len(journal) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files/ after the disconnect: %v, journal %v", es, journal)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, _ := os.ReadFile(filepath.Join(files, "keep.bin")); !bytes.Equal(got, old) {
		t.Errorf("the old file changed: %d bytes", len(got))
	}

	expect(t, "fill", w.do("PUT", base+"a.bin", w.alice, bytes.NewReader(make([]byte, 1<<20))), 201, "")
	expect(t, "quota", w.do("PUT", base+"b.bin", w.alice, bytes.NewReader(make([]byte, 600000))), 507, "quota_exceeded")
	if _, err := os.Stat(filepath.Join(files, "b.bin")); !os.IsNotExist(err) {
		t.Errorf("b.bin after 507: %v", err)
	}
	sessionstest.AssertConsistent(t, w.setting, w.sessionsDir())
}

// TestCapUnderConcurrentCreates: 50 creates at once with 10 slots left give
// exactly 10 × 201 and 40 × 409, on SQLite and on MariaDB.
func TestCapUnderConcurrentCreates(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			w := startGateway(t, setting, map[string]string{"MAX_SESSIONS": "15"})
			for i := 0; i < 5; i++ {
				w.create(w.bob)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			counts := map[string]int{}
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := w.do("POST", "/api/sessions", w.alice, nil)
					mu.Lock()
					counts[fmt.Sprint(r.status, r.code())]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if counts["201"] != 10 || counts["409session_limit_reached"] != 40 || len(counts) != 2 {
				t.Errorf("answers: %v; want 10 × 201, 40 × 409 session_limit_reached", counts)
			}
			var list struct{ Sessions []sessions.Session }
			w.do("GET", "/api/sessions?all=1", w.admin, nil).json(t, &list)
			if len(list.Sessions) != 15 {
				t.Errorf("%d sessions exist, the cap is 15", len(list.Sessions))
			}
			sessionstest.AssertConsistent(t, setting, w.sessionsDir())
		})
	}
}

// TestIdleSessionsExpire: with SESSION_TIMEOUT=2 the reaper removes an idle
// session, row and workspace, and keeps one that is being used.
func TestIdleSessionsExpire(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			w := startGateway(t, setting, map[string]string{"SESSION_TIMEOUT": "2"})
			idle := w.create(w.alice)
			active := w.create(w.alice)
			for end := time.Now().Add(4500 * time.Millisecond); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
				expect(t, "use the active session", w.do("GET", "/api/sessions/"+active.ID+"/files/", w.alice, nil), 200, "")
			}
			expect(t, "idle", w.do("GET", "/api/sessions/"+idle.ID, w.alice, nil), 404, "session_not_found")
			if _, err := os.Stat(filepath.Join(w.sessionsDir(), idle.ID)); !os.IsNotExist(err) {
				t.Errorf("idle workspace: %v", err)
			}
			expect(t, "active", w.do("GET", "/api/sessions/"+active.ID, w.alice, nil), 200, "")
			if _, err := os.Stat(filepath.Join(w.sessionsDir(), active.ID, "files")); err != nil {
				t.Errorf("active workspace: %v", err)
			}
			sessionstest.AssertConsistent(t, setting, w.sessionsDir())
		})
	}
}

// TestCrashLeavesNoHalfState kills the gateway with SIGKILL while creates and
// deletes are in flight, and again in the middle of an upload; after a
// restart rows and directories are in step and the old file is intact, on
// SQLite and on MariaDB (where the dead process's instance lock is gone).
func TestCrashLeavesNoHalfState(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) { crashAndRestart(t, setting) })
	}
}

func crashAndRestart(t *testing.T, setting string) {
	w := startGateway(t, setting, nil)
	repairs := 0
	for round := 0; round < 4; round++ {
		var wg sync.WaitGroup
		// A user of its own each round: the creates a round leaves behind
		// count against the per-user session limit, and a round whose kill
		// came late could leave too many for the next one's creates.
		bob := gatewaytest.AccessToken(t, gatewaytest.TestSecret, fmt.Sprintf("u-bob-%d", round), "bob", "user", time.Hour)
		existing := []sessions.Session{w.create(bob), w.create(bob), w.create(bob)}
		c := w.c // warmed up: one HTTP/2 connection, the requests leave at once
		for i := 0; i < 24; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				path := "/api/sessions"
				method := "POST"
				if i < len(existing) {
					method, path = "DELETE", path+"/"+existing[i].ID
				}
				req, _ := http.NewRequest(method, w.g.URL("localhost", path), nil)
				req.Header.Set("Authorization", "Bearer "+bob)
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}(i)
		}
		// Kill the moment a create or a delete is seen half-way on disk.
		seen := ""
		for deadline := time.Now().Add(5 * time.Second); seen == "" && time.Now().Before(deadline); {
			es, _ := os.ReadDir(w.sessionsDir())
			for _, e := range es {
				if strings.HasPrefix(e.Name(), ".creating-") || strings.HasPrefix(e.Name(), ".deleting-") {
					seen = e.Name()
					break
				}
			}
		}
		w.g.Kill()
		wg.Wait()
		w.c = w.g.Client()
		w.g.Restart()
		repaired := strings.Contains(w.g.Log(), "repaired the session workspaces")
		if repaired {
			repairs++
		}
		t.Logf("round %d: killed on seeing %q; repair needed: %v", round, seen, repaired)
		sessionstest.AssertConsistent(t, setting, w.sessionsDir())
	}
	if repairs == 0 {
		t.Error("no kill caught a create or delete in flight: the repair was not exercised")
	}

	s := w.create(w.alice)
	base := "/api/sessions/" + s.ID + "/files/"
	old := []byte("the old content")
	expect(t, "old", w.do("PUT", base+"doc.txt", w.alice, bytes.NewReader(old)), 201, "")
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("n"), 256<<10)
		for i := 0; i < 8; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		time.Sleep(30 * time.Second) // never finishes: the gateway dies first
		pw.Close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("PUT", w.g.URL("localhost", base+"doc.txt"), pr)
		req.ContentLength = 5 << 20
		req.Header.Set("Authorization", "Bearer "+w.alice)
		if resp, err := w.g.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// Wait until the upload's temporary file exists and has grown, then crash.
	files := filepath.Join(w.sessionsDir(), s.ID, "files")
	deadline := time.Now().Add(10 * time.Second)
	for !tempFileHolds(files, 1<<20) {
		if time.Now().After(deadline) {
			t.Fatal("the upload never reached the disk")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.g.Kill()
	pw.CloseWithError(io.ErrClosedPipe)
	<-done
	if !tempFileHolds(files, 1) {
		t.Fatal("the crash left no temporary file: nothing to repair was tested")
	}
	w.g.Restart()
	if got, _ := os.ReadFile(filepath.Join(files, "doc.txt")); !bytes.Equal(got, old) {
		t.Errorf("after the crash doc.txt holds %d bytes, want the old content", len(got))
	}
	r := w.do("GET", base+"doc.txt", w.alice, nil)
	if r.status != 200 || !bytes.Equal(r.body, old) {
		t.Errorf("GET after restart: %d %q", r.status, r.body)
	}
	sessionstest.AssertConsistent(t, setting, w.sessionsDir())
}

func tempFileHolds(dir string, n int64) bool {
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if info, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), ".claude-tmp-") && info.Size() >= n {
			return true
		}
	}
	return false
}

var (
	all       = []string{"GET", "PUT", "DELETE"}
	readWrite = []string{"GET", "PUT"}
)

// TestReloadKeepsStoreAndReaper reloads the config twice: the store is
// re-used (its start-up repair ran once), the reaper still expires idle
// sessions after the old configs are gone, and new limits apply.
func TestReloadKeepsStoreAndReaper(t *testing.T) {
	setting := testenv.SQLiteDatabase(t)
	w := startGateway(t, setting, map[string]string{"SESSION_TIMEOUT": "2"})
	idle := w.create(w.alice)
	active := w.create(w.alice)
	for i := 0; i < 2; i++ {
		// A changed config, so that Caddy really reloads (an identical one is skipped).
		cfg := strings.Replace(w.g.Config, "{$MAX_SESSIONS:100}", fmt.Sprint(200+i), 1)
		if err := w.g.Load(cfg); err != nil {
			t.Fatal(err)
		}
		expect(t, "after reload", w.do("GET", "/api/sessions/"+active.ID, w.alice, nil), 200, "")
	}
	for end := time.Now().Add(4500 * time.Millisecond); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		expect(t, "use the active session", w.do("GET", "/api/sessions/"+active.ID+"/history", w.alice, nil), 200, "")
	}
	expect(t, "idle after reloads", w.do("GET", "/api/sessions/"+idle.ID, w.alice, nil), 404, "session_not_found")
	log := w.g.Log()
	if fresh, reused := strings.Count(log, `"msg":"session store ready"`)-strings.Count(log, `"reused":true,"reap_interval"`), strings.Count(log, `"reused":true,"reap_interval"`); fresh != 1 || reused != 2 {
		t.Errorf("session store opened %d times and re-used %d times over two reloads; want 1 and 2", fresh, reused)
	}

	limited := strings.Replace(w.g.Config, "{$MAX_SESSIONS:100}", "1", 1)
	if limited == w.g.Config {
		t.Fatal("Caddyfile.dev has no max_sessions {$MAX_SESSIONS:100}")
	}
	if err := w.g.Load(limited); err != nil {
		t.Fatal(err)
	}
	expect(t, "cap lowered by a reload", w.do("POST", "/api/sessions", w.bob, nil), 409, "session_limit_reached")
	sessionstest.AssertConsistent(t, setting, w.sessionsDir())
	if t.Failed() {
		for _, l := range strings.Split(w.g.Log(), "\n") {
			if strings.Contains(l, "session store") || strings.Contains(l, "load") {
				t.Log(l)
			}
		}
	}
}

// TestHistoryBounds: the history has its own size limit (413
// history_too_large) and counts in the session quota (507 quota_exceeded);
// a refused append writes nothing, and GET streams the array with its length.
func TestHistoryBounds(t *testing.T) {
	w := startGateway(t, testenv.SQLiteDatabase(t), map[string]string{
		"MAX_FILE_SIZE": "1048576", "MAX_HISTORY_SIZE": "2621440", "SESSION_QUOTA": "5242880",
	})
	s := w.create(w.alice)
	hist := "/api/sessions/" + s.ID + "/history"
	file := filepath.Join(w.sessionsDir(), s.ID, ".claude", "history.json")
	entry := func(n int) io.Reader { return strings.NewReader(`"` + strings.Repeat("h", n) + `"`) }

	expect(t, "append 1", w.do("POST", hist, w.alice, entry(1000000)), 201, "")
	expect(t, "append 2", w.do("POST", hist, w.alice, entry(1000000)), 201, "")
	before, _ := os.ReadFile(file)
	expect(t, "past max_history_size", w.do("POST", hist, w.alice, entry(1000000)), 413, "history_too_large")
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Errorf("a refused append changed history.json (%d → %d bytes)", len(before), len(after))
	}

	for _, name := range []string{"a", "b", "c"} {
		expect(t, "upload "+name, w.do("PUT", "/api/sessions/"+s.ID+"/files/"+name, w.alice, bytes.NewReader(make([]byte, 1<<20))), 201, "")
	}
	// 3 MiB of files and 2,000,005 bytes of history entries: 97,147 bytes left.
	expect(t, "past the quota", w.do("POST", hist, w.alice, entry(100000)), 507, "quota_exceeded")
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Errorf("an append refused by the quota changed history.json")
	}
	expect(t, "an upload into the history's room", w.do("PUT", "/api/sessions/"+s.ID+"/files/d", w.alice, bytes.NewReader(make([]byte, 100000))), 507, "quota_exceeded")
	expect(t, "within the quota", w.do("POST", hist, w.alice, entry(90000)), 201, "")

	r := w.do("GET", hist, w.alice, nil)
	var got struct{ Entries []string }
	r.json(t, &got)
	if r.status != 200 || len(got.Entries) != 3 || len(got.Entries[2]) != 90000 {
		t.Errorf("GET history: %d, %d entries", r.status, len(got.Entries))
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %q for %d bytes", cl, len(r.body))
	}
}

// TestUploadTimeout: a client that sends part of an upload's body and then
// trickles nothing is cut off at the upload timeout with 408 upload_timeout,
// and nothing of the upload is left in the session (no file, no temporary).
func TestUploadTimeout(t *testing.T) {
	w := startGateway(t, "sqlite:"+filepath.Join(t.TempDir(), "gw.db"), map[string]string{"UPLOAD_TIMEOUT": "1s"})
	s := w.create(w.alice)

	body, feed := io.Pipe()
	defer feed.Close()
	go feed.Write([]byte("the first ten"))
	req, err := http.NewRequest(http.MethodPut, w.g.URL("localhost", "/api/sessions/"+s.ID+"/files/slow.txt"), body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1000
	req.Header.Set("Authorization", "Bearer "+w.alice)
	resp, err := w.c.Do(req)
	if err != nil {
		t.Fatalf("slow upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	expect(t, "stalled upload", reply{status: resp.StatusCode, header: resp.Header, body: b}, http.StatusRequestTimeout, "upload_timeout")

	files := filepath.Join(w.sessionsDir(), s.ID, "files")
	entries, err := os.ReadDir(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the stalled upload left %s in the session", e.Name())
	}
	// A prompt upload still works.
	expect(t, "prompt upload", w.do(http.MethodPut, "/api/sessions/"+s.ID+"/files/ok.txt", w.alice, bytes.NewReader([]byte("fine"))), http.StatusCreated, "")
}
