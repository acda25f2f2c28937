package auth

import (
	"testing"
	"time"
)

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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegulator(p)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch {
				case s.fail != nil:
					r.Fail(now, s.fail...)
				case s.reset != "":
					r.Reset(s.reset)
				default:
					if got := r.Banned(now, s.check...); got != s.banned {
						t.Fatalf("step %d: banned %s, want %s", i, got, s.banned)
					}
				}
			}
		})
	}
}

func TestRegulatorPrune(t *testing.T) {
	r := NewRegulator(RegulationPolicy{MaxRetries: 2, FindTime: time.Minute, BanTime: time.Minute})
	t0 := time.Unix(1_000_000, 0)
	r.Fail(t0, "old")
	r.Fail(t0, "banned", "banned")
	r.Prune(t0.Add(2 * time.Minute))
	if len(r.entries) != 0 {
		t.Fatalf("%d entries left after prune, want 0", len(r.entries))
	}
}
