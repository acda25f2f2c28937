package caddyfileopt_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/claude-gateway/claude-gateway"
)

// kind is what an option's value is; every option of a kind accepts the same
// spellings and refuses the same mistakes.
type kind int

const (
	duration kind = iota
	size
	count
)

// spellings are the accepted spellings of each kind, all meaning the same
// value as it appears in the adapted JSON.
var spellings = map[kind]struct {
	accepted []string
	json     string
	refused  map[string]string // value → part of the error
}{
	duration: {
		accepted: []string{"30", "30s", "0.5m", "30000ms"},
		json:     "30000000000",
		refused: map[string]string{
			"soon": `"soon" is neither seconds nor a duration`,
			"-30":  `"-30" must not be negative`,
			"-30s": `"-30s" must not be negative`,
			"30 s": "wrong argument count",
		},
	},
	size: {
		accepted: []string{"67108864", "64MiB", "65536KiB", "64mib", "0.0625GiB"},
		json:     "67108864",
		refused: map[string]string{
			"big":  `"big" is not a size in bytes`,
			"-1":   `"-1" is not a size in bytes`,
			"64 M": "wrong argument count",
		},
	},
	count: {
		accepted: []string{"16"},
		json:     "16",
		refused: map[string]string{
			"many":  `"many" is not a non-negative integer`,
			"-16":   `"-16" is not a non-negative integer`,
			"16.5":  `"16.5" is not a non-negative integer`,
			"16 17": "wrong argument count",
		},
	},
}

