package claude

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/containerlimits"
)

// TestLimitOptions: the executor and workspaces blocks read memory, cpus,
// pids and tmp_size alike, keep them flat in the JSON, and check them
// against their own floors (runs: 8 MiB and 4 processes; workspaces: 64 MiB
// and 16 processes).
func TestLimitOptions(t *testing.T) {
	const options = "memory 128MiB\ncpus 0.5\npids 64\ntmp_size 8MiB"
	want := containerlimits.Limits{Memory: 128 << 20, CPUs: 0.5, Pids: 64, TmpSize: 8 << 20}
	settings := map[string]func(app *App) (containerlimits.Limits, any){
		"executor": func(app *App) (containerlimits.Limits, any) {
			return app.ExecutorSettings().Limits, app.ExecutorConfig
		},
		"workspaces": func(app *App) (containerlimits.Limits, any) {
			return app.WorkspaceSettings().Limits, app.WorkspacesConfig
		},
	}
	for block, get := range settings {
		app, _ := parseBlock(t, "workspace /w\n"+block+" {\n"+options+"\n}", "")
		limits, config := get(&app)
		if limits != want {
			t.Errorf("%s: limits %+v, want %+v", block, limits, want)
		}
		out, _ := json.Marshal(config)
		if !strings.Contains(string(out), `"memory":134217728,"cpus":0.5,"pids":64,"tmp_size":8388608`) || strings.Contains(string(out), "Limits") {
			t.Errorf("%s: JSON %s: the limits are not flat", block, out)
		}
	}
	for _, tc := range []struct {
		block, option, err string
	}{
		{"executor", "memory 32MiB", ""},
		{"workspaces", "memory 32MiB", "workspaces: memory 33554432 is below 64 MiB"},
		{"executor", "memory 4MiB", "memory 4194304 is below 8 MiB"},
		{"executor", "pids 8", ""},
		{"workspaces", "pids 8", "workspaces: pids 8 is below 16"},
		{"executor", "pids 3", "pids 3 is below 4"},
		{"executor", "tmp_size 512KiB", "tmp_size 524288 is below 1 MiB"},
		{"workspaces", "tmp_size 512KiB", "tmp_size 524288 is below 1 MiB"},
		{"executor", "cpus lots", "not a positive number"},
		{"workspaces", "cpus lots", "not a positive number"},
		{"workspaces", "memory", "wrong argument count"},
	} {
		t.Run(tc.block+" "+tc.option, func(t *testing.T) {
			parseBlock(t, "workspace /w\n"+tc.block+" {\n"+tc.option+"\n}", tc.err)
		})
	}
}
