-- Accounts, refresh tokens (rotated within families) and the token revocation list.
CREATE TABLE users (
	id            VARCHAR(64)  NOT NULL PRIMARY KEY,
	username      VARCHAR(64)  NOT NULL,
	password_hash VARCHAR(255) NOT NULL,
	role          VARCHAR(16)  NOT NULL,
	disabled      TINYINT      NOT NULL DEFAULT 0,
	created_at    BIGINT       NOT NULL,
	updated_at    BIGINT       NOT NULL,
	UNIQUE KEY users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE refresh_tokens (
	token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
	family_id  VARCHAR(64) NOT NULL,
	user_id    VARCHAR(64) NOT NULL,
	created_at BIGINT      NOT NULL,
	expires_at BIGINT      NOT NULL,
	used_at    BIGINT      NULL,
	revoked_at BIGINT      NULL,
	KEY refresh_tokens_family (family_id),
	KEY refresh_tokens_user (user_id),
	KEY refresh_tokens_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE token_revocations (
	id         VARCHAR(191) NOT NULL PRIMARY KEY,
	revoked_at BIGINT       NOT NULL,
	expires_at BIGINT       NOT NULL,
	KEY token_revocations_revoked (revoked_at),
	KEY token_revocations_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
