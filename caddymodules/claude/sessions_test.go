package claude

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestSessionOptions parses the session options of the claude block.
func TestSessionOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block string
		want  SessionsConfig
		err   string
	}{
		{name: "seconds as the environment gives them", block: "session_timeout 3600\nmax_sessions 100\nmax_file_size 10485760",
			want: SessionsConfig{Timeout: sec(3600), MaxSessions: 100, MaxFileSize: 10485760}},
		{name: "durations and sizes", block: "session_timeout 90m\nsession_reap_interval 30s\nmax_file_size 10MiB\nsession_quota 1GB\nmax_sessions_per_user 3\nmax_history_size 4MiB",
			want: SessionsConfig{Timeout: sec(5400), ReapInterval: sec(30), MaxFileSize: 10 << 20, Quota: 1e9, MaxSessionsPerUser: 3, MaxHistorySize: 4 << 20}},
		{name: "zero keeps the default", block: "session_quota 0\nmax_sessions_per_user 0", want: SessionsConfig{}},
		{name: "negative count", block: "max_sessions -1", err: "not a non-negative integer"},
		{name: "negative seconds", block: "session_timeout -5", err: "must not be negative"},
		{name: "garbage duration", block: "session_timeout soon", err: "neither seconds nor a duration"},
		{name: "garbage size", block: "max_file_size big", err: "not a size in bytes"},
		{name: "missing argument", block: "max_sessions", err: "argument"},
		{name: "extra argument", block: "max_sessions 1 2", err: "wrong argument count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, ok := parseBlock(t, tc.block, tc.err)
			if !ok {
				return
			}
			got := SessionsConfig{}
			if app.SessionsConfig != nil {
				got = *app.SessionsConfig
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func sec(n int) caddy.Duration { return caddy.Duration(time.Duration(n) * time.Second) }
