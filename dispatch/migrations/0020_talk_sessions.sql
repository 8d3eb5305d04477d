-- Talk-down floor control (issue 7, DESIGN.md §3.3): one talker per camera at a time.

-- Where a camera's talk audio is played: its ONVIF RTSP backchannel (G.711), or, for a camera
-- without one, a speaker on its edge box. Read only when `talk` is true.
ALTER TABLE cameras ADD COLUMN talk_output text NOT NULL DEFAULT 'backchannel'
    CHECK (talk_output IN ('backchannel', 'speaker'));

-- One row per holding of a camera's floor. The partial unique index is the floor: two replicas
-- granting at once cannot both insert an open row for the same camera.
CREATE TABLE talk_sessions (
    id             bigserial PRIMARY KEY,
    camera_id      text NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username       text NOT NULL,
    display_name   text NOT NULL,
    -- The login session that talks: its end (logout, sweep, a disabled user) ends the talk.
    login_session  bytea NOT NULL,
    incident_id    uuid REFERENCES incidents (id),
    started_at     timestamptz NOT NULL,
    -- A holder renews by asking for a grant again; past this the floor is free ('timeout').
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    end_reason     text CHECK (end_reason IN ('released', 'timeout', 'logout', 'takeover')),
    ended_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE UNIQUE INDEX talk_sessions_one_talker ON talk_sessions (camera_id) WHERE ended_at IS NULL;
CREATE INDEX talk_sessions_login ON talk_sessions (login_session) WHERE ended_at IS NULL;

CREATE FUNCTION bl_end_talk_of_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE talk_sessions SET ended_at = now(), end_reason = 'logout'
     WHERE login_session = OLD.id_hash AND ended_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_end_talk AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION bl_end_talk_of_session();

-- Consoles learn who holds a camera's floor, and a holder that it was taken or timed out.
CREATE FUNCTION bl_notify_talk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'talk',
        'id', NEW.id,
        'cameraId', NEW.camera_id,
        'townId', (SELECT p.town_id FROM cameras c JOIN premises p ON p.id = c.premises_id
                    WHERE c.id = NEW.camera_id),
        'userId', NEW.user_id,
        'username', NEW.username,
        'displayName', NEW.display_name,
        'startedAt', NEW.started_at,
        'endedAt', NEW.ended_at,
        'endReason', NEW.end_reason,
        'endedBy', NEW.ended_by)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER talk_sessions_notify AFTER INSERT OR UPDATE OF ended_at ON talk_sessions
    FOR EACH ROW EXECUTE FUNCTION bl_notify_talk();
