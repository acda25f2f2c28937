package claudeexec_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkExecVersusDockerCLI measures the wall time of `print(1)` through
// POST /api/sessions/{id}/exec on the real gateway — a `docker exec` in the
// session's warm workspace container — against `docker run --rm` of the
// sandbox image with a run's limits from the command line (what a container
// per run costs at least), alternating the two in the same run. It reports
// p50/p95 of both, their ratio (gateway / CLI; below 1 is faster), and the
// cold first run of a session (its workspace created and started).
//
//	go test -run '^$' -bench ExecVersusDockerCLI -benchtime 30x ./caddymodules/claudeexec/
func BenchmarkExecVersusDockerCLI(b *testing.B) {
	w := startBench(b)
	id := w.session(w.alice)
	dir := filepath.Join(w.g.Dir, "workspace", "sessions", id, "files")
	cli := []string{"run", "--rm", "--network", "none", "--user", "1000:1000", "--cap-drop", "ALL",
		"--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=67108864",
		"--pids-limit", "128", "--memory", "256m", "--memory-swap", "256m", "--cpus", "1",
		"--log-driver", "none", "--ulimit", "nofile=1024:1024", "--label", "org.claude-gateway.instance=" + w.instance,
		"-v", dir + ":/workspace", "-w", "/workspace", image(), "python3", "-c", "print(1)"}
	// Cold: the first run of new sessions (another user each: the per-user
	// cap on running workspaces is small).
	var cold []time.Duration
	for _, token := range []string{w.bob, w.admin} {
		s := w.session(token)
		start := time.Now()
		r, res := w.exec(token, s, "python", "print(1)")
		cold = append(cold, time.Since(start))
		if r.status != 200 || res.Stdout != "1\n" {
			b.Fatalf("cold: %d %s", r.status, r.body)
		}
	}
	// Warm both paths once.
	if r, res := w.exec(w.alice, id, "python", "print(1)"); r.status != 200 || res.Stdout != "1\n" {
		b.Fatalf("gateway: %d %s", r.status, r.body)
	}
	if out, err := exec.Command("docker", cli...).CombinedOutput(); err != nil || string(out) != "1\n" {
		b.Fatalf("docker run: %v %s", err, out)
	}
	var gw, cl []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		r, res := w.exec(w.alice, id, "python", "print(1)")
		gw = append(gw, time.Since(start))
		if r.status != 200 || res.Stdout != "1\n" {
			b.Fatalf("gateway: %d %s", r.status, r.body)
		}
		start = time.Now()
		out, err := exec.Command("docker", cli...).CombinedOutput()
		cl = append(cl, time.Since(start))
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			b.Fatalf("docker run: %v %s", err, out)
		}
	}
	b.StopTimer()
	g50, g95 := percentiles(gw)
	c50, c95 := percentiles(cl)
	b.ReportMetric(ms(g50), "gw-p50-ms")
	b.ReportMetric(ms(g95), "gw-p95-ms")
	b.ReportMetric(ms(c50), "cli-p50-ms")
	b.ReportMetric(ms(c95), "cli-p95-ms")
	b.ReportMetric(float64(g50)/float64(c50), "p50-ratio")
	b.ReportMetric(float64(g95)/float64(c95), "p95-ratio")
	b.ReportMetric(ms(slices.Max(cold)), "cold-max-ms")
	b.ReportMetric(0, "ns/op")
}

func percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.95)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startBench is start for a benchmark (gatewaytest takes a testing.TB).
func startBench(b *testing.B) *gw {
	b.Helper()
	return startTB(b)
}
