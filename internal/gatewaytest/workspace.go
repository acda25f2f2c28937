package gatewaytest

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// WorkspaceImage is the image `make workspace-image` builds: the sandbox
// image with a code-server stand-in (internal/standin). CLAUDE_WORKSPACE_IMAGE
// overrides it.
func WorkspaceImage() string {
	if img := os.Getenv("CLAUDE_WORKSPACE_IMAGE"); img != "" {
		return img
	}
	return "claude-workspace:local"
}

// WorkspaceEnv is the environment under which Caddyfile.dev starts session
// workspaces (the IDE at ide.localhost/s/{id}/) from WorkspaceImage on the
// machine's Docker engine: a workspace directory short enough for the IDE
// sockets beneath it, pull policy never, and container names of the test's
// own, removed when the test ends. A missing engine or image skips the test
// (fails it under CI).
func WorkspaceEnv(t testing.TB) map[string]string {
	t.Helper()
	testenv.DockerImage(t, WorkspaceImage())
	dir, err := os.MkdirTemp("", "gw")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "claude-ws-t" + testenv.RandomHex(4) + "-"
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name="+prefix).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		os.RemoveAll(dir)
	})
	return map[string]string{
		"CLAUDE_WORKSPACE":        dir,
		"CLAUDE_WORKSPACE_IMAGE":  WorkspaceImage(),
		"CLAUDE_WORKSPACE_PULL":   "never",
		"CLAUDE_WORKSPACE_PREFIX": prefix,
	}
}

// NewSession creates a session through the API with the credentials in h
// (an Authorization or a Cookie header) and returns its id.
func (g *Gateway) NewSession(t testing.TB, h http.Header) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL("localhost", "/api/sessions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Origin", g.URL("localhost", ""))
	resp, err := g.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating a session: %d %v", resp.StatusCode, err)
	}
	return body.ID
}
