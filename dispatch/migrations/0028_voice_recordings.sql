-- Voice recordings (issue 7 item 6): every talk-down and broadcast the gateways recorded, both
-- directions, as gateway-signed `audio` evidence blobs. The gateway reports each finished
-- recording (POST /internal/voice-recordings) until dispatch accepted it, so a report may come
-- twice: the blob's SHA-256 is the key and the first report is kept.
CREATE TABLE voice_recordings (
    sha256         text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size           bigint NOT NULL CHECK (size > 0),
    content_type   text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('talk', 'broadcast', 'ptt')),
    -- The talker: the media token's subject (a user id); the name as it was then.
    talker_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    talker_name    text NOT NULL,
    -- The gateway node that recorded and stores it.
    node           text NOT NULL,
    -- The cameras the voice went to; the first names the blob at the gateway.
    cameras        text[] NOT NULL CHECK (cardinality(cameras) > 0),
    -- The incident the talk was started from (talk_sessions.incident_id), if any.
    incident_id    uuid REFERENCES incidents (id),
    broadcast_id   uuid REFERENCES broadcasts (id) ON DELETE SET NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL CHECK (ended_at >= started_at),
    -- Which sides carry sound: 'center' (left channel), 'premises' (right channel).
    directions     text[] NOT NULL,
    -- Why the premises side is silent when it was to be recorded (e.g. the camera has no audio).
    premises_note  text,
    reported_at    timestamptz NOT NULL
);
CREATE INDEX voice_recordings_incident ON voice_recordings (incident_id, started_at)
    WHERE incident_id IS NOT NULL;
