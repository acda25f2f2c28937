// Package composecheck enforces the stack's network exposure rules on a
// resolved Compose configuration (the output of `docker-compose config` or
// `docker compose config`):
//
//   - only the edge service publishes ports, and only 80/tcp, 443/tcp and 443/udp;
//   - no service shares the host's or another service's network namespace;
//   - the database and the Docker daemon sit on internal networks only;
//   - the Docker daemon speaks TLS only: DOCKER_TLS_CERTDIR set, no plaintext
//     2375, every client on tcp:// verifies TLS with a certificate path, and the
//     CA's private key is never mounted into another service;
//   - only the daemon is privileged, nobody else gets privileged-equivalent
//     capabilities or the host's Docker socket.
package composecheck

import (
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy names the services the rules single out.
type Policy struct {
	// Edge is the only service that may publish ports.
	Edge string
	// Daemon is the Docker-in-Docker service: the only privileged one.
	Daemon string
	// InternalOnly lists services whose every network must be internal (the
	// database and the daemon).
	InternalOnly []string
	// EdgePorts are the container ports the edge may publish, as "80/tcp".
	EdgePorts []string
}

// DefaultPolicy is the stack's policy: gateway at the edge, dind the daemon,
// mysql and dind on internal networks only.
var DefaultPolicy = Policy{
	Edge:         "gateway",
	Daemon:       "dind",
	InternalOnly: []string{"mysql", "dind"},
	EdgePorts:    []string{"80/tcp", "443/tcp", "443/udp"},
}

// Violation is one broken rule.
type Violation struct {
	// Service is the offending service, or empty for a project-wide rule.
	Service string
	// Rule is a short stable identifier, e.g. "published_port".
	Rule string
	// Detail says what was found.
	Detail string
}

// String renders the violation as "service: rule: detail".
func (v Violation) String() string {
	if v.Service == "" {
		return v.Rule + ": " + v.Detail
	}
	return v.Service + ": " + v.Rule + ": " + v.Detail
}

// Project is the part of a resolved Compose file the rules read.
type Project struct {
	Services map[string]Service `yaml:"services"`
	Networks map[string]Network `yaml:"networks"`
}

// Service is one service of a resolved Compose file.
type Service struct {
	Image       string      `yaml:"image"`
	Privileged  bool        `yaml:"privileged"`
	NetworkMode string      `yaml:"network_mode"`
	Ports       []yaml.Node `yaml:"ports"`
	Networks    yaml.Node   `yaml:"networks"`
	Environment yaml.Node   `yaml:"environment"`
	Volumes     []yaml.Node `yaml:"volumes"`
	CapAdd      []string    `yaml:"cap_add"`
	Command     yaml.Node   `yaml:"command"`
	Entrypoint  yaml.Node   `yaml:"entrypoint"`
}

// Network is one top-level network.
type Network struct {
	Internal bool `yaml:"internal"`
	External any  `yaml:"external"`
}

// Parse reads a resolved Compose file.
func Parse(b []byte) (*Project, error) {
	var p Project
	if err := yaml.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("parsing compose config: %w", err)
	}
	if len(p.Services) == 0 {
		return nil, fmt.Errorf("parsing compose config: no services")
	}
	return &p, nil
}

