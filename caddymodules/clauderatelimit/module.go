// Package clauderatelimit is the `claude_rate_limit` handler: named zones, each
// limiting the requests of one key (a client IP, a user id, any placeholder)
// to a rate, on github.com/ulule/limiter/v3 with a memory or SQL store.
package clauderatelimit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/ratelimit"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Store names.
const (
	storeMemory = "memory"
	storeSQL    = "sql"
	storeRedis  = "redis"
)

// Handler counts each request in every zone that applies to it and refuses
// it with 429 once a zone's budget for its key is spent. A refused request is
// answered here and goes no further down the route. Allowed responses carry
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (Unix
// seconds) of the zone with the least budget left.
type Handler struct {
	// Zones are checked in order; a request refused by one is not counted by
	// the zones after it.
	Zones []*Zone `json:"zones,omitempty"`

	// StoreTimeout bounds each store call; a store that does not answer in
	// time counts as failed. Default: 2s.
	StoreTimeout caddy.Duration `json:"store_timeout,omitempty"`

	// RedisURL is the Redis server of the zones whose store is "redis":
	// "redis://[:password@]host:port/db", or "rediss://…" for TLS.
	RedisURL string `json:"redis_url,omitempty"`

	logger   *zap.Logger
	sqlRef   string
	redisRef string
}

// Zone is one named limit. Zones are global by name: handlers that use the
// same zone name with the same rate and store share its counters, across
// config reloads too.
type Zone struct {
	// Name identifies the zone in the store, the logs and the metrics.
	Name string `json:"name"`

	// Rate is the budget of each key: "<limit>/<period>", e.g. "30/min",
	// "5/min", "1000/h", "10/2s".
	Rate string `json:"rate"`

	// Key lists placeholders; the first one that is not empty for a request
	// is its key (e.g. "{http.auth.user.id}" then "{client_ip}"). A request
	// for which every key is empty is not counted by this zone. Default: the
	// client IP, "{http.vars.client_ip}" (Caddyfile: {client_ip}).
	Key []string `json:"key,omitempty"`

	// Store is "memory" (the default; counters live in this process and
	// survive config reloads), "sql" (counters live in the claude app's
	// database: shared by replicas on MySQL, kept across restarts on SQLite;
	// see SyncInterval) or "redis" (counters live in the Redis server of the
	// handler's RedisURL, shared by replicas, one round trip per hit).
	Store string `json:"store,omitempty"`

	// SyncInterval applies to the "sql" store: each replica decides hits in
	// its own memory and, every interval, adds each active key's hits to the
	// database in one statement per key and reads back the shared total, so
	// no request waits for the database. Replicas together may let through
	// up to about replicas × interval × request rate more than the limit
	// before they all refuse a spent key, which they do within one interval.
	// "0" counts every hit in the database before answering (exact across
	// replicas, one commit per request). Default: 250ms.
	//
	// On the "redis" store, an interval above 0 does the same with Redis
	// (one pipelined call per interval, one script call per active key in
	// it, on the counters the limiter's own Redis store keeps). Default
	// there: 0, the limiter's own store, one round trip per hit.
	SyncInterval *caddy.Duration `json:"sync_interval,omitempty"`

	// OnFailure is "fail_open" (the default: requests pass unlimited while
	// the store fails) or "fail_closed" (requests are refused with 503).
	OnFailure string `json:"on_failure,omitempty"`

	// MatchRaw restricts the zone to the requests that match any of these
	// matcher sets; without it the zone applies to every request.
	MatchRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// ExemptRaw exempts the requests that match any of these matcher sets
	// (health probes, for instance).
	ExemptRaw caddyhttp.RawMatcherSets `json:"exempt,omitempty" caddy:"namespace=http.matchers"`

	match   caddyhttp.MatcherSets
	exempt  caddyhttp.MatcherSets
	zone    *ratelimit.Zone
	health  *ratelimit.StoreHealth
	poolKey string
	synced  string
}

// defaultSyncInterval is the sync interval of a "sql" zone that sets none.
const defaultSyncInterval = 250 * time.Millisecond

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_rate_limit",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision parses the zones and attaches their stores: a memory store from
// the process-wide pool, or the SQL store on the claude app's database.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.StoreTimeout == 0 {
		h.StoreTimeout = caddy.Duration(2 * time.Second)
	}
	if err := initMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	var sqlZones, redisZones bool
	for _, z := range h.Zones {
		if err := z.provision(ctx); err != nil {
			return fmt.Errorf("zone %q: %w", z.Name, err)
		}
		sqlZones = sqlZones || z.Store == storeSQL
		redisZones = redisZones || z.Store == storeRedis
	}
	if redisZones {
		if err := h.provisionRedis(ctx); err != nil {
			return err
		}
	}
	if !sqlZones {
		return nil
	}
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	sq, err := acquireSQL(app.DB(), h.logger)
	if err != nil {
		return err
	}
	h.sqlRef = app.DB().Redacted
	for _, z := range h.Zones {
		if z.Store != storeSQL {
			continue
		}
		z.zone.Store, z.health = sq.store, sq.health
		if interval := time.Duration(*z.SyncInterval); interval > 0 {
			z.synced = syncedKey(app.DB(), interval)
			if z.zone.Store, err = acquireSynced(ctx, z.synced, app.Database, sq.store, interval, time.Duration(h.StoreTimeout)); err != nil {
				return fmt.Errorf("zone %q: %w", z.Name, err)
			}
		}
	}
	app.Health().Register("rate_limit_store", false, sq.check)
	return nil
}

