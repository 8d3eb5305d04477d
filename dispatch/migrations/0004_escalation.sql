-- Escalation (DESIGN.md §4, §8): durable timers, one row per scheduled step of an incident's
-- escalation policy, claimed by the timer workers of every dispatch replica with
-- FOR UPDATE SKIP LOCKED; and the notifications outbox that records who was notified (delivery
-- channels — WebSocket, WeCom, SMS — read it later).

CREATE TABLE escalation_timers (
    id           uuid PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES incidents (id),
    -- Position in the tier policy's expansion (escalation::policy::expand).
    step         integer NOT NULL CHECK (step >= 0),
    -- {index, afterSecs, target} as planned when it was scheduled.
    action       jsonb NOT NULL,
    due_at       timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at     timestamptz,
    cancelled_at timestamptz,
    -- The worker (or 'intake') that fired it.
    claimed_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Each step of an incident is scheduled once, so it can fire once.
    UNIQUE (incident_id, step),
    CHECK ((state = 'fired') = (fired_at IS NOT NULL)),
    CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX escalation_timers_due ON escalation_timers (due_at) WHERE state = 'pending';

CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents (id),
    timer_id    uuid NOT NULL REFERENCES escalation_timers (id),
    -- team: a team id; user: a user id; town: a town id (no officer registered); district: 'district'.
    target_kind text NOT NULL CHECK (target_kind IN ('team', 'user', 'town', 'district')),
    target_id   text NOT NULL,
    target_name text NOT NULL DEFAULT '',
    -- The policy target that caused it (team, townOfficers, districtSupervisors) and the note.
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL,
    -- The drill run of an exercise incident; NULL for a real one.
    exercise    text,
    UNIQUE (timer_id, target_kind, target_id)
);
CREATE INDEX notifications_incident ON notifications (incident_id, created_at);