// Check returns every rule the project breaks under policy, sorted by service.
func (pol Policy) Check(p *Project) []Violation {
	var out []Violation
	add := func(svc, rule, format string, args ...any) {
		out = append(out, Violation{Service: svc, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	allowed := map[string]bool{}
	for _, port := range pol.EdgePorts {
		allowed[port] = true
	}
	internalOnly := map[string]bool{}
	for _, s := range pol.InternalOnly {
		internalOnly[s] = true
	}
	caVolumes, clientVolumes := pol.daemonCertVolumes(p)

	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		env, err := environment(s.Environment)
		if err != nil {
			add(name, "unreadable", "environment: %v", err)
		}

		// Ports.
		for _, node := range s.Ports {
			target, err := portTarget(node)
			if err != nil {
				add(name, "unreadable", "ports: %v", err)
				continue
			}
			switch {
			case name != pol.Edge:
				add(name, "published_port", "publishes %s; only %s may publish ports", target, pol.Edge)
			case !allowed[target]:
				add(name, "published_port", "publishes %s; allowed: %s", target, strings.Join(pol.EdgePorts, ", "))
			}
		}

		// Network namespaces.
		if mode := s.NetworkMode; mode == "host" || strings.HasPrefix(mode, "service:") || strings.HasPrefix(mode, "container:") {
			add(name, "network_mode", "network_mode %q bypasses the compose networks", mode)
		}

		// Internal networks.
		if internalOnly[name] {
			nets, err := networkNames(s.Networks)
			if err != nil {
				add(name, "unreadable", "networks: %v", err)
			}
			if len(nets) == 0 && s.NetworkMode == "" {
				nets = []string{"default"}
			}
			for _, n := range nets {
				def, ok := p.Networks[n]
				if !ok || !def.Internal || def.External != nil && def.External != false {
					add(name, "non_internal_network", "joins network %q, which is not internal", n)
				}
			}
		}

		// Privilege.
		if s.Privileged && name != pol.Daemon {
			add(name, "privileged", "privileged; only %s may be", pol.Daemon)
		}
		for _, c := range s.CapAdd {
			switch strings.TrimPrefix(strings.ToUpper(c), "CAP_") {
			case "ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "NET_ADMIN", "DAC_READ_SEARCH", "BPF", "PERFMON":
				if name != pol.Daemon {
					add(name, "capability", "cap_add %s is privileged-equivalent", c)
				}
			}
		}

		// Mounts: the host's Docker socket, the daemon CA's private key.
		for _, node := range s.Volumes {
			m, err := mountOf(node)
			if err != nil {
				add(name, "unreadable", "volumes: %v", err)
				continue
			}
			if strings.HasSuffix(m.Source, "docker.sock") {
				add(name, "docker_socket", "mounts %s: root on the host", m.Source)
			}
			if name != pol.Daemon && caVolumes[m.Source] {
				add(name, "daemon_ca_key", "mounts volume %q, which holds the daemon's CA key", m.Source)
			}
			if name != pol.Daemon && clientVolumes[m.Source] && !m.ReadOnly {
				add(name, "writable_client_certs", "mounts the daemon's client certificates at %s writable", m.Target)
			}
		}

		// The daemon: TLS on, never plaintext.
		if name == pol.Daemon {
			if strings.TrimSpace(env["DOCKER_TLS_CERTDIR"]) == "" {
				add(name, "daemon_plaintext", "DOCKER_TLS_CERTDIR is empty or unset: the daemon listens on plaintext 2375")
			}
			args := strings.Join(append(words(s.Command), words(s.Entrypoint)...), " ")
			if strings.Contains(args, ":2375") || strings.Contains(args, "--tls=false") || strings.Contains(args, "--tlsverify=false") {
				add(name, "daemon_plaintext", "command %q opens the API without TLS", args)
			}
		}

		// Docker clients on TCP verify TLS.
		if host := env["DOCKER_HOST"]; host != "" {
			if problem := tcpClientProblem(host, env); problem != "" {
				add(name, "daemon_plaintext", "%s", problem)
			}
		}
	}

	if _, ok := p.Services[pol.Edge]; !ok {
		add("", "no_edge", "no %s service", pol.Edge)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// tcpClientProblem explains why a DOCKER_HOST client would talk to the daemon
// without verified TLS, or returns "".
func tcpClientProblem(host string, env map[string]string) string {
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Sprintf("DOCKER_HOST %q: %v", host, err)
	}
	if u.Scheme != "tcp" && u.Scheme != "https" && u.Scheme != "http" {
		return ""
	}
	if u.Scheme == "http" || u.Port() == "2375" || u.Port() == "" {
		return fmt.Sprintf("DOCKER_HOST %q is the plaintext API", host)
	}
	if v := env["DOCKER_TLS_VERIFY"]; v == "" || v == "0" || strings.EqualFold(v, "false") {
		return fmt.Sprintf("DOCKER_HOST %q without DOCKER_TLS_VERIFY=1", host)
	}
	if env["DOCKER_CERT_PATH"] == "" {
		return fmt.Sprintf("DOCKER_HOST %q without DOCKER_CERT_PATH", host)
	}
	return ""
}

// daemonCertVolumes returns the volumes the daemon mounts at its CA directory
// (DOCKER_TLS_CERTDIR/ca) or the whole certificate directory — both hold the
// CA's private key — and those it mounts at the client directory.
func (pol Policy) daemonCertVolumes(p *Project) (ca, client map[string]bool) {
	ca, client = map[string]bool{}, map[string]bool{}
	d, ok := p.Services[pol.Daemon]
	if !ok {
		return ca, client
	}
	env, _ := environment(d.Environment)
	if env["DOCKER_TLS_CERTDIR"] == "" {
		return ca, client
	}
	dir := path.Clean(env["DOCKER_TLS_CERTDIR"])
	for _, node := range d.Volumes {
		m, err := mountOf(node)
		if err != nil || m.Source == "" {
			continue
		}
		switch path.Clean(m.Target) {
		case dir, path.Join(dir, "ca"):
			ca[m.Source] = true
		case path.Join(dir, "client"):
			client[m.Source] = true
		}
	}
	return ca, client
}

// Mount is one entry of a service's volumes.
type Mount struct {
	// Source is the named volume or host path; empty for an anonymous volume.
	Source string
	// Target is the path inside the container.
	Target string
	// ReadOnly reports a read-only mount.
	ReadOnly bool
}

// Env returns the service's environment, whichever form it was written in.
func (s Service) Env() (map[string]string, error) { return environment(s.Environment) }

// Mounts returns the service's volume entries, whichever form they were written in.
func (s Service) Mounts() ([]Mount, error) {
	var out []Mount
	for _, n := range s.Volumes {
		m, err := mountOf(n)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// PortTargets returns the container ports the service publishes, as "443/udp".
func (s Service) PortTargets() ([]string, error) {
	var out []string
	for _, n := range s.Ports {
		p, err := portTarget(n)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// NetworkNames returns the networks the service joins, sorted.
func (s Service) NetworkNames() ([]string, error) { return networkNames(s.Networks) }

// mountOf reads a volume entry in the short ("src:dst:ro") or long form.
func mountOf(n yaml.Node) (Mount, error) {
	var m Mount
	switch n.Kind {
	case yaml.ScalarNode:
		parts := strings.Split(n.Value, ":")
		switch len(parts) {
		case 1:
			m.Target = parts[0]
		case 2:
			m.Source, m.Target = parts[0], parts[1]
		default:
			m.Source, m.Target = parts[0], parts[1]
			for _, opt := range strings.Split(parts[2], ",") {
				if opt == "ro" {
					m.ReadOnly = true
				}
			}
		}
	case yaml.MappingNode:
		var long struct {
			Source   string `yaml:"source"`
			Target   string `yaml:"target"`
			ReadOnly bool   `yaml:"read_only"`
		}
		if err := n.Decode(&long); err != nil {
			return m, err
		}
		m.Source, m.Target, m.ReadOnly = long.Source, long.Target, long.ReadOnly
	default:
		return m, fmt.Errorf("unexpected volume entry at line %d", n.Line)
	}
	return m, nil
}

// portTarget returns a port entry's container port and protocol, "443/udp".
func portTarget(n yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		// [ip:][host:]container[/proto]
		spec, proto, _ := strings.Cut(n.Value, "/")
		if proto == "" {
			proto = "tcp"
		}
		parts := strings.Split(spec, ":")
		return parts[len(parts)-1] + "/" + proto, nil
	case yaml.MappingNode:
		var long struct {
			Target   any    `yaml:"target"`
			Protocol string `yaml:"protocol"`
		}
		if err := n.Decode(&long); err != nil {
			return "", err
		}
		proto := long.Protocol
		if proto == "" {
			proto = "tcp"
		}
		return fmt.Sprint(long.Target) + "/" + proto, nil
	}
	return "", fmt.Errorf("unexpected port entry at line %d", n.Line)
}

// networkNames reads a service's networks, list or mapping form.
func networkNames(n yaml.Node) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.SequenceNode:
		var names []string
		err := n.Decode(&names)
		return names, err
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return nil, err
		}
		return sortedKeys(m), nil
	}
	return nil, fmt.Errorf("unexpected networks at line %d", n.Line)
}

// environment reads a service's environment, mapping or "K=V" list form.
func environment(n yaml.Node) (map[string]string, error) {
	env := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return env, err
		}
		for k, v := range m {
			if v != nil {
				env[k] = fmt.Sprint(v)
			} else {
				env[k] = ""
			}
		}
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return env, err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	default:
		return env, fmt.Errorf("unexpected environment at line %d", n.Line)
	}
	return env, nil
}

// words reads a command or entrypoint, string or list form.
func words(n yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strings.Fields(n.Value)
	case yaml.SequenceNode:
		var list []string
		if n.Decode(&list) == nil {
			return list
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