// provisionRedis attaches the Redis store of RedisURL to the "redis" zones
// and registers its health check.
func (h *Handler) provisionRedis(ctx caddy.Context) error {
	if h.RedisURL == "" {
		return fmt.Errorf("claude_rate_limit: a zone uses store redis, but redis_url is not set")
	}
	rs, err := acquireRedis(h.RedisURL)
	if err != nil {
		return err
	}
	h.redisRef = h.RedisURL
	for _, z := range h.Zones {
		if z.Store != storeRedis {
			continue
		}
		z.zone.Store, z.health = rs.store, rs.health
		if interval := time.Duration(*z.SyncInterval); interval > 0 {
			z.synced = syncedRedisKey(h.RedisURL, interval)
			var err error
			if z.zone.Store, err = acquireSyncedRedis(z.synced, rs.store, interval, time.Duration(h.StoreTimeout)); err != nil {
				return fmt.Errorf("zone %q: %w", z.Name, err)
			}
		}
	}
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	app.Health().Register("rate_limit_redis", false, rs.check)
	return nil
}

func (z *Zone) provision(ctx caddy.Context) error {
	rate, err := ratelimit.ParseRate(z.Rate)
	if err != nil {
		return err
	}
	if z.Store == "" {
		z.Store = storeMemory
	}
	if z.OnFailure == "" {
		z.OnFailure = string(ratelimit.FailOpen)
	}
	policy, err := ratelimit.ParsePolicy(z.OnFailure)
	if err != nil {
		return err
	}
	if len(z.Key) == 0 {
		z.Key = []string{"{http.vars.client_ip}"}
	}
	if z.SyncInterval != nil && z.Store != storeSQL && z.Store != storeRedis {
		return fmt.Errorf("sync_interval applies to store sql and store redis only")
	}
	if z.SyncInterval == nil && z.Store == storeSQL {
		d := caddy.Duration(defaultSyncInterval)
		z.SyncInterval = &d
	}
	if z.SyncInterval == nil && z.Store == storeRedis {
		z.SyncInterval = new(caddy.Duration) // 0: the limiter's own store, a round trip per hit
	}
	if z.SyncInterval != nil && *z.SyncInterval < 0 {
		return fmt.Errorf("sync_interval %s: must not be negative", time.Duration(*z.SyncInterval))
	}
	z.zone = &ratelimit.Zone{Name: z.Name, Rate: rate, Policy: policy}
	switch z.Store {
	case storeMemory:
		z.poolKey = memoryKey(z.Name, rate)
		st, err := acquireMemory(z.poolKey)
		if err != nil {
			return err
		}
		z.zone.Store = st
	case storeSQL, storeRedis:
		// attached by the handler, which owns the app lookup and the Redis URL
	default:
		return fmt.Errorf("store %q: want memory, sql or redis", z.Store)
	}
	if z.MatchRaw != nil {
		mods, err := ctx.LoadModule(z, "MatchRaw")
		if err != nil {
			return fmt.Errorf("loading match matchers: %w", err)
		}
		if err := z.match.FromInterface(mods); err != nil {
			return fmt.Errorf("match: %w", err)
		}
	}
	if z.ExemptRaw != nil {
		mods, err := ctx.LoadModule(z, "ExemptRaw")
		if err != nil {
			return fmt.Errorf("loading exempt matchers: %w", err)
		}
		if err := z.exempt.FromInterface(mods); err != nil {
			return fmt.Errorf("exempt: %w", err)
		}
	}
	return nil
}

