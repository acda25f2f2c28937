package ratelimit

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in     string
		limit  int64
		period time.Duration
		bad    bool
	}{
		{in: "30/min", limit: 30, period: time.Minute},
		{in: "5/m", limit: 5, period: time.Minute},
		{in: "1000/h", limit: 1000, period: time.Hour},
		{in: "1000/hour", limit: 1000, period: time.Hour},
		{in: "10/s", limit: 10, period: time.Second},
		{in: "10/2s", limit: 10, period: 2 * time.Second},
		{in: "100000/d", limit: 100000, period: 24 * time.Hour},
		{in: " 7 / MIN ", limit: 7, period: time.Minute},
		{in: "30", bad: true},
		{in: "30/", bad: true},
		{in: "/min", bad: true},
		{in: "0/min", bad: true},
		{in: "-1/min", bad: true},
		{in: "x/min", bad: true},
		{in: "30/fortnight", bad: true},
		{in: "30/500ms", bad: true},
		{in: "30-M", bad: true},
		{in: "2147483647/h", limit: 2147483647, period: time.Hour},
		{in: "2147483648/h", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRate(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseRate(%q) = %+v, want an error", tt.in, r)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRate(%q): %v", tt.in, err)
			}
			if r.Limit != tt.limit || r.Period != tt.period {
				t.Fatalf("ParseRate(%q) = %d per %s, want %d per %s", tt.in, r.Limit, r.Period, tt.limit, tt.period)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]FailurePolicy{"fail_open": FailOpen, "fail_closed": FailClosed} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "open", "FAIL_OPEN"} {
		if _, err := ParsePolicy(in); err == nil {
			t.Errorf("ParsePolicy(%q): want an error", in)
		}
	}
}
