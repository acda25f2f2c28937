// Package caddyfileopt reads the values of our modules' Caddyfile options, so
// that every option of a kind is written alike: every duration accepts
// Caddy's duration syntax (250ms, 15m, 1h, 2d) and a bare integer meaning
// seconds, every size accepts bytes and units (10MiB, 1GB), every count a
// non-negative integer. Each function reads exactly one argument after the
// option's name, which is the dispenser's current token, and answers a
// parse error naming the file, the line and the option.
package caddyfileopt

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// maxSize is the largest size accepted, far above any limit we set and
// safely inside int64.
const maxSize = 1 << 62

// arg reads the option's one argument.
func arg(d *caddyfile.Dispenser) (string, error) {
	var s string
	if !d.AllArgs(&s) {
		return "", d.ArgErr()
	}
	return s, nil
}

// Duration reads the option's one argument as a duration into dst: a bare
// integer is seconds (as the SESSION_TIMEOUT environment variable is),
// anything else Caddy's duration syntax. Negative durations are refused.
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	s, err := arg(d)
	if err != nil {
		return err
	}
	dur, err := ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// PositiveDuration is Duration for an option that a zero would disable: it
// refuses zero too.
func PositiveDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	if err := Duration(d, dst); err != nil {
		return err
	}
	if *dst == 0 {
		return d.Errf("%s: want a positive duration, got 0", name)
	}
	return nil
}

// ParseDuration parses a duration as Duration does: a bare non-negative
// integer is seconds, anything else Caddy's duration syntax; it refuses
// negative durations.
func ParseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q must not be negative", s)
		}
		if n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, &valueError{s, "a number of seconds that fits a duration"}
		}
		return time.Duration(n) * time.Second, nil
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither seconds nor a duration such as 90s, 15m or 1h", s)
	}
	if dur < 0 {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	return dur, nil
}

// Size reads the option's one argument as a size in bytes into dst: bytes,
// or a number with a unit such as 10MiB or 1GB.
func Size(d *caddyfile.Dispenser, dst *int64) error {
	name := d.Val()
	s, err := arg(d)
	if err != nil {
		return err
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n > maxSize {
		return d.Errf("%s: %v", name, &valueError{s, "a size in bytes (a number, or with a unit such as 10MiB or 1GB)"})
	}
	*dst = int64(n)
	return nil
}

// Count reads the option's one argument as a non-negative integer into dst.
func Count(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	s, err := arg(d)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return d.Errf("%s: %v", name, &valueError{s, "a non-negative integer"})
	}
	*dst = n
	return nil
}

// PositiveCount is Count for an option that a zero would disable: it
// refuses zero too.
func PositiveCount(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if err := Count(d, dst); err != nil {
		return err
	}
	if *dst == 0 {
		return d.Errf("%s: want a positive number, got 0", name)
	}
	return nil
}

// Number reads the option's one argument as a positive decimal number
// (such as a CPU share, 0.5) into dst.
func Number(d *caddyfile.Dispenser, dst *float64) error {
	name := d.Val()
	s, err := arg(d)
	if err != nil {
		return err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) {
		return d.Errf("%s: %v", name, &valueError{s, "a positive number"})
	}
	*dst = f
	return nil
}

// valueError says what a value should have been.
type valueError struct {
	value, want string
}

func (e *valueError) Error() string { return strconv.Quote(e.value) + " is not " + e.want }
