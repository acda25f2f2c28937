package health

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	fail := func(context.Context) error { return errors.New("boom") }
	ok := func(context.Context) error { return nil }
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name       string
		checks     map[string]Check
		critical   map[string]bool
		wantStatus string
		wantReady  bool
	}{
		{"empty", nil, nil, StatusHealthy, true},
		{"all healthy", map[string]Check{"database": ok, "docker": ok}, map[string]bool{"database": true}, StatusHealthy, true},
		{"optional down", map[string]Check{"database": ok, "docker": fail}, map[string]bool{"database": true}, StatusDegraded, true},
		{"critical down", map[string]Check{"database": fail, "docker": ok}, map[string]bool{"database": true}, StatusDegraded, false},
		{"critical times out", map[string]Check{"database": slow}, map[string]bool{"database": true}, StatusDegraded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			for n, c := range tt.checks {
				r.Register(n, tt.critical[n], c)
			}
			start := time.Now()
			rep := r.Run(context.Background(), 50*time.Millisecond)
			if time.Since(start) > 2*time.Second {
				t.Fatalf("Run ignored its timeout")
			}
			if rep.Status != tt.wantStatus || rep.Ready() != tt.wantReady {
				t.Fatalf("got status %q ready %v, want %q %v (%+v)", rep.Status, rep.Ready(), tt.wantStatus, tt.wantReady, rep)
			}
			if len(rep.Services) != len(tt.checks) {
				t.Fatalf("got %d services, want %d", len(rep.Services), len(tt.checks))
			}
			for n, s := range rep.Services {
				if (s.Status == StatusHealthy) != (s.Error == "") {
					t.Fatalf("%s: status %q with error %q", n, s.Status, s.Error)
				}
			}
		})
	}
}

func TestUnregister(t *testing.T) {
	r := NewRegistry()
	r.Register("docker", false, func(context.Context) error { return errors.New("down") })
	r.Unregister("docker")
	if rep := r.Run(context.Background(), time.Second); rep.Status != StatusHealthy || len(rep.Services) != 0 {
		t.Fatalf("unregistered check still runs: %+v", rep)
	}
}