// Validate checks that zone names are present and unique.
func (h *Handler) Validate() error {
	if len(h.Zones) == 0 {
		return fmt.Errorf("claude_rate_limit: no zone configured")
	}
	seen := map[string]bool{}
	for _, z := range h.Zones {
		if z.Name == "" {
			return fmt.Errorf("claude_rate_limit: a zone has no name")
		}
		if seen[z.Name] {
			return fmt.Errorf("claude_rate_limit: zone %q defined twice", z.Name)
		}
		seen[z.Name] = true
	}
	return nil
}

// Cleanup releases this config's hold on the pooled stores.
func (h *Handler) Cleanup() error {
	for _, z := range h.Zones {
		if z.poolKey != "" {
			releaseMemory(z.poolKey)
		}
		if z.synced != "" {
			releaseSynced(z.synced)
		}
	}
	if h.sqlRef != "" {
		releaseSQL(h.sqlRef)
	}
	if h.redisRef != "" {
		releaseRedis(h.redisRef)
	}
	return nil
}

// applies reports whether the zone counts r.
func (z *Zone) applies(r *http.Request) (bool, error) {
	if len(z.match) > 0 {
		ok, err := z.match.AnyMatchWithError(r)
		if err != nil || !ok {
			return false, err
		}
	}
	if len(z.exempt) > 0 {
		ok, err := z.exempt.AnyMatchWithError(r)
		if err != nil || ok {
			return false, err
		}
	}
	return true, nil
}

// key returns the request's key in the zone, in two parts: the index of the
// first placeholder that is not empty, as "<i>:", and its value, so that a
// user id and an IP address never share a counter. Both are empty when every
// placeholder is.
func (z *Zone) key(repl *caddy.Replacer) (tag, value string) {
	for i, k := range z.Key {
		var v string
		if name, ok := singlePlaceholder(k); ok {
			v, _ = repl.GetString(name) // the common case, without parsing k
		} else {
			v = repl.ReplaceAll(k, "")
		}
		if v != "" {
			return keyTag(i), v
		}
	}
	return "", ""
}

// keyTags are the first key tags, made once.
var keyTags = [...]string{"0:", "1:", "2:", "3:", "4:", "5:", "6:", "7:", "8:", "9:"}

// keyTag is "<i>:".
func keyTag(i int) string {
	if i < len(keyTags) {
		return keyTags[i]
	}
	return strconv.Itoa(i) + ":"
}

