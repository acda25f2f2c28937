package clauderatelimit

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the handler's Prometheus collectors. They are created once per
// process and registered in each config's registry, so counts carry over
// reloads.
var metrics = struct {
	once          sync.Once
	refused       *prometheus.CounterVec
	storeFailures *prometheus.CounterVec
}{}

// initMetrics creates the collectors on first use and registers them in the
// config's registry.
func initMetrics(registry *prometheus.Registry) error {
	metrics.once.Do(func() {
		metrics.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "claude_gateway",
			Subsystem: "rate_limit",
			Name:      "refused_total",
			Help:      "Requests refused by claude_rate_limit (429, or 503 from a failing fail_closed store), by zone.",
		}, []string{"zone"})
		metrics.storeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "claude_gateway",
			Subsystem: "rate_limit",
			Name:      "store_failures_total",
			Help:      "Rate limit store calls that failed, by zone.",
		}, []string{"zone"})
	})
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.refused, metrics.storeFailures} {
		if err := registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return fmt.Errorf("registering rate limit metrics: %w", err)
			}
		}
	}
	return nil
}
