-- Failed logins per regulation key ("user:<name>", "addr:<ip>"), shared by
-- replicas, so a ban holds on every one of them.
CREATE TABLE login_failures (
	id        BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
	reg_key   VARCHAR(191) NOT NULL,
	failed_at BIGINT       NOT NULL,
	KEY login_failures_key (reg_key, failed_at),
	KEY login_failures_at (failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
