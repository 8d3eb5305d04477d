-- Escalation policies set by an admin (PUT /api/escalation/policies/{tier}): they replace the
-- config's [escalation] policy of their tier for every escalation that starts (an opening) or
-- restarts (a reopening) afterwards. Each timer row keeps the steps of its round, so a change never
-- renumbers or reschedules timers already running; rows from before this migration (NULL) run
-- under the config's policy as before.

CREATE TABLE escalation_policies (
    tier       text PRIMARY KEY CHECK (tier IN ('immediate', 'deadline', 'routine')),
    -- [{step: "notify", target} | {step: "wait", secs} | {step: "repeat", from_step, times}]
    steps      jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    updated_at timestamptz NOT NULL,
    updated_by uuid REFERENCES users (id)
);

ALTER TABLE escalation_timers ADD COLUMN policy jsonb;
