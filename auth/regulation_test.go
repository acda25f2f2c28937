package auth

import (
	"context"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// regulators returns a fresh store of each kind: memory, and SQL on SQLite and MariaDB.
func regulators(t *testing.T, p RegulationPolicy) map[string]RegulationStore {
	out := map[string]RegulationStore{"memory": NewMemoryRegulator(p)}
	for name, setting := range testenv.Databases(t) {
		out["sql-"+name] = NewSQLRegulator(testenv.OpenDB(t, setting), p)
	}
	return out
}

func TestRegulator(t *testing.T) {
	p := RegulationPolicy{MaxRetries: 3, FindTime: time.Minute, BanTime: 5 * time.Minute}
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		at     time.Duration // after t0
		fail   []string
		reset  string
		check  []string
		banned time.Duration // expected ban left at `at`
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"below the limit", []step{
			{at: 0, fail: []string{"u"}}, {at: time.Second, fail: []string{"u"}},
			{at: 2 * time.Second, check: []string{"u"}, banned: 0},
		}},
		{"limit reached bans for ban time", []step{
			{at: 0, fail: []string{"u"}}, {at: time.Second, fail: []string{"u"}}, {at: 2 * time.Second, fail: []string{"u"}},
			{at: 3 * time.Second, check: []string{"u"}, banned: 5*time.Minute - time.Second},
			{at: 2*time.Second + 5*time.Minute, check: []string{"u"}, banned: 0},
		}},
		{"failures outside the window do not count", []step{
			{at: 0, fail: []string{"u"}}, {at: time.Second, fail: []string{"u"}},
			{at: 2 * time.Minute, fail: []string{"u"}},
			{at: 2*time.Minute + time.Second, check: []string{"u"}, banned: 0},
		}},
		{"an address banned bans whatever username it tries", []step{
			{at: 0, fail: []string{"user:a", "addr:x"}}, {at: 0, fail: []string{"user:b", "addr:x"}}, {at: 0, fail: []string{"user:c", "addr:x"}},
			{at: time.Second, check: []string{"user:d", "addr:x"}, banned: 5*time.Minute - time.Second},
			{at: time.Second, check: []string{"user:a", "addr:y"}, banned: 0},
		}},
		{"a success resets the username's count", []step{
			{at: 0, fail: []string{"u"}}, {at: 0, fail: []string{"u"}}, {at: 0, reset: "u"},
			{at: 0, fail: []string{"u"}}, {at: time.Second, check: []string{"u"}, banned: 0},
		}},
		{"a reset does not lift a ban", []step{
			{at: 0, fail: []string{"u"}}, {at: 0, fail: []string{"u"}}, {at: 0, fail: []string{"u"}}, {at: 0, reset: "u"},
			{at: time.Second, check: []string{"u"}, banned: 5*time.Minute - time.Second},
		}},
	}
	ctx := context.Background()
	for kind, r := range regulators(t, p) {
		for i, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				// Each case gets its own keys, so cases sharing a store do not meet.
				k := func(key string) string { return tc.name + "|" + key + "|" + string(rune('a'+i)) }
				ks := func(keys []string) []string {
					out := make([]string, len(keys))
					for j, key := range keys {
						out[j] = k(key)
					}
					return out
				}
				for i, s := range tc.steps {
					now := t0.Add(s.at)
					switch {
					case s.fail != nil:
						if err := r.Fail(ctx, now, ks(s.fail)...); err != nil {
							t.Fatal(err)
						}
					case s.reset != "":
						if err := r.Reset(ctx, now, k(s.reset)); err != nil {
							t.Fatal(err)
						}
					default:
						got, err := r.Banned(ctx, now, ks(s.check)...)
						if err != nil {
							t.Fatal(err)
						}
						if got != s.banned {
							t.Fatalf("step %d: banned %s, want %s", i, got, s.banned)
						}
					}
				}
			})
		}
	}
}

func TestRegulatorPrune(t *testing.T) {
	r := NewMemoryRegulator(RegulationPolicy{MaxRetries: 2, FindTime: time.Minute, BanTime: time.Minute})
	t0 := time.Unix(1_000_000, 0)
	ctx := context.Background()
	r.Fail(ctx, t0, "old")
	r.Fail(ctx, t0, "banned", "banned")
	r.Prune(t0.Add(2 * time.Minute))
	if len(r.entries) != 0 {
		t.Fatalf("%d entries left after prune, want 0", len(r.entries))
	}
}

func TestSQLRegulatorDeleteExpired(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := NewSQLRegulator(testenv.OpenDB(t, setting), RegulationPolicy{MaxRetries: 2, FindTime: time.Minute, BanTime: time.Minute})
			t0 := time.Unix(1_000_000, 0)
			r.Fail(ctx, t0, "a", "b")
			r.Fail(ctx, t0.Add(90*time.Second), "a")
			n, err := r.DeleteExpired(ctx, t0.Add(2*time.Minute+time.Second))
			if err != nil || n != 2 {
				t.Fatalf("deleted %d, %v; want the 2 failures older than find+ban time", n, err)
			}
			if d, _ := r.Banned(ctx, t0.Add(100*time.Second), "a"); d != 0 {
				t.Fatalf("banned by a single remaining failure: %s", d)
			}
		})
	}
}
