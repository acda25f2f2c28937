-- Failed logins per regulation key ("user:<name>", "addr:<ip>"), shared by
-- replicas, so a ban holds on every one of them.
CREATE TABLE login_failures (
	id        INTEGER      PRIMARY KEY AUTOINCREMENT,
	reg_key   VARCHAR(191) NOT NULL,
	failed_at BIGINT       NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (reg_key, failed_at);
CREATE INDEX login_failures_at ON login_failures (failed_at);
