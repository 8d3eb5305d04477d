-- The edge's automatic voice warning (issue 7 item 4): what became of it arrives as an edge event
-- of type 'warning' (bl_proto::event::WarningEvent), stored like any other with its episode (and no
-- phase), and written on the episode's incident timeline.

ALTER TABLE edge_events DROP CONSTRAINT edge_events_type_check;
ALTER TABLE edge_events ADD CONSTRAINT edge_events_type_check
    CHECK (type IN ('detection', 'camera', 'warning'));

-- The voice messages an admin manages: an uploaded WAV (checked: format, size, duration; its
-- bytes kept here, named by their SHA-256) or a text the boxes speak with espeak-ng.
CREATE TABLE voice_messages (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    text        text,
    audio       bytea,
    sha256      text,
    duration_ms integer,
    updated_at  timestamptz NOT NULL,
    updated_by  uuid REFERENCES users (id),
    CHECK ((text IS NULL) <> (audio IS NULL)),
    CHECK ((audio IS NULL) = (sha256 IS NULL) AND (audio IS NULL) = (duration_ms IS NULL))
);

-- When a box warns on its own: per premises kind and violation, during local opening hours
-- (both NULL: all day), with which message.
CREATE TABLE warning_rules (
    premises_kind text NOT NULL,
    kind          text NOT NULL,
    message_id    text NOT NULL REFERENCES voice_messages (id),
    hours_from    text,
    hours_to      text,
    PRIMARY KEY (premises_kind, kind),
    CHECK ((hours_from IS NULL) = (hours_to IS NULL))
);
