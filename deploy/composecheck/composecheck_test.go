package composecheck

import (
	"strings"
	"testing"
)

// good is a resolved config that follows every rule, in the shapes both
// docker-compose 1.x and Compose v2 print (long and short forms mixed).
const good = `
services:
  gateway:
    image: gw
    ports:
      - published: 80
        target: 80
      - "443:443"
      - protocol: udp
        published: "443"
        target: 443
    environment:
      DOCKER_HOST: tcp://dind:2376
      DOCKER_TLS_VERIFY: "1"
      DOCKER_CERT_PATH: /certs/client
    volumes:
      - dind-certs-client:/certs/client:ro
      - type: volume
        source: workspace
        target: /workspace
    networks: [public, apps, data, sandbox]
  mysql:
    image: mysql:8.0
    networks:
      data: {}
  dind:
    image: docker:dind
    privileged: true
    environment:
      - DOCKER_TLS_CERTDIR=/certs
    volumes:
      - dind-certs-ca:/certs/ca:rw
      - dind-certs-client:/certs/client:rw
    networks:
      sandbox: {}
networks:
  public: {}
  apps: {internal: true}
  data: {internal: true}
  sandbox: {internal: true}
`

func check(t *testing.T, doc string) []Violation {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return DefaultPolicy.Check(p)
}

func TestGoodConfigPasses(t *testing.T) {
	if v := check(t, good); len(v) != 0 {
		t.Fatalf("violations in a good config: %v", v)
	}
}

// Each case changes one thing in the good config; the check must name it.
func TestViolations(t *testing.T) {
	tests := []struct {
		name    string
		old     string // replaced in good
		new     string
		service string
		rule    string
	}{
		{"mysql publishes 3306", "    image: mysql:8.0\n", "    image: mysql:8.0\n    ports: [\"3306:3306\"]\n", "mysql", "published_port"},
		{"mysql publishes, long form", "    image: mysql:8.0\n", "    image: mysql:8.0\n    ports:\n      - target: 3306\n        published: 3306\n", "mysql", "published_port"},
		{"dind publishes 2376", "    image: docker:dind\n", "    image: docker:dind\n    ports: [\"127.0.0.1:2376:2376\"]\n", "dind", "published_port"},
		{"gateway publishes the admin API", "      - \"443:443\"\n", "      - \"443:443\"\n      - \"2019:2019\"\n", "gateway", "published_port"},
		{"mysql on a non-internal network", "    networks:\n      data: {}\n", "    networks:\n      data: {}\n      public: {}\n", "mysql", "non_internal_network"},
		{"mysql on the default network", "    networks:\n      data: {}\n", "", "mysql", "non_internal_network"},
		{"dind network not internal", "  sandbox: {internal: true}\n", "  sandbox: {}\n", "dind", "non_internal_network"},
		{"dind network external", "  sandbox: {internal: true}\n", "  sandbox: {internal: true, external: true}\n", "dind", "non_internal_network"},
		{"mysql on the host network", "    networks:\n      data: {}\n", "    network_mode: host\n", "mysql", "network_mode"},
		{"service in the gateway's namespace", "    image: mysql:8.0\n", "    image: mysql:8.0\n    network_mode: service:gateway\n", "mysql", "network_mode"},
		{"TLS off: empty cert dir", "      - DOCKER_TLS_CERTDIR=/certs\n", "      - DOCKER_TLS_CERTDIR=\n", "dind", "daemon_plaintext"},
		{"TLS off: cert dir unset", "      - DOCKER_TLS_CERTDIR=/certs\n", "      - OTHER=1\n", "dind", "daemon_plaintext"},
		{"daemon command opens 2375", "    privileged: true\n", "    privileged: true\n    command: [\"--host=tcp://0.0.0.0:2375\"]\n", "dind", "daemon_plaintext"},
		{"client on 2375", "tcp://dind:2376", "tcp://dind:2375", "gateway", "daemon_plaintext"},
		{"client without verify", "      DOCKER_TLS_VERIFY: \"1\"\n", "", "gateway", "daemon_plaintext"},
		{"client verify 0", "      DOCKER_TLS_VERIFY: \"1\"\n", "      DOCKER_TLS_VERIFY: \"0\"\n", "gateway", "daemon_plaintext"},
		{"client without cert path", "      DOCKER_CERT_PATH: /certs/client\n", "", "gateway", "daemon_plaintext"},
		{"gateway privileged", "    image: gw\n", "    image: gw\n    privileged: true\n", "gateway", "privileged"},
		{"mysql SYS_ADMIN", "    image: mysql:8.0\n", "    image: mysql:8.0\n    cap_add: [SYS_ADMIN]\n", "mysql", "capability"},
		{"host docker socket", "      - dind-certs-client:/certs/client:ro\n", "      - dind-certs-client:/certs/client:ro\n      - /var/run/docker.sock:/var/run/docker.sock\n", "gateway", "docker_socket"},
		{"CA key shared", "      - dind-certs-client:/certs/client:ro\n", "      - dind-certs-client:/certs/client:ro\n      - dind-certs-ca:/ca:ro\n", "gateway", "daemon_ca_key"},
		{"client certs writable", "dind-certs-client:/certs/client:ro", "dind-certs-client:/certs/client", "gateway", "writable_client_certs"},
		{"no edge service", "  gateway:\n    image: gw\n", "  gw2:\n    image: gw\n", "gw2", "published_port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.old) {
				t.Fatalf("test bug: %q not in the good config", tt.old)
			}
			got := check(t, strings.Replace(good, tt.old, tt.new, 1))
			for _, v := range got {
				if v.Service == tt.service && v.Rule == tt.rule {
					return
				}
			}
			t.Fatalf("want %s/%s, got %v", tt.service, tt.rule, got)
		})
	}
}

func TestParseRejectsEmpty(t *testing.T) {
	if _, err := Parse([]byte("networks: {}\n")); err == nil {
		t.Fatal("a config without services parsed")
	}
	if _, err := Parse([]byte("services: [\n")); err == nil {
		t.Fatal("broken YAML parsed")
	}
}
