-- A reopened incident escalates again from the reopening: its policy runs a new round of timers.
-- Each step still fires once per round (UNIQUE now includes the round).

ALTER TABLE escalation_timers ADD COLUMN round integer NOT NULL DEFAULT 0 CHECK (round >= 0);
ALTER TABLE escalation_timers DROP CONSTRAINT escalation_timers_incident_id_step_key;
ALTER TABLE escalation_timers ADD CONSTRAINT escalation_timers_incident_round_step UNIQUE (incident_id, round, step);
