package deploy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/deploy/imagefs"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// testDockerfile turns the real Dockerfile into one that needs no pull: its
// final stage (FROM scratch and every instruction after it: USER, HEALTHCHECK,
// EXPOSE, ENV, ENTRYPOINT, CMD) with the root filesystem added from a local
// tar instead of copied from the Go builder stage.
func testDockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(l)), "FROM ") {
			last = i
		}
	}
	if last < 0 || strings.TrimSpace(lines[last]) != "FROM scratch" {
		t.Fatalf("the Dockerfile's final stage must be FROM scratch, got %q", lines[max(last, 0)])
	}
	stage := strings.Join(lines[last:], "\n")
	const copyRoot = "COPY --from=builder /rootfs/ /"
	if strings.Count(stage, copyRoot) != 1 {
		t.Fatalf("the final stage must copy the root filesystem once with %q", copyRoot)
	}
	return strings.Replace(stage, copyRoot, "ADD rootfs.tar /", 1)
}

// staticGateway returns a statically linked gateway binary: $CLAUDE_GATEWAY_BIN
// when it is static (make build sets CGO_ENABLED=0), else one built here.
func staticGateway(t *testing.T, dir string) string {
	t.Helper()
	if p := os.Getenv("CLAUDE_GATEWAY_BIN"); p != "" && isStatic(p) {
		return p
	}
	out := filepath.Join(dir, "claude-gateway")
	goBuildStatic(t, "./cmd/claude-gateway", out)
	if !isStatic(out) {
		t.Fatalf("%s is dynamically linked", out)
	}
	return out
}

func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// buildImage builds an image from a context directory and removes it at the end.
func buildImage(t *testing.T, tag, dir string) {
	t.Helper()
	docker(t, "build", "-q", "-t", tag, dir)
	dockerCleanup(t, "image", "rm", "-f", tag)
}

