-- Certificate storage of `caddy.storage.mysql` (certmagic.Storage): one row per
-- key. Keys may be of any length, so the primary key is the SHA-256 of the key
-- (hex) and the key itself is kept whole and indexed for the prefix scans of
-- List, Exists, Stat and Delete (TEXT compares byte by byte in SQLite).
CREATE TABLE cert_storage (
	key_hash TEXT NOT NULL PRIMARY KEY,
	storage_key TEXT NOT NULL,
	value BLOB NOT NULL,
	modified_at BIGINT NOT NULL
);
CREATE INDEX cert_storage_key ON cert_storage (storage_key);

-- Lease locks of the same storage: one row per lock name, taken by a single
-- conditional write when absent or expired. expires_at is set from the
-- database clock; 0 means released. fence grows by one on every acquisition.
CREATE TABLE cert_locks (
	name_hash TEXT NOT NULL PRIMARY KEY,
	name TEXT NOT NULL,
	owner TEXT NOT NULL,
	token TEXT NOT NULL,
	fence BIGINT NOT NULL,
	acquired_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
