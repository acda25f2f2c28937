// Package integration holds the end-to-end tests of the gateway's edge: the
// real binary on Caddyfile.dev in front of real HTTP and WebSocket upstreams,
// and a benchmark of Caddyfile.dev's app route in process (BenchmarkAppRoute).
package integration