// buildGatewayImage builds the test variant of the gateway image under tag:
// the real Dockerfile's final stage on the root filesystem the builder stage
// would make. The image is removed when the test ends.
func buildGatewayImage(t *testing.T, tag string) string {
	t.Helper()
	if _, err := os.Stat(imagefs.CABundlePath); err != nil {
		testenv.Missing(t, "a CA bundle (Debian's ca-certificates)", err)
	}
	work := t.TempDir()
	ctx := filepath.Join(work, "context")
	writeFile(t, ctx, "Dockerfile", testDockerfile(t))
	f, err := os.Create(filepath.Join(ctx, "rootfs.tar"))
	if err != nil {
		t.Fatal(err)
	}
	layout := imagefs.Layout{
		Binary:    staticGateway(t, work),
		Caddyfile: filepath.Join(repoRoot(t), "Caddyfile"),
		Snippets:  filepath.Join(repoRoot(t), "snippets.caddyfile"),
		CABundle:  imagefs.CABundlePath,
	}
	if err := layout.WriteTar(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	buildImage(t, tag, ctx)
	return tag
}

// probeResult is netpeer's answer to `probe`.
type probeResult struct {
	Open       []string `json:"open"`
	Unresolved []string `json:"unresolved"`
	Closed     int      `json:"closed"`
}

// The gateway image (the real Dockerfile's final stage on the same root
// filesystem) runs as uid 1000 with a read-only root and no capabilities,
// serves /api/health on its published port, proxies to an upstream over an
// internal network, and nothing but its two ports answers on either network.
func TestGatewayImage(t *testing.T) {
	testenv.Docker(t)
	id := "cgw-" + testenv.RandomHex(4)
	gwImage := buildGatewayImage(t, id+"-gateway:test")

	// The peer image: a static HTTP upstream and TCP probe, also FROM scratch.
	peerImage := buildPeerImage(t, id+"-peer:test")

	t.Run("image config", func(t *testing.T) {
		var cfg []struct {
			Config struct {
				User         string
				ExposedPorts map[string]struct{}
				Healthcheck  struct{ Test []string }
				Entrypoint   []string
			}
		}
		if err := json.Unmarshal([]byte(docker(t, "image", "inspect", gwImage)), &cfg); err != nil || len(cfg) != 1 {
			t.Fatalf("image inspect: %v", err)
		}
		c := cfg[0].Config
		if c.User != "1000:1000" {
			t.Errorf("USER %q, want 1000:1000", c.User)
		}
		var ports []string
		for p := range c.ExposedPorts {
			ports = append(ports, p)
		}
		slices.Sort(ports)
		if want := []string{"443/tcp", "443/udp", "80/tcp"}; !slices.Equal(ports, want) {
			t.Errorf("EXPOSE %v, want %v", ports, want)
		}
		if want := []string{"CMD", imagefs.BinaryPath, "healthcheck"}; !slices.Equal(c.Healthcheck.Test, want) {
			t.Errorf("HEALTHCHECK %v, want %v", c.Healthcheck.Test, want)
		}
	})

	// Networks: `public` is where the published ports live; `private` is
	// internal, like the compose file's apps/data networks.
	public, private := id+"-public", id+"-private"
	docker(t, "network", "create", public)
	dockerCleanup(t, "network", "rm", public)
	docker(t, "network", "create", "--internal", private)
	dockerCleanup(t, "network", "rm", private)

	upstream := id + "-upstream"
	docker(t, "run", "-d", "--name", upstream, "--network", private, "--network-alias", "upstream",
		peerImage, "serve", ":8080", "upstream")
	dockerCleanup(t, "rm", "-f", "-v", upstream)

	// Fresh named volumes, as compose creates them.
	vols := map[string]string{"data": id + "-data", "config": id + "-config", "workspace": id + "-workspace"}
	for _, v := range vols {
		docker(t, "volume", "create", v)
		dockerCleanup(t, "volume", "rm", "-f", v)
	}

	// The gateway as docker-compose.yml runs it: read-only root, no capabilities,
	// unprivileged ports from 0, tmpfs for /tmp and the admin socket.
	gateway := id + "-gateway"
	docker(t, "create", "--name", gateway, "--network", public, "--network-alias", "gateway",
		"-p", "127.0.0.1::80", "-p", "127.0.0.1::443", "-p", "127.0.0.1::443/udp",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
		"--sysctl", "net.ipv4.ip_unprivileged_port_start=0",
		"--tmpfs", "/tmp:size=64m,uid=1000,gid=1000,mode=0700",
		"--tmpfs", "/run/claude-gateway:size=1m,uid=1000,gid=1000,mode=0700",
		"-v", vols["data"]+":/data", "-v", vols["config"]+":/config", "-v", vols["workspace"]+":/workspace",
		"--health-interval", "1s", "--health-start-period", "60s",
		"-e", "DOMAIN=localhost",
		"-e", "CLAUDE_DATABASE=sqlite:/data/gateway.db",
		"-e", "SECRET_KEY="+gatewaytest.TestSecret,
		"-e", "FRONTEND_UPSTREAM=upstream:8080",
		"-e", "BACKEND_UPSTREAM=upstream:8080",
		"-e", "CODE_SERVER_UPSTREAM=upstream:8080",
		gwImage)
	dockerCleanup(t, "rm", "-f", "-v", gateway)
	docker(t, "network", "connect", "--alias", "gateway", private, gateway)
	docker(t, "start", gateway)

	// The image's own HEALTHCHECK (the binary probing itself) turns healthy.
	deadline := time.Now().Add(90 * time.Second)
	for {
		state := docker(t, "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", gateway)
		if state == "running healthy" {
			break
		}
		if !strings.HasPrefix(state, "running") || time.Now().After(deadline) {
			logs := run(t, "", nil, time.Minute, "docker", "logs", "--tail", "60", gateway)
			t.Fatalf("gateway container %q, not healthy:\n%s%s", state, logs.stdout, logs.stderr)
		}
		time.Sleep(500 * time.Millisecond)
	}

	t.Run("the binary probes itself", func(t *testing.T) {
		// Liveness (the HEALTHCHECK above) and readiness, as the Kubernetes exec probes run them.
		docker(t, "exec", gateway, imagefs.BinaryPath, "healthcheck", "--path", "/api/ready")
		// A path that is not a probe answers 401 here: the check must fail.
		r := run(t, "", nil, time.Minute, "docker", "exec", gateway, imagefs.BinaryPath, "healthcheck", "--path", "/api/not-a-probe")
		if r.err == nil {
			t.Error("healthcheck --path /api/not-a-probe exited 0")
		}
	})

	t.Run("published port answers from the host", func(t *testing.T) {
		httpsAddr := docker(t, "port", gateway, "443/tcp")
		httpAddr := docker(t, "port", gateway, "80/tcp")
		client := &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
				},
				// The certificate comes from the container's internal CA; it is checked by name below.
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		resp, err := client.Get("https://localhost/api/health")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var health struct {
			Status   string
			Services map[string]struct{ Status string }
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || health.Services["database"].Status == "" {
			t.Fatalf("/api/health: %s %s", resp.Status, body)
		}
		if health.Services["database"].Status != "healthy" {
			t.Errorf("/api/health database: %s", body)
		}
		leaf := resp.TLS.PeerCertificates[0]
		if !slices.Contains(leaf.DNSNames, "localhost") {
			t.Errorf("certificate names %v, want localhost", leaf.DNSNames)
		}

		// The app host proxies to the upstream over the internal network, for a
		// signed-in user; without a token the gateway answers itself.
		req, _ := http.NewRequest(http.MethodGet, "https://localhost/", nil)
		req.Header.Set("Authorization", "Bearer "+gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-image-test", "alice", "user", time.Minute))
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"served_by":"upstream"`) {
			t.Errorf("GET / through the gateway: %s %s", resp.Status, body)
		}

		// Plain HTTP redirects to HTTPS.
		plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: client.CheckRedirect}
		req, _ = http.NewRequest(http.MethodGet, "http://"+httpAddr+"/x", nil)
		req.Host = "localhost"
		resp, err = plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://localhost") {
			t.Errorf("http://…/x: %s Location %q, want a redirect to https", resp.Status, loc)
		}
	})

	probe := func(t *testing.T, network string, targets ...string) probeResult {
		t.Helper()
		out := docker(t, append([]string{"run", "--rm", "--network", network, peerImage, "probe"}, targets...)...)
		var r probeResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("probe output %q: %v", out, err)
		}
		return r
	}

	t.Run("only the gateway's ports answer on the private network", func(t *testing.T) {
		r := probe(t, private, "gateway:1-65535")
		if want := []string{"gateway:443", "gateway:80"}; !slices.Equal(r.Open, want) {
			t.Errorf("open ports of the gateway container: %v, want %v (admin API and everything else closed)", r.Open, want)
		}
		if r.Closed != 65535-2 {
			t.Errorf("%d ports closed, want %d", r.Closed, 65535-2)
		}
	})

	t.Run("the private network is unreachable from the public one", func(t *testing.T) {
		var ips map[string]struct{ IPAddress string }
		if err := json.Unmarshal([]byte(docker(t, "inspect", "-f", "{{json .NetworkSettings.Networks}}", upstream)), &ips); err != nil {
			t.Fatal(err)
		}
		upstreamIP := ips[private].IPAddress
		if upstreamIP == "" {
			t.Fatalf("upstream has no address on %s: %v", private, ips)
		}
		r := probe(t, public, "gateway:80", "gateway:443", "gateway:2019", "upstream:8080", upstreamIP+":8080")
		if want := []string{"gateway:443", "gateway:80"}; !slices.Equal(r.Open, want) {
			t.Errorf("open from the public network: %v, want %v", r.Open, want)
		}
		if !slices.Equal(r.Unresolved, []string{"upstream:8080"}) {
			t.Errorf("unresolved %v: the upstream's name must not resolve outside its network", r.Unresolved)
		}
	})

	t.Run("volumes belong to uid 1000", func(t *testing.T) {
		for _, v := range []string{vols["data"], vols["workspace"]} {
			out := docker(t, "run", "--rm", "-v", v+":/v:ro", peerImage, "stat", "/v")
			var st struct{ UID, GID int }
			if err := json.Unmarshal([]byte(out), &st); err != nil || st.UID != imagefs.UID || st.GID != imagefs.GID {
				t.Errorf("volume %s root: %s (want uid/gid %d)", v, out, imagefs.UID)
			}
		}
		out := docker(t, "run", "--rm", "-v", vols["data"]+":/v:ro", peerImage, "stat", "/v/gateway.db")
		if !strings.Contains(out, fmt.Sprintf(`"uid":%d`, imagefs.UID)) {
			t.Errorf("the gateway's database file: %s", out)
		}
	})

	t.Run("runs as uid 1000 with no capabilities", func(t *testing.T) {
		out := docker(t, "inspect", "-f", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.Privileged}}", gateway)
		if out != "1000:1000 true [ALL] false" {
			t.Errorf("container config %q", out)
		}
		pid := docker(t, "inspect", "-f", "{{.State.Pid}}", gateway)
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			// The daemon runs the container in another machine or PID
			// namespace: fine elsewhere, a gap under CI.
			testenv.Missing(t, "the gateway process's /proc status (a Docker engine on this host)", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(status)))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			fields := strings.Fields(v)
			switch k {
			case "Uid":
				if !slices.Equal(fields, []string{"1000", "1000", "1000", "1000"}) {
					t.Errorf("process uids %v", fields)
				}
			case "CapEff", "CapPrm":
				if fields[0] != "0000000000000000" {
					t.Errorf("process %s %s, want none", k, fields[0])
				}
			}
		}
	})
}

// The Dockerfile's builder stage compiles what .dockerignore lets into the
// build context: the context the engine really receives (copied into an image
// and exported back) builds every package, embedded files included.
func TestDockerBuildContext(t *testing.T) {
	testenv.Docker(t)
	work := t.TempDir()
	writeFile(t, work, "Dockerfile", "FROM scratch\nCOPY . /src\n")
	tag := "cgw-" + testenv.RandomHex(4) + "-context:test"
	docker(t, "build", "-q", "-f", filepath.Join(work, "Dockerfile"), "-t", tag, repoRoot(t))
	dockerCleanup(t, "image", "rm", "-f", tag)
	cid := docker(t, "create", tag, "/none")
	dockerCleanup(t, "rm", "-f", cid)
	out := filepath.Join(work, "context")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := run(t, work, nil, 5*time.Minute, "sh", "-c", "docker export "+cid+" | tar -x -C "+out); r.err != nil {
		t.Fatalf("export: %v %s", r.err, r.stderr)
	}
	src := filepath.Join(out, "src")
	for _, unwanted := range []string{".git", "bin", ".env", "secrets", "deploy/image_test.go"} {
		if _, err := os.Stat(filepath.Join(src, unwanted)); err == nil {
			t.Errorf("%s is in the build context", unwanted)
		}
	}
	env := append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-trimpath")
	if r := run(t, src, env, 10*time.Minute, "go", "build", "./..."); r.err != nil {
		t.Fatalf("go build ./... in the build context: %v\n%s", r.err, r.stderr)
	}
}
