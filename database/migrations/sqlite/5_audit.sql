-- The audit trail: one row per security-relevant event (sign-ins, bans,
-- account and session changes, runs, admin actions). No secret is ever stored:
-- the details are a small JSON object of names and numbers.
CREATE TABLE audit_events (
	id         INTEGER      PRIMARY KEY AUTOINCREMENT,
	at         BIGINT       NOT NULL,
	kind       VARCHAR(64)  NOT NULL,
	actor      VARCHAR(191) NOT NULL,
	actor_id   VARCHAR(64)  NOT NULL,
	subject    VARCHAR(191) NOT NULL,
	client_ip  VARCHAR(64)  NOT NULL,
	outcome    VARCHAR(191) NOT NULL,
	details    TEXT         NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
