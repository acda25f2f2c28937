-- Sessions: one row per workspace directory <workspace>/sessions/<id>/.
-- ready is 0 while the workspace is being built (the row reserves a slot
-- under the caps) and 1 once the directory is in place.
CREATE TABLE sessions (
	id             VARCHAR(64)  NOT NULL PRIMARY KEY,
	user_id        VARCHAR(191) NOT NULL,
	ready          SMALLINT     NOT NULL DEFAULT 0,
	created_at     BIGINT       NOT NULL,
	last_active_at BIGINT       NOT NULL,
	KEY sessions_user (user_id),
	KEY sessions_last_active (last_active_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Creates take the row 'create' (UPDATE) before counting, so the caps are
-- decided one transaction at a time on every replica.
CREATE TABLE session_locks (
	name       VARCHAR(64) NOT NULL PRIMARY KEY,
	updated_at BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO session_locks (name, updated_at) VALUES ('create', 0);
