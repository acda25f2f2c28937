-- The audit trail: one row per security-relevant event (sign-ins, bans,
-- account and session changes, runs, admin actions). No secret is ever stored:
-- the details are a small JSON object of names and numbers.
CREATE TABLE audit_events (
	id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
	at         BIGINT       NOT NULL,
	kind       VARCHAR(64)  NOT NULL,
	actor      VARCHAR(191) NOT NULL,
	actor_id   VARCHAR(64)  NOT NULL,
	subject    VARCHAR(191) NOT NULL,
	client_ip  VARCHAR(64)  NOT NULL,
	outcome    VARCHAR(191) NOT NULL,
	details    TEXT         NOT NULL,
	KEY audit_events_at (at),
	KEY audit_events_kind (kind, id),
	KEY audit_events_actor (actor, id),
	KEY audit_events_subject (subject, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
