-- The change feed: every revocation, JWT payload update and signing-key change is logged by
-- a trigger, in the transaction of the write that caused it, whatever wrote it.
-- Times are ms since the epoch on this database's clock. AUTOINCREMENT: a pruned seq is
-- never reused.
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    at INTEGER NOT NULL
);
-- end-statement
CREATE INDEX change_log_at ON change_log (at);
-- end-statement
-- A deleted session that had not expired yet was revoked; the sweep of expired rows stays
-- quiet (their access tokens have expired too).
CREATE TRIGGER change_log_revoked AFTER DELETE ON session_info
WHEN OLD.expires_at >= CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
BEGIN
    INSERT INTO change_log (kind, subject, at)
    VALUES ('revoked', OLD.session_handle, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER));
END;
-- end-statement
CREATE TRIGGER change_log_payload AFTER UPDATE OF jwt_user_payload ON session_info
WHEN OLD.jwt_user_payload IS NOT NEW.jwt_user_payload
BEGIN
    INSERT INTO change_log (kind, subject, at)
    VALUES ('payload', NEW.session_handle, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER));
END;
-- end-statement
CREATE TRIGGER change_log_key_added AFTER INSERT ON key_value
WHEN substr(NEW.name, 1, 25) = 'access_token_signing_key/'
BEGIN
    INSERT INTO change_log (kind, subject, at)
    VALUES ('key_added', NEW.name, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER));
END;
-- end-statement
CREATE TRIGGER change_log_key_updated AFTER UPDATE ON key_value
WHEN substr(NEW.name, 1, 25) = 'access_token_signing_key/'
    AND (OLD.name IS NOT NEW.name OR OLD.value IS NOT NEW.value)
BEGIN
    INSERT INTO change_log (kind, subject, at)
    VALUES ('key_updated', NEW.name, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER));
END;
-- end-statement
CREATE TRIGGER change_log_key_removed AFTER DELETE ON key_value
WHEN substr(OLD.name, 1, 25) = 'access_token_signing_key/'
BEGIN
    INSERT INTO change_log (kind, subject, at)
    VALUES ('key_removed', OLD.name, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER));
END;
-- end-statement
