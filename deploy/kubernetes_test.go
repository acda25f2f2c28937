package deploy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// k8sObject is the part of a manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas    *int     `yaml:"replicas"`
		AccessModes []string `yaml:"accessModes"`
		Type        string   `yaml:"type"`
		Ports       []struct {
			Port     int    `yaml:"port"`
			Protocol string `yaml:"protocol"`
		} `yaml:"ports"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name            string `yaml:"name"`
		SecurityContext struct {
			Privileged               *bool `yaml:"privileged"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		VolumeMounts   []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type probe struct {
	Exec struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

// manifests reads every object of the kustomization's resources.
func manifests(t *testing.T) map[string]k8sObject {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "kubernetes")
	var kust struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
			Envs  []string `yaml:"envs"`
		} `yaml:"configMapGenerator"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{}
	for _, r := range kust.Resources {
		f, err := os.Open(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("kustomization resource: %v", err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
		f.Close()
	}
	gen := map[string][]string{}
	for _, g := range kust.ConfigMapGenerator {
		gen[g.Name] = append(g.Files, g.Envs...)
	}
	if !slices.Equal(gen["claude-gateway-caddyfile"], []string{"Caddyfile", "snippets.caddyfile"}) || !slices.Equal(gen["claude-gateway-env"], []string{"gateway.env"}) {
		t.Errorf("configMapGenerator: %v", gen)
	}
	return objs
}

// gatewayEnv reads kubernetes/gateway.env, the replicas' environment.
func gatewayEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "kubernetes", "gateway.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	return env
}

// The Kubernetes path: three non-root, read-only replicas with probes and
// limits, wired to one ReadWriteMany claim, the shared database, secrets as
// files and the TLS daemon; only the daemon privileged; only 80/443 served.
func TestKubernetesManifests(t *testing.T) {
	objs := manifests(t)
	env := gatewayEnv(t)
	dep, ok := objs["Deployment/claude-gateway"]
	if !ok {
		t.Fatal("no Deployment claude-gateway in the kustomization's resources")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != 1000 {
		t.Error("the gateway pod is not runAsNonRoot with uid 1000")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || sc.Privileged != nil && *sc.Privileged {
		t.Errorf("gateway container security context: %+v", sc)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("gateway container has no %s request and limit", r)
		}
	}
	if cmd := c.LivenessProbe.Exec.Command; !slices.Contains(cmd, "/api/live") || cmd[0] != "/usr/bin/claude-gateway" {
		t.Errorf("liveness probe %v", cmd)
	}
	if cmd := c.ReadinessProbe.Exec.Command; !slices.Contains(cmd, "/api/ready") || cmd[0] != "/usr/bin/claude-gateway" {
		t.Errorf("readiness probe %v", cmd)
	}

	// Volumes: where each is mounted, and what it is.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var claim, caddyfileCM, secretMount, clientMount string
	for _, v := range pod.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
			if mounts[v.Name] != env["CLAUDE_WORKSPACE"] {
				t.Errorf("claim %s mounted at %q, CLAUDE_WORKSPACE is %q", claim, mounts[v.Name], env["CLAUDE_WORKSPACE"])
			}
		case v.ConfigMap != nil && v.ConfigMap.Name == "claude-gateway-caddyfile":
			caddyfileCM = mounts[v.Name]
		case v.Secret != nil && v.Secret.SecretName == "claude-gateway-secrets":
			secretMount = mounts[v.Name]
		case v.Secret != nil && v.Secret.SecretName == "claude-dind-client":
			clientMount = mounts[v.Name]
		}
	}
	if pvc := objs["PersistentVolumeClaim/"+claim]; !slices.Equal(pvc.Spec.AccessModes, []string{"ReadWriteMany"}) {
		t.Errorf("workspace claim %q access modes %v, want ReadWriteMany", claim, pvc.Spec.AccessModes)
	}
	if caddyfileCM != "/etc/caddy" {
		t.Errorf("the Caddyfile ConfigMap is mounted at %q, want /etc/caddy (the image's --config)", caddyfileCM)
	}
	// Secrets as files: the token key and the database password.
	if secretMount == "" || env["SECRET_KEY_FILE"] != path.Join(secretMount, "secret-key") {
		t.Errorf("SECRET_KEY_FILE %q is not in the secret mount %q", env["SECRET_KEY_FILE"], secretMount)
	}
	if db := env["CLAUDE_DATABASE"]; !strings.HasPrefix(db, "mysql://") || !strings.Contains(db, "{file."+path.Join(secretMount, "mysql-password")+"}") {
		t.Errorf("CLAUDE_DATABASE %q: want MySQL with the password from the secret file", db)
	}
	for k, v := range env {
		if (strings.HasSuffix(k, "PASSWORD") || k == "SECRET_KEY") && v != "" {
			t.Errorf("gateway.env carries the secret %s", k)
		}
	}
	// The daemon: TLS with the client certificate mount, the same claim at daemon_workspace.
	if env["DOCKER_HOST"] != "tcp://dind:2376" || env["DOCKER_TLS_VERIFY"] != "1" || env["DOCKER_CERT_PATH"] != clientMount || clientMount == "" {
		t.Errorf("daemon client: DOCKER_HOST=%q DOCKER_TLS_VERIFY=%q DOCKER_CERT_PATH=%q (client certs at %q)",
			env["DOCKER_HOST"], env["DOCKER_TLS_VERIFY"], env["DOCKER_CERT_PATH"], clientMount)
	}
	dind, ok := objs["StatefulSet/dind"]
	if !ok || len(dind.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("no dind StatefulSet")
	}
	dindPod := dind.Spec.Template.Spec
	var dindWorkspace string
	for _, v := range dindPod.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			for _, m := range dindPod.Containers[0].VolumeMounts {
				if m.Name == v.Name {
					dindWorkspace = m.MountPath
				}
			}
		}
	}
	if dindWorkspace == "" || dindWorkspace != env["CLAUDE_DAEMON_WORKSPACE"] {
		t.Errorf("dind mounts the workspace claim at %q, CLAUDE_DAEMON_WORKSPACE is %q", dindWorkspace, env["CLAUDE_DAEMON_WORKSPACE"])
	}

	// Only the daemon is privileged.
	for name, o := range objs {
		for _, ctr := range o.Spec.Template.Spec.Containers {
			if p := ctr.SecurityContext.Privileged; p != nil && *p && name != "StatefulSet/dind" {
				t.Errorf("%s container %s is privileged", name, ctr.Name)
			}
		}
	}
	// The gateway's Service serves 80/TCP, 443/TCP and 443/UDP; the daemon's only 2376 inside.
	var ports []string
	for _, p := range objs["Service/claude-gateway"].Spec.Ports {
		ports = append(ports, strings.ToLower(p.Protocol)+"/"+strconv.Itoa(p.Port))
	}
	slices.Sort(ports)
	if want := []string{"tcp/443", "tcp/80", "udp/443"}; !slices.Equal(ports, want) {
		t.Errorf("gateway Service ports %v, want %v", ports, want)
	}
	if typ := objs["Service/dind"].Spec.Type; typ != "" && typ != "ClusterIP" {
		t.Errorf("dind Service type %q: it must stay inside the cluster", typ)
	}
}

// The Caddyfile the ConfigMap carries (the production one) makes replicas
// share state once adapted with the replicas' environment: certificates in
// MySQL (storage mysql), every rate-limit zone on the SQL store, the database
// from gateway.env.
func TestKubernetesCaddyfileSharesState(t *testing.T) {
	bin := gatewaytest.Binary(t)
	env := os.Environ()
	for k, v := range gatewayEnv(t) {
		env = append(env, k+"="+v)
	}
	r := run(t, repoRoot(t), env, 5*time.Minute, bin, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile")
	if r.err != nil {
		t.Fatalf("adapt: %v\n%s", r.err, r.stderr)
	}
	var cfg struct {
		Storage struct {
			Module string `json:"module"`
		} `json:"storage"`
		Apps struct {
			Claude struct {
				Database string `json:"database"`
			} `json:"claude"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cfg); err != nil {
		t.Fatalf("adapted config: %v", err)
	}
	if cfg.Storage.Module != "sql" {
		t.Errorf("storage module %q, want sql (certificates and ACME locks shared)", cfg.Storage.Module)
	}
	if cfg.Apps.Claude.Database != gatewayEnv(t)["CLAUDE_DATABASE"] {
		t.Errorf("claude database %q", cfg.Apps.Claude.Database)
	}
	// Every rate-limit zone anywhere in the config.
	var zones []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "claude_rate_limit" {
				for _, z := range x["zones"].([]any) {
					zones = append(zones, z.(map[string]any))
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var raw any
	json.Unmarshal([]byte(r.stdout), &raw)
	walk(raw)
	if len(zones) == 0 {
		t.Fatal("no claude_rate_limit zone in the production Caddyfile")
	}
	for _, z := range zones {
		if z["store"] != "sql" {
			t.Errorf("rate-limit zone %v uses store %v, want sql (one count across replicas)", z["name"], z["store"])
		}
	}
}

// deploy/dind-certs.sh makes a working mutual-TLS pair: the daemon's
// certificate verifies for "dind" under the CA, the client's is accepted, and
// a client without one or with another CA's is refused.
func TestDindCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dind")
	other := filepath.Join(t.TempDir(), "other")
	for _, d := range []string{dir, other} {
		if r := run(t, repoRoot(t), nil, 2*time.Minute, "deploy/dind-certs.sh", d); r.err != nil {
			t.Fatalf("dind-certs.sh: %v\n%s%s", r.err, r.stdout, r.stderr)
		}
	}
	for _, f := range []string{"server/ca.pem", "server/cert.pem", "server/key.pem", "client/ca.pem", "client/cert.pem", "client/key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"server/ca-key.pem", "client/ca-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s: the CA key must not be in a directory that becomes a Secret", f)
		}
	}
	pool := func(d string) *x509.CertPool {
		b, err := os.ReadFile(filepath.Join(d, "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(b)
		return p
	}
	pair := func(d, who string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(d, who, "cert.pem"), filepath.Join(d, who, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair(dir, "server")},
		ClientCAs:    pool(dir),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Write([]byte("ok"))
				c.Close()
			}()
		}
	}()
	dial := func(certs []tls.Certificate) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", l.Addr().String(), &tls.Config{
			ServerName: "dind", RootCAs: pool(dir), Certificates: certs,
		})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c) // TLS 1.3: a refused client certificate shows on the first read
		return err
	}
	if err := dial([]tls.Certificate{pair(dir, "client")}); err != nil {
		t.Errorf("the client certificate is refused: %v", err)
	}
	if err := dial(nil); err == nil {
		t.Error("a client without a certificate got through")
	}
	if err := dial([]tls.Certificate{pair(other, "client")}); err == nil {
		t.Error("a client certificate of another CA got through")
	}
}
