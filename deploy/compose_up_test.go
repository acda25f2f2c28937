package deploy_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// The gateway service exactly as the compose files define it (read-only root,
// no capabilities, tmpfs mounts, the port sysctl, secrets as files, named
// volumes, its networks and published ports), started by the Compose tool on
// the test image. Only the database is swapped for SQLite: no MySQL image can
// be pulled here. The token key comes from the compose secret file. The DinD
// daemon cannot run here either, so the test does what its start leaves
// behind: client certificates in their volume (as the daemon writes them,
// root-owned, key mode 0644) and the workspace volume mounted by another
// container before the gateway.
func TestComposeUpGateway(t *testing.T) {
	testenv.Docker(t)
	compose := composeCommand(t)
	root := repoRoot(t)
	project := "cgw" + testenv.RandomHex(4)
	image := buildGatewayImage(t, project+"-gateway:test")

	dir := t.TempDir()
	key := "compose-secret-" + testenv.RandomHex(24)
	secrets := filepath.Join(dir, "secrets")
	writeFile(t, secrets, "secret_key", key+"\n")
	writeFile(t, secrets, "mysql_password", "unused\n")
	writeFile(t, secrets, "mysql_root_password", "unused\n")
	httpPort, httpsPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	envFile := writeFile(t, dir, "env", strings.Join([]string{
		"DOMAIN=localhost",
		"GATEWAY_IMAGE=" + image,
		"FRONTEND_IMAGE=unused:never-pulled",
		"BACKEND_IMAGE=unused:never-pulled",
		"HTTP_PORT=" + strconv.Itoa(httpPort),
		"HTTPS_PORT=" + strconv.Itoa(httpsPort),
		"SECRETS_DIR=" + secrets,
		"",
	}, "\n"))
	override := writeFile(t, dir, "sqlite.yml", "services:\n  gateway:\n    environment:\n      CLAUDE_DATABASE: sqlite:/data/gateway.db\n")

	argv := append(append([]string{}, compose...), "--env-file", envFile, "-p", project,
		"-f", filepath.Join(root, "docker-compose.yml"), "-f", filepath.Join(root, "docker-compose.dind.yml"), "-f", override)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	certs := filepath.Join(dir, "dind")
	if r := run(t, root, nil, 2*time.Minute, "deploy/dind-certs.sh", certs, "dind"); r.err != nil {
		t.Fatalf("dind-certs.sh: %v %s", r.err, r.stderr)
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if err := os.Chmod(filepath.Join(certs, "client", f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	certVol, wsVol := project+"_dind-certs-client", project+"_workspace"
	for _, v := range []string{certVol, wsVol} {
		docker(t, "volume", "create", "--label", "com.docker.compose.project="+project, "--label",
			"com.docker.compose.volume="+strings.TrimPrefix(v, project+"_"), v)
		dockerCleanup(t, "volume", "rm", "-f", v)
	}
	helper := docker(t, "create", "-v", certVol+":/certs/client", "-v", wsVol+":/workspaces", image)
	dockerCleanup(t, "rm", "-f", helper)
	docker(t, "cp", filepath.Join(certs, "client")+"/.", helper+":/certs/client/")
	docker(t, "rm", helper)
	// Runs before the volumes are removed (cleanups run last-in first-out).
	t.Cleanup(func() {
		r := run(t, root, env, 3*time.Minute, append(argv, "down", "-v", "--remove-orphans")...)
		if r.err != nil {
			t.Logf("compose down: %v %s", r.err, r.stderr)
		}
	})

	if r := run(t, root, env, 5*time.Minute, append(argv, "up", "-d", "--no-deps", "--no-build", "gateway")...); r.err != nil {
		t.Fatalf("compose up: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	logs := func() string {
		r := run(t, root, env, time.Minute, append(argv, "logs", "--tail=40", "gateway")...)
		return r.stdout + r.stderr
	}

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort)))
			},
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the container's internal CA
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(path, token string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://localhost"+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	deadline := time.Now().Add(90 * time.Second)
	for {
		status, body, err := get("/api/health", "")
		if err == nil && status == http.StatusOK && strings.Contains(body, `"database"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthy answer on the published port %d: %d %s %v\n%s", httpsPort, status, body, err, logs())
		}
		time.Sleep(time.Second)
	}

	// The key is the secret file's: a token signed with it passes the gateway's
	// check (the absent frontend then answers 502), one signed with another is 401.
	status, body, err := get("/", gatewaytest.AccessToken(t, key, "u-compose", "alice", "user", time.Minute))
	if err != nil || status == http.StatusUnauthorized || status != http.StatusBadGateway {
		t.Errorf("token signed with the secret file's key: %d %s %v", status, body, err)
	}
	status, body, err = get("/", gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-compose", "alice", "user", time.Minute))
	if err != nil || status != http.StatusUnauthorized {
		t.Errorf("token signed with another key: %d %s %v", status, body, err)
	}

	// Plain HTTP on the published port redirects to HTTPS.
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/", nil)
	req.Host = "localhost"
	resp, err := (&http.Client{Timeout: 10 * time.Second, CheckRedirect: client.CheckRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://localhost") {
		t.Errorf("HTTP: %s Location %q", resp.Status, loc)
	}

	// The workspace volume belongs to the gateway's user although another
	// container mounted it first (read on the local engine's volume directory).
	mp := docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", wsVol)
	if fi, err := os.Stat(mp); err != nil {
		t.Errorf("workspace volume at %s: %v", mp, err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("workspace volume owned by %d:%d, want 1000:1000", st.Uid, st.Gid)
	}
	// What the engine actually runs.
	cid := strings.TrimSpace(run(t, root, env, time.Minute, append(argv, "ps", "-q", "gateway")...).stdout)
	got := docker(t, "inspect", "-f",
		"{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.Privileged}} {{index .HostConfig.Sysctls \"net.ipv4.ip_unprivileged_port_start\"}}", cid)
	if got != "1000:1000 true [ALL] [no-new-privileges:true] false 0" {
		t.Errorf("gateway container: %q", got)
	}
}