// options lists every duration, size and count option of our modules: the
// Caddyfile that sets it (VALUE marks the value) and its JSON field.
var options = []struct {
	name      string
	kind      kind
	caddyfile string
	field     string
}{
	{"claude sessions timeout", duration, global("sessions {\ntimeout VALUE\n}"), "timeout"},
	{"claude sessions reap_interval", duration, global("sessions {\nreap_interval VALUE\n}"), "reap_interval"},
	{"claude sessions max_sessions", count, global("sessions {\nmax_sessions VALUE\n}"), "max_sessions"},
	{"claude sessions max_sessions_per_user", count, global("sessions {\nmax_sessions_per_user VALUE\n}"), "max_sessions_per_user"},
	{"claude sessions max_file_size", size, global("sessions {\nmax_file_size VALUE\n}"), "max_file_size"},
	{"claude sessions max_history_size", size, global("sessions {\nmax_history_size VALUE\n}"), "max_history_size"},
	{"claude sessions quota", size, global("sessions {\nquota VALUE\n}"), "quota"},
	{"claude session_timeout (alias)", duration, global("session_timeout VALUE"), "timeout"},
	{"claude session_reap_interval (alias)", duration, global("session_reap_interval VALUE"), "reap_interval"},
	{"claude max_sessions (alias)", count, global("max_sessions VALUE"), "max_sessions"},
	{"claude max_sessions_per_user (alias)", count, global("max_sessions_per_user VALUE"), "max_sessions_per_user"},
	{"claude max_file_size (alias)", size, global("max_file_size VALUE"), "max_file_size"},
	{"claude max_history_size (alias)", size, global("max_history_size VALUE"), "max_history_size"},
	{"claude session_quota (alias)", size, global("session_quota VALUE"), "quota"},
	{"claude auth access_ttl", duration, global("auth {\naccess_ttl VALUE\n}"), "access_ttl"},
	{"claude auth refresh_ttl", duration, global("auth {\nrefresh_ttl VALUE\n}"), "refresh_ttl"},
	{"claude auth leeway", duration, global("auth {\nleeway VALUE\n}"), "leeway"},
	{"claude auth revocation_sync", duration, global("auth {\nrevocation_sync VALUE\n}"), "revocation_sync"},
	{"claude auth find_time", duration, global("auth {\nfind_time VALUE\n}"), "find_time"},
	{"claude auth ban_time", duration, global("auth {\nban_time VALUE\n}"), "ban_time"},
	{"claude auth max_token_size", size, global("auth {\nmax_token_size VALUE\n}"), "max_token_size"},
	{"claude auth max_retries", count, global("auth {\nmax_retries VALUE\n}"), "max_retries"},
	{"claude auth bcrypt_cost", count, global("auth {\nbcrypt_cost VALUE\n}"), "bcrypt_cost"},
	{"claude executor memory", size, global("executor {\nmemory VALUE\n}"), "memory"},
	{"claude executor tmp_size", size, global("executor {\ntmp_size VALUE\n}"), "tmp_size"},
	{"claude executor output_limit", size, global("executor {\noutput_limit VALUE\n}"), "output_limit"},
	{"claude executor build_context_limit", size, global("executor {\nbuild_context_limit VALUE\n}"), "build_context_limit"},
	{"claude executor pids", count, global("executor {\npids VALUE\n}"), "pids"},
	{"claude executor concurrency", count, global("executor {\nconcurrency VALUE\n}"), "concurrency"},
	{"claude executor per_user", count, global("executor {\nconcurrency 16\nper_user VALUE\n}"), "per_user"},
	{"claude executor queue", count, global("executor {\nqueue VALUE\n}"), "queue"},
	{"claude executor queue_per_user", count, global("executor {\nqueue_per_user VALUE\n}"), "queue_per_user"},
	{"claude executor timeout", duration, global("executor {\ntimeout VALUE\n}"), "timeout"},
	{"claude executor max_timeout", duration, global("executor {\nmax_timeout VALUE\n}"), "max_timeout"},
	{"claude executor cleanup_interval", duration, global("executor {\ncleanup_interval VALUE\n}"), "cleanup_interval"},
	{"claude executor build_timeout", duration, global("executor {\nbuild_timeout VALUE\n}"), "build_timeout"},
	{"claude workspaces memory", size, global("workspaces {\nmemory VALUE\n}"), "memory"},
	{"claude workspaces tmp_size", size, global("workspaces {\ntmp_size VALUE\n}"), "tmp_size"},
	{"claude workspaces pids", count, global("workspaces {\npids VALUE\n}"), "pids"},
	{"claude workspaces max_running", count, global("workspaces {\nmax_running VALUE\n}"), "max_running"},
	{"claude workspaces max_running_per_user", count, global("workspaces {\nmax_running_per_user VALUE\n}"), "max_running_per_user"},
	{"claude workspaces idle_timeout", duration, global("workspaces {\nidle_timeout VALUE\n}"), "idle_timeout"},
	{"claude workspaces start_wait", duration, global("workspaces {\nstart_wait VALUE\n}"), "start_wait"},
	{"claude workspaces sweep_interval", duration, global("workspaces {\nsweep_interval VALUE\n}"), "sweep_interval"},
	{"claude workspace_idle_timeout (alias)", duration, global("workspace_idle_timeout VALUE"), "idle_timeout"},
	{"claude audit retention", duration, global("audit {\nretention VALUE\n}"), "retention"},
	{"claude audit buffer", count, global("audit {\nbuffer VALUE\n}"), "buffer"},
	{"storage sql lease", duration, "{\nstorage sql {\nlease VALUE\n}\n}\n:8080\n", "lease"},
	{"storage sql poll_interval", duration, "{\nstorage sql {\npoll_interval VALUE\n}\n}\n:8080\n", "poll_interval"},
	{"handoff timeout", duration, "{\nservers {\nlistener_wrappers {\nhandoff {\ntimeout VALUE\n}\n}\n}\n}\n:8080\n", "timeout"},
	{"claude_health timeout", duration, route("claude_health {\ntimeout VALUE\n}"), "timeout"},
	{"claude_sessions upload_timeout", duration, route("claude_sessions {\nupload_timeout VALUE\n}"), "upload_timeout"},
	{"claude_workspace wait", duration, route("claude_workspace {\nwait VALUE\n}"), "wait"},
	{"claude_origin max_age", duration, route("claude_origin https://app.test {\nmax_age VALUE\n}"), "max_age"},
	{"claude_ide_signon ticket_ttl", duration, route("claude_ide_signon https://ide.test {\nticket_ttl VALUE\n}"), "ticket_ttl"},
	{"claude_ide_gate state_ttl", duration, route("claude_ide_gate https://app.test/auth/ide {\nstate_ttl VALUE\n}"), "state_ttl"},
	{"claude_rate_limit store_timeout", duration, route("claude_rate_limit {\nstore_timeout VALUE\nzone z {\nrate 1/s\nkey {client_ip}\n}\n}"), "store_timeout"},
	{"claude_rate_limit zone sync_interval", duration, route("claude_rate_limit {\nzone z {\nrate 1/s\nkey {client_ip}\nstore sql\nsync_interval VALUE\n}\n}"), "sync_interval"},
}

// global is a Caddyfile whose claude global option holds block (and a
// workspace short enough for the IDE sockets beneath it).
func global(block string) string {
	return "{\nclaude {\nworkspace /srv/ws\n" + block + "\n}\n}\n:8080\n"
}

// route is a Caddyfile whose one site's route holds directive.
func route(directive string) string {
	return ":8080 {\nroute {\n" + directive + "\n}\n}\n"
}

