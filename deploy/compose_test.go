package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/deploy/composecheck"
)

// composeSets are the ways the stack is started: each file alone and both together.
var composeSets = map[string][]string{
	"base":      {"docker-compose.yml"},
	"dind":      {"docker-compose.dind.yml"},
	"base+dind": {"docker-compose.yml", "docker-compose.dind.yml"},
}

// composeConfig resolves compose files in dir with the Compose tool itself,
// variables from envFile only, and returns the resolved YAML and the warnings.
func composeConfig(t *testing.T, dir, envFile string, files ...string) (string, string) {
	t.Helper()
	argv := composeCommand(t)
	if envFile != "" {
		argv = append(argv, "--env-file", envFile)
	}
	for _, f := range files {
		argv = append(argv, "-f", f)
	}
	argv = append(argv, "config")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	r := run(t, dir, env, 2*time.Minute, argv...)
	if r.err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), r.err, r.stderr)
	}
	return r.stdout, r.stderr
}

func resolvedProject(t *testing.T, files ...string) *composecheck.Project {
	t.Helper()
	root := repoRoot(t)
	out, _ := composeConfig(t, root, filepath.Join(root, ".env.example"), files...)
	p, err := composecheck.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The Compose tool accepts each file alone and both together, with every
// variable set by .env.example (no "variable is not set" warning).
func TestComposeConfigAccepted(t *testing.T) {
	want := map[string][]string{
		"base":      {"backend", "frontend", "gateway", "mysql"},
		"dind":      {"dind", "gateway"},
		"base+dind": {"backend", "dind", "frontend", "gateway", "mysql"},
	}
	root := repoRoot(t)
	for name, files := range composeSets {
		t.Run(name, func(t *testing.T) {
			out, warnings := composeConfig(t, root, filepath.Join(root, ".env.example"), files...)
			if strings.Contains(warnings, "variable is not set") {
				t.Errorf(".env.example leaves a variable unset:\n%s", warnings)
			}
			p, err := composecheck.Parse([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for s := range p.Services {
				got = append(got, s)
			}
			sort.Strings(got)
			if !slices.Equal(got, want[name]) {
				t.Errorf("services %v, want %v", got, want[name])
			}
		})
	}
}

// The exposure rules hold for every way of starting the stack.
func TestComposePolicy(t *testing.T) {
	for name, files := range composeSets {
		t.Run(name, func(t *testing.T) {
			p := resolvedProject(t, files...)
			for _, v := range composecheck.DefaultPolicy.Check(p) {
				t.Errorf("%s", v)
			}
		})
	}
}

// The policy must have something to hold on: the real files publish the
// gateway's ports, run a TLS daemon, share the workspace and the client
// certificates the way the executor expects, and keep secrets in files.
func TestComposeWiring(t *testing.T) {
	p := resolvedProject(t, composeSets["base+dind"]...)
	gw, dind, mysql := p.Services["gateway"], p.Services["dind"], p.Services["mysql"]

	ports, err := gw.PortTargets()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ports)
	if want := []string{"443/tcp", "443/udp", "80/tcp"}; !slices.Equal(ports, want) {
		t.Errorf("gateway publishes %v, want %v", ports, want)
	}
	if !dind.Privileged {
		t.Error("dind is not privileged: the daemon cannot run")
	}
	if len(mysql.Ports) != 0 || len(dind.Ports) != 0 {
		t.Error("mysql or dind publishes a port")
	}

	gwEnv, _ := gw.Env()
	dindEnv, _ := dind.Env()
	for k, v := range map[string]string{"DOCKER_HOST": "tcp://dind:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs/client"} {
		if gwEnv[k] != v {
			t.Errorf("gateway %s=%q, want %q", k, gwEnv[k], v)
		}
	}
	certDir := dindEnv["DOCKER_TLS_CERTDIR"]
	if certDir == "" {
		t.Fatal("dind has no DOCKER_TLS_CERTDIR")
	}

	gwMounts, _ := gw.Mounts()
	dindMounts, _ := dind.Mounts()
	source := func(ms []composecheck.Mount, target string) (composecheck.Mount, bool) {
		for _, m := range ms {
			if filepath.Clean(m.Target) == target {
				return m, true
			}
		}
		return composecheck.Mount{}, false
	}
	dClient, ok1 := source(dindMounts, filepath.Join(certDir, "client"))
	gClient, ok2 := source(gwMounts, gwEnv["DOCKER_CERT_PATH"])
	if !ok1 || !ok2 || dClient.Source != gClient.Source || !gClient.ReadOnly {
		t.Errorf("client certificates: dind %+v, gateway %+v; want one volume, read-only in the gateway", dClient, gClient)
	}
	// The executor maps <workspace> in the gateway to <daemon_workspace> in dind:
	// both must be the same volume.
	gWS, ok1 := source(gwMounts, gwEnv["CLAUDE_WORKSPACE"])
	dWS, ok2 := source(dindMounts, gwEnv["CLAUDE_DAEMON_WORKSPACE"])
	if !ok1 || !ok2 || gWS.Source != dWS.Source || gWS.Source == "" {
		t.Errorf("workspace: gateway %s → %+v, dind %s → %+v; want the same volume",
			gwEnv["CLAUDE_WORKSPACE"], gWS, gwEnv["CLAUDE_DAEMON_WORKSPACE"], dWS)
	}
	// The IDE is each session's own workspace container in dind, never a shared
	// service over the workspace volume.
	for name, svc := range p.Services {
		if strings.Contains(svc.Image, "code-server") {
			t.Errorf("service %s runs code-server (%s): the IDE lives in the session workspaces", name, svc.Image)
		}
	}
	if gwEnv["CLAUDE_WORKSPACE_PULL"] != "never" || gwEnv["CLAUDE_WORKSPACE_IMAGE"] == "" {
		t.Errorf("gateway workspace image %q pull %q; dind cannot pull", gwEnv["CLAUDE_WORKSPACE_IMAGE"], gwEnv["CLAUDE_WORKSPACE_PULL"])
	}

	// Secrets: files, never values in the environment.
	secretName := regexp.MustCompile(`(PASSWORD|SECRET_KEY|_TOKEN|API_KEY)$`)
	for name, s := range p.Services {
		env, _ := s.Env()
		for k, v := range env {
			if secretName.MatchString(k) && v != "" {
				t.Errorf("%s: %s is set in the environment; use %s_FILE", name, k, k)
			}
		}
	}
	if gwEnv["SECRET_KEY_FILE"] == "" || !strings.Contains(gwEnv["CLAUDE_DATABASE"], "{file./run/secrets/") {
		t.Errorf("gateway secrets not from files: SECRET_KEY_FILE=%q CLAUDE_DATABASE=%q", gwEnv["SECRET_KEY_FILE"], gwEnv["CLAUDE_DATABASE"])
	}
}

// The check is not vacuous: a compose file that breaks each rule, resolved by
// the real Compose tool, is caught on every count.
func TestComposePolicyCatchesBadFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docker-compose.yml", `
services:
  gateway:
    image: gw
    ports: ["443:443", "2019:2019"]
    environment:
      DOCKER_HOST: tcp://dind:2375
  backend:
    image: be
    privileged: true
  mysql:
    image: mysql:8.0
    ports: ["3306:3306"]
  dind:
    image: docker:dind
    privileged: true
    environment:
      DOCKER_TLS_CERTDIR: ""
    networks: [outside]
networks:
  outside: {}
`)
	out, _ := composeConfig(t, dir, "", "docker-compose.yml")
	p, err := composecheck.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, v := range composecheck.DefaultPolicy.Check(p) {
		got[v.Service+"/"+v.Rule] = true
	}
	for _, want := range []string{
		"gateway/published_port",     // 2019
		"gateway/daemon_plaintext",   // tcp://dind:2375
		"backend/privileged",         //
		"mysql/published_port",       // 3306
		"mysql/non_internal_network", // the default network
		"dind/daemon_plaintext",      // DOCKER_TLS_CERTDIR empty
		"dind/non_internal_network",  // outside
	} {
		if !got[want] {
			t.Errorf("not caught: %s (got %v)", want, got)
		}
	}
}

// .env.example documents every variable the compose files read, with a
// comment, and holds no secret values.
func TestEnvExample(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string]bool{}
	commented := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			commented = false
		case strings.HasPrefix(line, "#"):
			commented = true
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf(".env.example: not a KEY=value line: %q", line)
				continue
			}
			if !commented {
				t.Errorf(".env.example: %s has no comment above it", k)
			}
			if regexp.MustCompile(`(PASSWORD|SECRET|SECRET_KEY|_TOKEN|API_KEY)$`).MatchString(k) && v != "" {
				t.Errorf(".env.example: %s carries a value; secrets are files under SECRETS_DIR", k)
			}
			documented[k] = true
		}
	}
	ref := regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`)
	for _, name := range []string{"docker-compose.yml", "docker-compose.dind.yml"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			if !documented[m[1]] {
				t.Errorf("%s reads %s, which .env.example does not document", name, m[1])
			}
		}
	}
}
