-- Accounts, refresh tokens (rotated within families) and the token revocation list.
CREATE TABLE users (
	id            VARCHAR(64)  NOT NULL PRIMARY KEY,
	username      VARCHAR(64)  NOT NULL UNIQUE,
	password_hash VARCHAR(255) NOT NULL,
	role          VARCHAR(16)  NOT NULL,
	disabled      INTEGER      NOT NULL DEFAULT 0,
	created_at    BIGINT       NOT NULL,
	updated_at    BIGINT       NOT NULL
);

CREATE TABLE refresh_tokens (
	token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
	family_id  VARCHAR(64) NOT NULL,
	user_id    VARCHAR(64) NOT NULL,
	created_at BIGINT      NOT NULL,
	expires_at BIGINT      NOT NULL,
	used_at    BIGINT      NULL,
	revoked_at BIGINT      NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE token_revocations (
	id         VARCHAR(191) NOT NULL PRIMARY KEY,
	revoked_at BIGINT       NOT NULL,
	expires_at BIGINT       NOT NULL
);
CREATE INDEX token_revocations_revoked ON token_revocations (revoked_at);
CREATE INDEX token_revocations_expires ON token_revocations (expires_at);
