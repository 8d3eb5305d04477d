-- The field API (issue 5 item 6): idempotent requests by client id, field photos stored
-- content-addressed and immutable, and commands to edges (camera re-checks) with their answers.

-- The first successful answer to each (user, client id): a phone that retries after a lost
-- response gets this answer again instead of acting twice.
CREATE TABLE client_requests (
    user_id     uuid NOT NULL REFERENCES users (id),
    client_id   uuid NOT NULL,
    -- SHA-256 of route, object and body: a reuse of the id for another request is refused.
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    status      smallint NOT NULL,
    response    jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Photo bytes by their SHA-256 (hex). The same bytes twice are one row; rows are never changed.
CREATE TABLE photos (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    size         integer NOT NULL CHECK (size > 0),
    bytes        bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    CHECK (length(bytes) = size)
);

-- Which photo was taken for which incident, by whom, where. Rows are never changed.
CREATE TABLE incident_photos (
    incident_id uuid NOT NULL REFERENCES incidents (id),
    sha256      text NOT NULL REFERENCES photos (sha256),
    uploaded_by uuid NOT NULL REFERENCES users (id),
    uploaded_at timestamptz NOT NULL,
    lat         double precision,
    lon         double precision,
    caption     text NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, sha256)
);
CREATE INDEX incident_photos_sha256 ON incident_photos (sha256);

CREATE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER photos_no_update_or_delete BEFORE UPDATE OR DELETE ON photos
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER photos_no_truncate BEFORE TRUNCATE ON photos
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER incident_photos_no_update_or_delete BEFORE UPDATE OR DELETE ON incident_photos
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER incident_photos_no_truncate BEFORE TRUNCATE ON incident_photos
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();

-- Commands sent to edges (bl/v1/edge/{edge}/cmd) and how they ended. Only re-checks so far.
CREATE TABLE commands (
    -- The cmdId of the MQTT message.
    id           uuid PRIMARY KEY,
    edge_id      text NOT NULL REFERENCES edges (id),
    camera_id    text NOT NULL REFERENCES cameras (id),
    incident_id  uuid REFERENCES incidents (id),
    action       text NOT NULL CHECK (action IN ('recheck')),
    -- The Command as published.
    payload      jsonb NOT NULL,
    requested_by uuid REFERENCES users (id),
    state        text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'passed', 'failed', 'timedOut')),
    sent_at      timestamptz NOT NULL,
    -- No answer by then: timed out.
    deadline     timestamptz NOT NULL CHECK (deadline > sent_at),
    answered_at  timestamptz,
    -- The CommandResult's outcome, or null.
    result       jsonb,
    CHECK ((state = 'pending') = (answered_at IS NULL))
);
CREATE INDEX commands_pending ON commands (deadline) WHERE state = 'pending';
CREATE INDEX commands_incident ON commands (incident_id, sent_at);