// TestOptionSpellings adapts every duration, size and count option with
// every accepted spelling of its kind and finds the same value in the JSON,
// then with every refused one and finds an error naming the file, the line
// and the option.
func TestOptionSpellings(t *testing.T) {
	for _, opt := range options {
		sp := spellings[opt.kind]
		option := strings.Fields(opt.name)[len(strings.Fields(opt.name))-1]
		if option == "(alias)" {
			option = strings.Fields(opt.name)[len(strings.Fields(opt.name))-2]
		}
		line := 1 + strings.Count(opt.caddyfile[:strings.Index(opt.caddyfile, "VALUE")], "\n")
		for _, value := range sp.accepted {
			t.Run(opt.name+"/"+value, func(t *testing.T) {
				out, err := adapt(strings.Replace(opt.caddyfile, "VALUE", value, 1))
				if err != nil {
					t.Fatalf("%s %s: %v", option, value, err)
				}
				if want := `"` + opt.field + `":` + sp.json; !strings.Contains(out, want) {
					t.Errorf("%s %s: no %s in %s", option, value, want, out)
				}
			})
		}
		for value, wantErr := range sp.refused {
			t.Run(opt.name+"/"+value, func(t *testing.T) {
				_, err := adapt(strings.Replace(opt.caddyfile, "VALUE", value, 1))
				if err == nil {
					t.Fatalf("%s %s: adapted without error", option, value)
				}
				for _, want := range []string{wantErr, fmt.Sprintf("Caddyfile:%d", line)} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s %s: error %q does not contain %q", option, value, err, want)
					}
				}
				if !strings.Contains(wantErr, "argument count") && !strings.Contains(err.Error(), option+":") {
					t.Errorf("%s %s: error %q does not name the option", option, value, err)
				}
			})
		}
	}
}

// TestSessionsBlockAndAliases sets every sessions option in the block and
// through its flat alias, and finds the same JSON.
func TestSessionsBlockAndAliases(t *testing.T) {
	block, err := adapt(global("sessions {\ntimeout 3600\nreap_interval 1m\nmax_sessions 100\nmax_sessions_per_user 10\nmax_file_size 10MiB\nmax_history_size 32MiB\nquota 1GiB\n}"))
	if err != nil {
		t.Fatal(err)
	}
	flat, err := adapt(global("session_timeout 3600\nsession_reap_interval 1m\nmax_sessions 100\nmax_sessions_per_user 10\nmax_file_size 10485760\nmax_history_size 33554432\nsession_quota 1073741824"))
	if err != nil {
		t.Fatal(err)
	}
	if block != flat {
		t.Errorf("sessions block:\n%s\nflat options:\n%s", block, flat)
	}
	if want := `"sessions":{"max_file_size":10485760,"max_history_size":33554432,"max_sessions":100,"max_sessions_per_user":10,"quota":1073741824,"reap_interval":60000000000,"timeout":3600000000000}`; !strings.Contains(block, want) {
		t.Errorf("got %s, want it to contain %s", block, want)
	}
	if _, err := adapt(global("sessions {\nsession_timeout 1h\n}")); err == nil || !strings.Contains(err.Error(), `unknown sessions option "session_timeout"`) {
		t.Errorf("a flat spelling inside the block: err = %v", err)
	}
}

// adapt adapts a Caddyfile named "Caddyfile" to compact JSON.
func adapt(body string) (string, error) {
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return "", err
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		return "", err
	}
	compact, err := json.Marshal(v)
	return string(compact), err
}

// positive lists the options that a zero would disable; they refuse it.
var positive = []string{
	"claude auth access_ttl", "claude auth refresh_ttl", "claude auth leeway", "claude auth revocation_sync",
	"claude auth find_time", "claude auth ban_time", "claude auth max_token_size", "claude auth max_retries",
	"claude auth bcrypt_cost", "claude audit retention", "claude audit buffer",
	"claude_sessions upload_timeout", "claude_workspace wait",
}

// TestPositiveOptionsRefuseZero sets each option a zero would disable to 0.
func TestPositiveOptionsRefuseZero(t *testing.T) {
	for _, name := range positive {
		found := false
		for _, opt := range options {
			if opt.name != name {
				continue
			}
			found = true
			_, err := adapt(strings.Replace(opt.caddyfile, "VALUE", "0", 1))
			if err == nil || !strings.Contains(err.Error(), "want a positive") {
				t.Errorf("%s 0: err = %v, want a refusal", name, err)
			}
		}
		if !found {
			t.Errorf("%s is not in the option table", name)
		}
	}
	out, err := adapt(global("audit {\nretention forever\n}"))
	if err != nil || !strings.Contains(out, `"retention":-1`) {
		t.Errorf("retention forever: %s, %v", out, err)
	}
}
