package deploy_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// replica is one gateway process of the scale-out test and its client.
type replica struct {
	name string
	g    *gatewaytest.Gateway
	c    *http.Client
}

func (r replica) do(t *testing.T, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, r.g.URL("localhost", path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.c.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", r.name, method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// replicaCaddyfile is the production Caddyfile — the one the image, compose
// and the Kubernetes ConfigMap carry — with one line added for this test:
// two processes on one host share a host name, the executor's default
// instance name, so each gets its own (Kubernetes pods have distinct names).
func replicaCaddyfile(t *testing.T, instance string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	const block = "\t\texecutor {\n"
	if strings.Count(string(b), block) != 1 || !strings.Contains(string(b), "\t\tclaude_exec\n") || !strings.Contains(string(b), "\tstorage sql\n") {
		t.Fatal("the production Caddyfile lacks the executor block, claude_exec or storage sql")
	}
	return strings.Replace(string(b), block, block+"\t\t\tinstance "+instance+"\n", 1)
}

// Two gateway replicas on the production Caddyfile, one MariaDB and one
// workspace directory: a session created through one is read, written and
// executed through the other, and both serve certificates of one CA kept in
// the shared database (storage sql). The database password and the token
// key come from files, as the compose secrets and Kubernetes Secrets give them.
func TestReplicasShareState(t *testing.T) {
	const sandbox = "claude-sandbox:local"
	testenv.DockerImage(t, sandbox)
	setting := testenv.MySQLDatabase(t)

	// The password moves into a secret file, referenced with {file.*}.
	secrets := t.TempDir()
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(setting, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	pwFile := writeFile(t, secrets, "mysql_password", cfg.Passwd+"\n")
	keyFile := writeFile(t, secrets, "secret_key", gatewaytest.TestSecret+"\n")
	database := "mysql://" + cfg.User + ":{file." + pwFile + "}@" + cfg.Net + "(" + cfg.Addr + ")/" + cfg.DBName
	if strings.Contains(database, ":"+cfg.Passwd+"@") {
		t.Fatal("test bug: the password is still in the setting")
	}

	// An operator applies the migrations ahead of a rollout with the same setting.
	migrate := run(t, repoRoot(t), append(os.Environ(), "CLAUDE_DATABASE="+database), 2*time.Minute,
		gatewaytest.Binary(t), "migrate")
	if migrate.err != nil || !strings.Contains(migrate.stdout, "schema version") {
		t.Fatalf("migrate with the password in a file: %v\n%s%s", migrate.err, migrate.stdout, migrate.stderr)
	}

	// One workspace directory (short enough for the IDE sockets beneath it)
	// and one set of workspace containers, from the local workspace image
	// (never pulled), for both replicas.
	wsEnv := gatewaytest.WorkspaceEnv(t)
	workspace := wsEnv["CLAUDE_WORKSPACE"]
	// The upstreams are never reached here: every request goes to the gateway's own APIs.
	upstream := gatewaytest.NewUpstream(t, "upstream")
	var replicas []replica
	for _, name := range []string{"a", "b"} {
		env := map[string]string{
			"DOMAIN":                  "localhost",
			"CLAUDE_DATABASE":         database,
			"SECRET_KEY_FILE":         keyFile,
			"CLAUDE_WORKSPACE":        workspace,
			"CLAUDE_DAEMON_WORKSPACE": workspace,
			"CLAUDE_SANDBOX_IMAGE":    sandbox,
			"CLAUDE_ADMIN_SOCKET":     filepath.Join(t.TempDir(), "admin.sock"),
			"FRONTEND_UPSTREAM":       upstream.Addr(),
			"BACKEND_UPSTREAM":        upstream.Addr(),
		}
		for k, v := range wsEnv {
			env[k] = v
		}
		g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: replicaCaddyfile(t, "replica-"+name+"-"+testenv.RandomHex(3)), Env: env})
		c := g.Client()
		c.Timeout = 2 * time.Minute
		replicas = append(replicas, replica{name: name, g: g, c: c})
	}
	a, b := replicas[0], replicas[1]

	// The probes Kubernetes runs (the binary probing itself from the pod's own
	// environment) pass on a replica and fail where nothing listens.
	for _, tt := range []struct {
		port string
		ok   bool
	}{{strconv.Itoa(a.g.HTTPSPort), true}, {strconv.Itoa(gatewaytest.FreePort(t)), false}} {
		probeEnv := append(os.Environ(), "DOMAIN=localhost", "CLAUDE_HTTPS_PORT="+tt.port)
		r := run(t, repoRoot(t), probeEnv, time.Minute, gatewaytest.Binary(t), "healthcheck", "--path", "/api/ready")
		if (r.err == nil) != tt.ok {
			t.Errorf("healthcheck --path /api/ready on port %s: %v %s (want success %v)", tt.port, r.err, r.stderr, tt.ok)
		}
	}
	alice := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-alice", "alice", "user", time.Hour)
	bob := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-bob", "bob", "user", time.Hour)

	// Created through A.
	status, body := a.do(t, http.MethodPost, "/api/sessions", alice, []byte(`{}`))
	if status != http.StatusCreated {
		t.Fatalf("create through a: %d %s", status, body)
	}
	var created struct{ ID string }
	if json.Unmarshal(body, &created) != nil || created.ID == "" {
		t.Fatalf("create: %s", body)
	}
	id := created.ID

	// Read through B.
	if status, body := b.do(t, http.MethodGet, "/api/sessions/"+id, alice, nil); status != http.StatusOK || !strings.Contains(string(body), id) {
		t.Fatalf("get through b: %d %s", status, body)
	}
	// Owner-only through B too.
	if status, body := b.do(t, http.MethodGet, "/api/sessions/"+id, bob, nil); status != http.StatusNotFound {
		t.Errorf("bob gets alice's session through b: %d %s", status, body)
	}

	// Written through B, read through A.
	if status, body := b.do(t, http.MethodPut, "/api/sessions/"+id+"/files/hello.py", alice, []byte("print('hello from b')\n")); status/100 != 2 {
		t.Fatalf("put through b: %d %s", status, body)
	}
	if status, body := a.do(t, http.MethodGet, "/api/sessions/"+id+"/files/hello.py", alice, nil); status != http.StatusOK || string(body) != "print('hello from b')\n" {
		t.Fatalf("file through a: %d %q", status, body)
	}

	// Executed through B on what was written through B, writing a file A serves.
	code := `exec(open('/workspace/hello.py').read()); open('/workspace/out.txt', 'w').write('written by the sandbox')`
	req, _ := json.Marshal(map[string]any{"language": "python", "code": code})
	status, body = b.do(t, http.MethodPost, "/api/sessions/"+id+"/exec", alice, req)
	var res struct {
		ExitCode int    `json:"exit_code"`
		Stdout   string `json:"stdout"`
		Stderr   string `json:"stderr"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res.ExitCode != 0 || res.Stdout != "hello from b\n" {
		t.Fatalf("exec through b: %d %s", status, body)
	}
	if status, body := a.do(t, http.MethodGet, "/api/sessions/"+id+"/files/out.txt", alice, nil); status != http.StatusOK || string(body) != "written by the sandbox" {
		t.Fatalf("sandbox output through a: %d %q", status, body)
	}
	// And executed through A as well.
	status, body = a.do(t, http.MethodPost, "/api/sessions/"+id+"/exec", alice, []byte(`{"language":"bash","code":"cat /workspace/out.txt"}`))
	if status != http.StatusOK || !strings.Contains(string(body), `"stdout":"written by the sandbox"`) {
		t.Fatalf("exec through a: %d %s", status, body)
	}

	// Deleted through A: gone through B.
	if status, body := a.do(t, http.MethodDelete, "/api/sessions/"+id, alice, nil); status/100 != 2 {
		t.Fatalf("delete through a: %d %s", status, body)
	}
	if status, body := b.do(t, http.MethodGet, "/api/sessions/"+id, alice, nil); status != http.StatusNotFound {
		t.Errorf("deleted session through b: %d %s", status, body)
	}

	// One CA for both: the internal issuer's root lives in the shared storage.
	issuer := func(r replica) *x509.Certificate {
		resp, err := r.c.Get(r.g.URL("localhost", "/api/live"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		chain := resp.TLS.PeerCertificates
		return chain[len(chain)-1]
	}
	if ia, ib := issuer(a), issuer(b); !bytes.Equal(ia.RawSubjectPublicKeyInfo, ib.RawSubjectPublicKeyInfo) || !bytes.Equal(ia.Raw, ib.Raw) {
		t.Errorf("replicas serve certificates of different issuers: %q vs %q", ia.Subject, ib.Subject)
	}
}
