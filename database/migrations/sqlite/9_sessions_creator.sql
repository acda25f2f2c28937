-- The gateway process that is building a session (its instance id), so the
-- repair pass can tell a create in flight from one whose process died.
ALTER TABLE sessions ADD COLUMN creator VARCHAR(64) NOT NULL DEFAULT '';
