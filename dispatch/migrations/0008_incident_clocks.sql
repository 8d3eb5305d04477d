-- Incident clocks (DESIGN.md §4): the deadlines that run per incident (ack, arrival, the report to
-- the health authority, complaint deadlines in working days, rectification), one row per clock
-- started. The at-risk and overdue moments are claimed by every replica's timer worker with
-- FOR UPDATE SKIP LOCKED, like escalation_timers, and fire once each.

CREATE TABLE incident_clocks (
    id               uuid PRIMARY KEY,
    incident_id      uuid NOT NULL REFERENCES incidents (id),
    kind             text NOT NULL CHECK (kind IN ('ack', 'arrival', 'healthReport',
                         'complaintAcceptance', 'complaintHandling', 'rectification')),
    started_at       timestamptz NOT NULL,
    at_risk_at       timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    -- Set for clocks counted in Chinese working days.
    working_days     integer CHECK (working_days >= 0),
    stopped_at       timestamptz,
    outcome          text CHECK (outcome IN ('met', 'cancelled')),
    at_risk_fired_at timestamptz,
    overdue_fired_at timestamptz,
    -- When the worker must look at it next (the at-risk moment, then the due time); NULL once
    -- stopped or overdue.
    next_fire_at     timestamptz,
    CHECK (at_risk_at <= due_at),
    CHECK ((stopped_at IS NULL) = (outcome IS NULL)),
    CHECK (stopped_at IS NULL OR next_fire_at IS NULL)
);
CREATE INDEX incident_clocks_incident ON incident_clocks (incident_id, started_at);
CREATE INDEX incident_clocks_next ON incident_clocks (next_fire_at) WHERE next_fire_at IS NOT NULL;
-- At most one clock of a kind runs per incident.
CREATE UNIQUE INDEX incident_clocks_running ON incident_clocks (incident_id, kind)
    WHERE stopped_at IS NULL;

-- A notification comes from an escalation step or from a clock's moment, exactly one of them.
ALTER TABLE notifications ALTER COLUMN timer_id DROP NOT NULL;
ALTER TABLE notifications ADD COLUMN clock_id uuid REFERENCES incident_clocks (id);
ALTER TABLE notifications ADD COLUMN clock_moment text CHECK (clock_moment IN ('atRisk', 'overdue'));
ALTER TABLE notifications ADD CONSTRAINT notifications_one_source
    CHECK ((timer_id IS NULL) <> (clock_id IS NULL) AND (clock_id IS NULL) = (clock_moment IS NULL));
ALTER TABLE notifications ADD CONSTRAINT notifications_clock_once
    UNIQUE (clock_id, clock_moment, target_kind, target_id);
