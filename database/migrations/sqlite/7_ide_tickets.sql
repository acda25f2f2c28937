-- One-time tickets that hand a signed-in browser session from the app host to
-- the IDE host. Only a SHA-256 of each ticket is stored.
CREATE TABLE ide_tickets (
	ticket_hash VARCHAR(64)   NOT NULL PRIMARY KEY,
	audience    VARCHAR(191)  NOT NULL,
	user_id     VARCHAR(64)   NOT NULL,
	username    VARCHAR(64)   NOT NULL,
	role        VARCHAR(16)   NOT NULL,
	session_id  VARCHAR(64)   NOT NULL,
	next_path   VARCHAR(2048) NOT NULL,
	created_at  BIGINT        NOT NULL,
	expires_at  BIGINT        NOT NULL,
	used_at     BIGINT        NULL
);
CREATE INDEX ide_tickets_expires ON ide_tickets (expires_at);
