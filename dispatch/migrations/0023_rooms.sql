-- Consult rooms (网上会商) and incident voice channels (push-to-talk), issue 7 items 5 and 7.
-- The media flows through a gateway room of the same id; dispatch keeps who opened what for which
-- incident, what is shared, and the voice channels' floor.

CREATE TABLE rooms (
    -- The gateway's room id: 'room-…' (consult) or 'voice-…' (an incident's voice channel).
    id             text PRIMARY KEY,
    incident_id    uuid NOT NULL REFERENCES incidents (id),
    kind           text NOT NULL CHECK (kind IN ('consult', 'voice')),
    title          text NOT NULL,
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL,
    closed_at      timestamptz,
    -- The live camera shared into the room for all, if any.
    shared_camera  text REFERENCES cameras (id) ON DELETE SET NULL
);
CREATE INDEX rooms_incident ON rooms (incident_id, created_at);
-- One voice channel per incident.
CREATE UNIQUE INDEX rooms_one_voice ON rooms (incident_id) WHERE kind = 'voice';

-- The voice channels' floor, like talk_sessions (0020) for cameras: one talker per channel at a
-- time, the partial unique index makes two replicas granting at once safe.
CREATE TABLE voice_floor (
    id             bigserial PRIMARY KEY,
    room_id        text NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username       text NOT NULL,
    display_name   text NOT NULL,
    started_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    end_reason     text CHECK (end_reason IN ('released', 'timeout', 'takeover')),
    ended_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE UNIQUE INDEX voice_floor_one_talker ON voice_floor (room_id) WHERE ended_at IS NULL;
