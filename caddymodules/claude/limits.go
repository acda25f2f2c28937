package claude

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/containerlimits"
)

// parseLimit reads the container-limit option the dispenser is on, the same
// in the executor and the workspaces blocks:
//
//	memory   <size>
//	cpus     <number>
//	pids     <count>
//	tmp_size <size>
//
// ok is false for any other option, which is left for the caller to read.
func parseLimit(d *caddyfile.Dispenser, l *containerlimits.Limits) (ok bool, err error) {
	switch d.Val() {
	case "memory":
		return true, caddyfileopt.Size(d, &l.Memory)
	case "tmp_size":
		return true, caddyfileopt.Size(d, &l.TmpSize)
	case "cpus":
		return true, caddyfileopt.Number(d, &l.CPUs)
	case "pids":
		var n int
		err := caddyfileopt.Count(d, &n)
		l.Pids = int64(n)
		return true, err
	}
	return false, nil
}
