-- What edges report over MQTT (DESIGN.md §3.1): every event exactly once by its edge-made id, and
-- each edge's latest state.

CREATE TABLE edge_events (
    -- UUIDv7 made at the edge: the idempotency key. A resend of the same event is a no-op.
    event_id    uuid PRIMARY KEY,
    edge_id     text NOT NULL REFERENCES edges (id),
    camera_id   text NOT NULL REFERENCES cameras (id),
    type        text NOT NULL CHECK (type IN ('detection', 'camera')),
    -- ViolationKind for detections, CameraEventKind for camera events.
    kind        text NOT NULL,
    -- Detections only: the episode and its phase.
    episode_id  uuid,
    phase       text CHECK (phase IN ('start', 'update', 'end')),
    at          timestamptz NOT NULL,
    -- The drill run the event belongs to; NULL for real events.
    exercise    text,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'detection') = (episode_id IS NOT NULL AND phase IS NOT NULL))
);
CREATE INDEX edge_events_episode ON edge_events (episode_id) WHERE episode_id IS NOT NULL;
CREATE INDEX edge_events_camera_at ON edge_events (camera_id, at);

CREATE TABLE edge_status (
    edge_id     text PRIMARY KEY REFERENCES edges (id),
    online      boolean NOT NULL,
    state       jsonb NOT NULL,
    -- The edge's own timestamp: an older state arriving late never overwrites a newer one.
    reported_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