// singlePlaceholder reports whether s is exactly one placeholder, "{name}",
// and returns its name.
func singlePlaceholder(s string) (string, bool) {
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' || strings.ContainsAny(s[1:len(s)-1], "{}\\") {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var tightest ratelimit.Decision
	counted := false
	for _, z := range h.Zones {
		ok, err := z.applies(r)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		if !ok {
			continue
		}
		tag, value := z.key(repl)
		if value == "" {
			continue
		}
		d := h.hit(r.Context(), z, tag, value)
		if d.StoreErr != nil {
			if !d.Allowed {
				return h.refuseUnavailable(w, z)
			}
			continue
		}
		if !d.Allowed {
			return h.refuse(w, r, z, d)
		}
		if !counted || d.Remaining < tightest.Remaining {
			tightest, counted = d, true
		}
	}
	if counted {
		setLimitHeaders(w.Header(), tightest)
	}
	return next.ServeHTTP(w, r)
}

// hit counts the request in z. A SQL store's call is bounded by the store
// timeout, and the client going away does not cancel it, so that cannot pass
// for a store failure; the memory store and a synced SQL store never wait.
// A Redis store's call is bounded the same way.
func (h *Handler) hit(ctx context.Context, z *Zone, tag, value string) ratelimit.Decision {
	if z.Store == storeSQL || z.Store == storeRedis {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Duration(h.StoreTimeout))
		defer cancel()
	}
	d := z.zone.Hit(ctx, tag, value)
	if z.health != nil {
		failing, recovered := z.health.Observe(d.StoreErr)
		switch {
		case failing:
			h.logger.Error("rate limit store failing",
				zap.String("zone", z.Name), zap.String("on_failure", z.OnFailure), zap.Error(d.StoreErr))
		case recovered:
			h.logger.Info("rate limit store recovered", zap.String("zone", z.Name))
		}
	}
	if d.StoreErr != nil {
		metrics.storeFailures.WithLabelValues(z.Name).Inc()
	}
	return d
}

// setLimitHeaders announces d, unless an earlier handler on the route
// already announced a zone with less budget left.
func setLimitHeaders(hdr http.Header, d ratelimit.Decision) {
	if prev := hdr[hdrRemaining]; len(prev) == 1 {
		if n, err := strconv.ParseInt(prev[0], 10, 64); err == nil && n < d.Remaining {
			return
		}
	}
	// The three numbers in one string, one backing array for the three
	// values, and keys already in canonical form, which skip Header.Set's
	// canonicalization.
	var buf [3 * 20]byte
	b := strconv.AppendInt(buf[:0], d.Limit, 10)
	i := len(b)
	b = strconv.AppendInt(b, d.Remaining, 10)
	j := len(b)
	b = strconv.AppendInt(b, d.Reset.Unix(), 10)
	s := string(b)
	v := [3]string{s[:i], s[i:j], s[j:]}
	hdr[hdrLimit] = v[0:1:1]
	hdr[hdrRemaining] = v[1:2:2]
	hdr[hdrReset] = v[2:3:3]
}

// The limit headers, in Go's canonical form of X-RateLimit-Limit etc.
const (
	hdrLimit     = "X-Ratelimit-Limit"
	hdrRemaining = "X-Ratelimit-Remaining"
	hdrReset     = "X-Ratelimit-Reset"
)

// refuse sets the limit headers and returns 429 rate_limited for a spent budget.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, z *Zone, d ratelimit.Decision) error {
	metrics.refused.WithLabelValues(z.Name).Inc()
	retry := d.RetryAfter(time.Now())
	hdr := w.Header()
	hdr.Set("X-RateLimit-Limit", strconv.FormatInt(d.Limit, 10))
	hdr.Set("X-RateLimit-Remaining", "0")
	hdr.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
	hdr.Set("Retry-After", strconv.FormatInt(retry, 10))
	h.logger.Debug("request refused", zap.String("zone", z.Name), zap.String("path", r.URL.Path))
	return claudeerror.Error(apierror.RateLimited.Err())
}

// refuseUnavailable returns 503 rate_limit_unavailable when a fail_closed
// zone's store fails.
func (h *Handler) refuseUnavailable(w http.ResponseWriter, z *Zone) error {
	metrics.refused.WithLabelValues(z.Name).Inc()
	w.Header().Set("Retry-After", "5")
	return claudeerror.Error(apierror.RateLimitUnavailable.Err())
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
