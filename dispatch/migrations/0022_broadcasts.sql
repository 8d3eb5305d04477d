-- Group broadcast (issue 7): one operator's voice to many kitchens at once, with each kitchen's
-- delivery state. Each target that could be reached holds that camera's talk floor
-- (`talk_sessions`, migration 0020) for the broadcast, so a single talker and a broadcast never
-- talk to one camera at once.

CREATE TABLE broadcasts (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username      text NOT NULL,
    display_name  text NOT NULL,
    -- How the targets were chosen: {"cameras": [...]} or {"town": ..., "premisesKind": ...}.
    selection     jsonb NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz
);

-- One row per target camera. `state` moves connecting → playing → ended, or to failed with a
-- `reason`; `detail` says what happened in words (who is busy, what the edge answered).
CREATE TABLE broadcast_targets (
    broadcast_id  uuid NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    camera_id     text NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    town_id       text NOT NULL,
    state         text NOT NULL CHECK (state IN ('connecting', 'playing', 'ended', 'failed')),
    reason        text CHECK (reason IN ('noSpeaker', 'offline', 'busy', 'edgeError')),
    detail        text NOT NULL DEFAULT '',
    -- The target's holding of the camera's floor, while it has one.
    talk_session  bigint REFERENCES talk_sessions (id) ON DELETE SET NULL,
    -- The `startTalk` command sent for it: the edge's result moves the state.
    cmd_id        uuid,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (broadcast_id, camera_id),
    CHECK ((state = 'failed') = (reason IS NOT NULL))
);
CREATE INDEX broadcast_targets_cmd ON broadcast_targets (cmd_id) WHERE cmd_id IS NOT NULL;
CREATE INDEX broadcast_targets_open ON broadcast_targets (camera_id)
    WHERE state IN ('connecting', 'playing');

-- Consoles follow each kitchen's state on the WebSocket (`broadcasts` topic).
CREATE FUNCTION bl_notify_broadcast_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'broadcast',
        'broadcastId', NEW.broadcast_id,
        'cameraId', NEW.camera_id,
        'townId', NEW.town_id,
        'userId', (SELECT user_id FROM broadcasts WHERE id = NEW.broadcast_id),
        'state', NEW.state,
        'reason', NEW.reason,
        'detail', NEW.detail,
        'at', NEW.updated_at)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER broadcast_targets_notify AFTER INSERT OR UPDATE OF state ON broadcast_targets
    FOR EACH ROW EXECUTE FUNCTION bl_notify_broadcast_target();

-- A target's floor that ends for another reason than the broadcast's end (a supervisor took the
-- camera over, the holding timed out, the broadcaster logged out) ends the target too.
CREATE FUNCTION bl_end_broadcast_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ended_at IS NOT NULL AND NEW.end_reason <> 'released' THEN
        UPDATE broadcast_targets
           SET state = 'ended', detail = 'the talk floor ended: ' || NEW.end_reason,
               updated_at = NEW.ended_at
         WHERE talk_session = NEW.id AND state IN ('connecting', 'playing');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER talk_sessions_end_broadcast AFTER UPDATE OF ended_at ON talk_sessions
    FOR EACH ROW EXECUTE FUNCTION bl_end_broadcast_target();
