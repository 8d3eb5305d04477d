-- Incidents (DESIGN.md §4): one row per case, an append-only timeline of everything that happened
-- to it, the edge events and episodes that fed it, and triage's labelled false positives.

CREATE TABLE incidents (
    id                 uuid PRIMARY KEY,
    -- The premises concerned; NULL for a hotline report about a free address.
    premises_id        uuid REFERENCES premises (id),
    address            text NOT NULL DEFAULT '',
    town_id            text NOT NULL REFERENCES regions (id),
    grid_id            text REFERENCES grids (id),
    kind               text NOT NULL,
    tier               text NOT NULL CHECK (tier IN ('immediate', 'deadline', 'routine')),
    -- Suggested emergency level (I-IV) for poisonings and drug reactions; NULL otherwise.
    suggested_severity text CHECK (suggested_severity IN ('I', 'II', 'III', 'IV')),
    state              text NOT NULL CHECK (state IN ('new', 'triaged', 'rejected', 'dispatched',
                           'acknowledged', 'enRoute', 'onScene', 'resolved', 'closed')),
    -- How the first report came in.
    source             text NOT NULL CHECK (source IN ('detection', 'camera', 'hotline', 'manual')),
    -- '12331' or '12315' for hotline reports.
    hotline            text CHECK (hotline IN ('12331', '12315')),
    description        text NOT NULL DEFAULT '',
    case_count         integer CHECK (case_count >= 0),
    deaths             integer CHECK (deaths >= 0),
    -- The drill run this incident belongs to; NULL for a real one. Dedup never crosses it.
    exercise           text,
    -- When the first report says it happened, and the latest report of any kind (the cooldown runs
    -- from it).
    opened_at          timestamptz NOT NULL,
    last_report_at     timestamptz NOT NULL,
    report_count       integer NOT NULL DEFAULT 1,
    -- Routing: the on-duty team at opened_at, or NULL when none was on duty (then the town has it).
    routed_team_id     uuid REFERENCES teams (id),
    routed_at          timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (premises_id IS NOT NULL OR address <> '')
);
CREATE INDEX incidents_dedup ON incidents (premises_id, kind, last_report_at DESC);
CREATE INDEX incidents_town_opened ON incidents (town_id, opened_at DESC);
CREATE INDEX incidents_state ON incidents (state) WHERE state NOT IN ('closed', 'rejected');

-- Everything that happened to an incident, in order. Rows are never changed or removed.
CREATE TABLE incident_timeline (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents (id),
    at          timestamptz NOT NULL,
    -- A user name, 'edge:<edge id>' or 'system'.
    actor       text NOT NULL,
    actor_id    uuid REFERENCES users (id),
    -- The user's role at the time; NULL for edges and the system.
    role        text,
    -- opened, repeat, routed, confirm, reject, dispatch, acknowledge, enRoute, arrive, resolve,
    -- close, reopen, …
    action      text NOT NULL,
    from_state  text,
    to_state    text,
    note        text NOT NULL DEFAULT '',
    lat         double precision,
    lon         double precision,
    -- References: edge event ids, evidence hashes, teams.
    refs        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, seq);

CREATE FUNCTION incident_timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident_timeline is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER incident_timeline_no_update_or_delete
    BEFORE UPDATE OR DELETE ON incident_timeline
    FOR EACH ROW EXECUTE FUNCTION incident_timeline_append_only();
CREATE TRIGGER incident_timeline_no_truncate
    BEFORE TRUNCATE ON incident_timeline
    FOR EACH STATEMENT EXECUTE FUNCTION incident_timeline_append_only();

-- The edge events (detections of every phase, camera faults) that belong to an incident; an event
-- belongs to at most one.
CREATE TABLE incident_events (
    event_id    uuid PRIMARY KEY REFERENCES edge_events (event_id),
    incident_id uuid NOT NULL REFERENCES incidents (id),
    linked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_events_incident ON incident_events (incident_id);

-- Detection episodes and the incident each feeds; an episode is open until its `end` arrives.
CREATE TABLE incident_episodes (
    episode_id  uuid PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents (id),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX incident_episodes_open ON incident_episodes (incident_id) WHERE ended_at IS NULL;

-- Triage's rejections: labelled false positives with their evidence, training data for the edge
-- models. A reopened incident withdraws its label (withdrawn_at) instead of deleting it.
CREATE TABLE false_positives (
    id           uuid PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES incidents (id),
    kind         text NOT NULL,
    premises_id  uuid REFERENCES premises (id),
    exercise     text,
    reason       text NOT NULL CHECK (reason <> ''),
    labelled_by  uuid NOT NULL REFERENCES users (id),
    labelled_at  timestamptz NOT NULL,
    -- [{eventId, cameraId, at, snapshot, clip, model, confidence}] from the linked edge events.
    evidence     jsonb NOT NULL,
    withdrawn_at timestamptz
);
CREATE INDEX false_positives_incident ON false_positives (incident_id);
