-- The change feed: every revocation, JWT payload update and signing-key change is logged by
-- a trigger, in the transaction of the write that caused it, whatever wrote it, and
-- announced on the channel sessionward_changes (payload: the schema's name) at commit.
-- Times are ms since the epoch on the server's clock.
CREATE TABLE change_log (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    at BIGINT NOT NULL
);
-- end-statement
CREATE INDEX change_log_at ON change_log (at);
-- end-statement
-- One writer of the log per schema at a time, until its commit: seq values become visible
-- in their order, so a reader that sees seq n has seen every committed seq below n.
-- The search_path is pinned to this schema, whoever fires the trigger.
CREATE FUNCTION sessionward_log_change(change_kind TEXT, change_subject TEXT) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sessionward.changes:' || current_schema()));
    INSERT INTO change_log (kind, subject, at)
    VALUES (change_kind, change_subject, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    -- Identical notifications of one transaction are folded into one.
    PERFORM pg_notify('sessionward_changes', current_schema());
END
$$;
-- end-statement
-- A deleted session that had not expired yet was revoked; the sweep of expired rows stays
-- quiet (their access tokens have expired too).
CREATE FUNCTION sessionward_session_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.expires_at >= (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
        PERFORM sessionward_log_change('revoked', OLD.session_handle);
    END IF;
    RETURN NULL;
END
$$;
-- end-statement
CREATE TRIGGER change_log_revoked AFTER DELETE ON session_info
FOR EACH ROW EXECUTE FUNCTION sessionward_session_deleted();
-- end-statement
CREATE FUNCTION sessionward_payload_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM sessionward_log_change('payload', NEW.session_handle);
    RETURN NULL;
END
$$;
-- end-statement
CREATE TRIGGER change_log_payload AFTER UPDATE OF jwt_user_payload ON session_info
FOR EACH ROW WHEN (OLD.jwt_user_payload::text IS DISTINCT FROM NEW.jwt_user_payload::text)
EXECUTE FUNCTION sessionward_payload_updated();
-- end-statement
CREATE FUNCTION sessionward_key_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sessionward_log_change('key_added', NEW.name);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM sessionward_log_change('key_updated', NEW.name);
    ELSE
        PERFORM sessionward_log_change('key_removed', OLD.name);
    END IF;
    RETURN NULL;
END
$$;
-- end-statement
CREATE TRIGGER change_log_key_added AFTER INSERT ON key_value
FOR EACH ROW WHEN (starts_with(NEW.name, 'access_token_signing_key/'))
EXECUTE FUNCTION sessionward_key_changed();
-- end-statement
CREATE TRIGGER change_log_key_updated AFTER UPDATE ON key_value
FOR EACH ROW WHEN (starts_with(NEW.name, 'access_token_signing_key/')
    AND (OLD.name, OLD.value) IS DISTINCT FROM (NEW.name, NEW.value))
EXECUTE FUNCTION sessionward_key_changed();
-- end-statement
CREATE TRIGGER change_log_key_removed AFTER DELETE ON key_value
FOR EACH ROW WHEN (starts_with(OLD.name, 'access_token_signing_key/'))
EXECUTE FUNCTION sessionward_key_changed();
-- end-statement
