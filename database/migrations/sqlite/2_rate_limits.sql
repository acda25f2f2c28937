-- Rate limit counters of the `sql` store of claude_rate_limit: one row per
-- zone, rate and key, holding the hits of the current fixed window.
CREATE TABLE rate_limit_counters (
	id VARCHAR(191) NOT NULL PRIMARY KEY,
	hits BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX rate_limit_counters_expires_at ON rate_limit_counters (expires_at);
