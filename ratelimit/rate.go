// Package ratelimit holds the domain side of the gateway's rate limiting: rate
// strings ("30/min"), a limiter.Store of github.com/ulule/limiter/v3 on the
// gateway's SQL database, and the policy applied when a store fails.
package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ulule/limiter/v3"
)

// units maps the period words a rate may use to their length.
var units = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute,
	"h": time.Hour, "hour": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour,
}

// maxLimit is the largest limit of a rate; the SQL store counts in 32 bits.
const maxLimit = 1<<31 - 1

// ParseRate reads a rate written "<limit>/<period>": the period is a unit
// ("s", "min", "h", "d" and their long forms) or a Go duration ("2s", "90s").
// Examples: "30/min", "5/min", "1000/h", "10/2s". The period must be at least
// one second, since the reset time is announced in whole seconds.
func ParseRate(s string) (limiter.Rate, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return limiter.Rate{}, fmt.Errorf("rate %q: want <limit>/<period>, e.g. 30/min", s)
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || limit <= 0 || limit > maxLimit {
		return limiter.Rate{}, fmt.Errorf("rate %q: the limit must be a whole number from 1 to %d", s, maxLimit)
	}
	per = strings.ToLower(strings.TrimSpace(per))
	period, ok := units[per]
	if !ok {
		period, err = time.ParseDuration(per)
		if err != nil {
			return limiter.Rate{}, fmt.Errorf("rate %q: unknown period %q (want s, min, h, d or a duration like 2s)", s, per)
		}
	}
	if period < time.Second {
		return limiter.Rate{}, fmt.Errorf("rate %q: the period must be at least 1s", s)
	}
	return limiter.Rate{Formatted: fmt.Sprintf("%d/%s", limit, period), Period: period, Limit: limit}, nil
}
