-- Certificate storage of `caddy.storage.mysql` (certmagic.Storage): one row per
-- key. Keys may be of any length, so the primary key is the SHA-256 of the key
-- (hex) and the key itself is kept whole; its leading bytes are indexed for the
-- prefix scans of List, Exists, Stat and Delete. Keys are binary, so prefix
-- ranges compare byte by byte.
CREATE TABLE cert_storage (
	key_hash CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
	storage_key BLOB NOT NULL,
	value LONGBLOB NOT NULL,
	modified_at BIGINT NOT NULL,
	KEY cert_storage_key (storage_key(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Lease locks of the same storage: one row per lock name, taken by a single
-- conditional write when absent or expired. expires_at is set from the
-- database clock; 0 means released. fence grows by one on every acquisition.
CREATE TABLE cert_locks (
	name_hash CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
	name BLOB NOT NULL,
	owner VARCHAR(191) NOT NULL,
	token CHAR(32) CHARACTER SET ascii NOT NULL,
	fence BIGINT NOT NULL,
	acquired_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
