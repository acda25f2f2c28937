package ratelimit

import (
	"context"
	"testing"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

// TestMemoryStoreCountsAsUlule: the same hits, peeks and resets on
// MemoryStore and on ulule's memory store give the same states, keys kept
// apart; and a hit of a counted key allocates nothing.
func TestMemoryStoreCountsAsUlule(t *testing.T) {
	ctx := context.Background()
	rate, err := ParseRate("3/min")
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := NewMemoryStore(0), memory.NewStore()
	type op struct {
		name, key string
		do        func(limiter.Store, string) (limiter.Context, error)
	}
	get := func(s limiter.Store, k string) (limiter.Context, error) { return s.Get(ctx, k, rate) }
	peek := func(s limiter.Store, k string) (limiter.Context, error) { return s.Peek(ctx, k, rate) }
	reset := func(s limiter.Store, k string) (limiter.Context, error) { return s.Reset(ctx, k, rate) }
	add2 := func(s limiter.Store, k string) (limiter.Context, error) { return s.Increment(ctx, k, 2, rate) }
	ops := []op{
		{"peek unknown", "a", peek}, {"hit", "a", get}, {"hit", "a", get}, {"other key", "b", get},
		{"hit", "a", get}, {"hit over", "a", get}, {"peek", "a", peek}, {"add 2", "b", add2},
		{"hit over", "b", get}, {"reset", "a", reset}, {"hit after reset", "a", get},
	}
	for i, o := range ops {
		got, err1 := o.do(ours, o.key)
		want, err2 := o.do(theirs, o.key)
		if err1 != nil || err2 != nil {
			t.Fatalf("%d %s: %v, %v", i, o.name, err1, err2)
		}
		// Reset is the end of the window, in seconds: the two calls may
		// straddle a second.
		if d := got.Reset - want.Reset; d < -1 || d > 1 {
			t.Errorf("%d %s %s: reset %d, ulule %d", i, o.name, o.key, got.Reset, want.Reset)
		}
		got.Reset, want.Reset = 0, 0
		if got != want {
			t.Errorf("%d %s %s: %+v, ulule %+v", i, o.name, o.key, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ours.Get(ctx, "a", rate) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}

// A key given in parts is counted under the same store key as the whole
// key: "<zone>|<rate>|<key>", as counters already in a shared store are.
func TestZoneKeyParts(t *testing.T) {
	rate, err := ParseRate("30/min")
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryStore(0)
	z := &Zone{Name: "api", Rate: rate, Store: store}
	z.Hit(context.Background(), "0:", "alice")
	z.Hit(context.Background(), "0:alice")
	c, err := store.Peek(context.Background(), "api|"+rate.Formatted+"|0:alice", rate)
	if err != nil || c.Remaining != 28 {
		t.Errorf("the two hits under the whole key: %+v, %v; want 28 remaining", c, err)
	}
	if got := z.storeKey([]string{"1:", "192.0.2.7"}); got != "api|30/1m0s|1:192.0.2.7" {
		t.Errorf("store key %q", got)
	}
}
