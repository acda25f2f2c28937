// Package deploy_test checks the deployment files against the real tools: the
// compose files through docker-compose's own config resolution, the image
// through the real Docker engine, the Kubernetes path through the real binary.
package deploy_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	return gatewaytest.RepoRoot(t)
}

// composeCommand returns the Compose tool: the `docker compose` plugin when
// it works, else the standalone docker-compose.
func composeCommand(t testing.TB) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	testenv.Missing(t, "docker compose or docker-compose", exec.ErrNotFound)
	return nil
}

// cmdResult is what a finished command printed.
type cmdResult struct {
	stdout, stderr string
	err            error
}

// run runs a command with a timeout and returns its output and error.
func run(t testing.TB, dir string, env []string, timeout time.Duration, argv ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return cmdResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// docker runs the docker CLI and fails the test on an error.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	r := run(t, "", nil, 5*time.Minute, append([]string{"docker"}, args...)...)
	if r.err != nil {
		t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// dockerCleanup removes a Docker object when the test ends, whatever happened.
func dockerCleanup(t testing.TB, args ...string) {
	t.Cleanup(func() {
		r := run(t, "", nil, 2*time.Minute, append([]string{"docker"}, args...)...)
		if r.err != nil && !strings.Contains(r.stderr, "No such") && !strings.Contains(r.stderr, "not found") {
			t.Logf("cleanup docker %s: %v %s", strings.Join(args, " "), r.err, r.stderr)
		}
	})
}

// goBuildStatic builds a package as a static binary into dir.
func goBuildStatic(t testing.TB, pkg, out string) {
	t.Helper()
	env := append(os.Environ(), "CGO_ENABLED=0")
	r := run(t, repoRoot(t), env, 10*time.Minute, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	if r.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, r.err, r.stderr)
	}
}

// writeFile writes a file under dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
