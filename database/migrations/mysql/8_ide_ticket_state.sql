-- Binds each IDE ticket to the browser that started the sign-on: the SHA-256
-- (base64url) of the nonce in that browser's IDE-host cookie. Rows of before
-- keep '' and are never redeemed.
ALTER TABLE ide_tickets ADD COLUMN state_hash VARCHAR(64) NOT NULL DEFAULT '';
