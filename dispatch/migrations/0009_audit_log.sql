-- The audit log (DESIGN.md §6): every view, export, talk, login and state change, one row each,
-- hash-chained. `hash` is SHA-256 over the canonical encoding of the row's fields and `prev_hash`
-- (dispatch/src/audit/chain.rs documents it), so changing, inserting or removing a row breaks the
-- chain at that row; `dispatch audit-verify` walks it. Appends are serialised with a
-- transaction-scoped advisory lock and take `seq` = previous + 1, so the chain stays linear with any
-- number of dispatch replicas and a gap means a removed row. Rows are never changed or removed.

CREATE TABLE audit_log (
    -- 1, 2, 3, … without gaps (not a sequence: a rolled-back append must not leave a hole).
    seq         bigint PRIMARY KEY CHECK (seq >= 1),
    -- Microsecond precision, as hashed.
    at          timestamptz NOT NULL,
    -- user: a logged-in user; service: a gateway or edge (`gateway:<node>`, `edge:<id>`);
    -- anonymous: a login attempt (actor_name is the name tried); system: dispatch itself.
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'service', 'anonymous', 'system')),
    actor_id    uuid,
    actor_name  text NOT NULL,
    -- The user's role at the time.
    actor_role  text,
    -- The client's IP address as dispatch saw it.
    client_addr text,
    -- session.login, incident.transition, camera.live, … (dispatch/src/audit/mod.rs, `Action`).
    action      text NOT NULL,
    object_type text,
    object_id   text,
    -- The town the object belongs to; scopes what a town's auditor sees.
    town_id     text,
    -- Strings, integers, booleans, arrays and objects only (no fractions), so that the stored
    -- value encodes exactly as it was hashed.
    details     jsonb NOT NULL,
    -- Lowercase hex; the first row's prev_hash is 64 zeros.
    prev_hash   text NOT NULL UNIQUE CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_name, seq);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
