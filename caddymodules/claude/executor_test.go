package claude

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/containerlimits"
	"github.com/claude-gateway/claude-gateway/executor"
)

// TestExecutorOption parses the executor block and maps it onto the
// executor's configuration.
func TestExecutorOption(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block string
		check func(t *testing.T, c executor.Config)
		err   string
	}{
		{name: "everything", block: `host tcp://dind:2376
			tls /c/ca.pem /c/cert.pem /c/key.pem
			daemon_workspace /workspaces
			image python claude-sandbox:local
			image bash bash:5
			runtime runsc
			helper /opt/bin/claude-run
			memory 128MiB
			cpus 0.5
			pids 64
			tmp_size 8MiB
			timeout 10
			max_timeout 2m
			output_limit 64KiB
			concurrency 8
			per_user 3
			queue 0
			queue_per_user 2
			instance gw-1
			cleanup_interval 30s`,
			check: func(t *testing.T, c executor.Config) {
				want := executor.Config{
					Host: "tcp://dind:2376", TLSCA: "/c/ca.pem", TLSCert: "/c/cert.pem", TLSKey: "/c/key.pem",
					Workspace: c.Workspace, DaemonWorkspace: "/workspaces",
					Images:  map[string]string{"python": "claude-sandbox:local", "bash": "bash:5"},
					Runtime: "runsc", Helper: "/opt/bin/claude-run", Limits: containerlimits.Limits{Memory: 128 << 20, CPUs: 0.5, Pids: 64, TmpSize: 8 << 20},
					Timeout: 10 * time.Second, MaxTimeout: 2 * time.Minute, OutputLimit: 64 << 10,
					Concurrency: 8, PerUser: 3, Queue: -1, QueuePerUser: 2, Instance: "gw-1", CleanupInterval: 30 * time.Second,
				}
				got, _ := json.Marshal(c)
				exp, _ := json.Marshal(want)
				if string(got) != string(exp) {
					t.Errorf("got  %s\nwant %s", got, exp)
				}
			}},
		{name: "empty block keeps the defaults", block: "", check: func(t *testing.T, c executor.Config) {
			if c.Image(executor.Python) != executor.DefaultImage || c.Memory != 0 || c.Queue != 0 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "unknown option", block: "privileged true", err: `unknown executor option "privileged"`},
		{name: "image without a language", block: "image claude-sandbox:local", err: "image takes <language> <image>"},
		{name: "bad size", block: "memory lots", err: "not a size in bytes"},
		{name: "bad cpus", block: "cpus -1", err: "not a positive number"},
		{name: "max below timeout", block: "timeout 60\nmax_timeout 30", err: "below timeout"},
		{name: "per_user above concurrency", block: "per_user 9\nconcurrency 2", err: "exceeds concurrency"},
		{name: "tls with two files", block: "tls a b", err: "tls takes"},
		{name: "relative helper", block: "helper claude-run", err: "not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, ok := parseBlock(t, "executor {\n"+tc.block+"\n}", tc.err)
			if !ok {
				return
			}
			tc.check(t, app.ExecutorSettings())
		})
	}
}
