-- Drill runs (DESIGN.md §5): a scenario played through the real intake, its injects as durable
-- timers (claimed with FOR UPDATE SKIP LOCKED, fired once, surviving restarts), the coordinators'
-- observations and ratings, and the after-action report written at ENDEX.

CREATE TABLE drill_runs (
    id             uuid PRIMARY KEY,
    -- What every incident, notification and timeline entry of the run carries as `exercise`.
    exercise       text NOT NULL UNIQUE,
    scenario_id    text NOT NULL,
    -- The scenario's YAML as it was at the start: a file changed later never changes a run.
    scenario_yaml  text NOT NULL,
    title          text NOT NULL,
    towns          text[] NOT NULL,
    -- place name -> premises id, chosen at the start.
    places         jsonb NOT NULL,
    state          text NOT NULL CHECK (state IN ('running', 'paused', 'ended')),
    started_by     uuid NOT NULL REFERENCES users (id),
    started_at     timestamptz NOT NULL,
    paused_at      timestamptz,
    -- Time spent paused so far (the script's clock stood still).
    paused_secs    bigint NOT NULL DEFAULT 0,
    ended_at       timestamptz,
    -- The after-action report (HTML, Chinese), written in the ENDEX transaction.
    report_html    text,
    CHECK ((state = 'paused') = (paused_at IS NOT NULL)),
    CHECK ((state = 'ended') = (ended_at IS NOT NULL))
);
CREATE INDEX drill_runs_started ON drill_runs (started_at DESC);

CREATE TABLE drill_injects (
    run_id      uuid NOT NULL REFERENCES drill_runs (id),
    inject_id   text NOT NULL,
    offset_secs bigint NOT NULL,
    -- Moves later by the length of each pause.
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz,
    -- opened | attached | message | notFired (the run ended first)
    outcome     text CHECK (outcome IN ('opened', 'attached', 'message', 'notFired')),
    incident_id uuid REFERENCES incidents (id),
    PRIMARY KEY (run_id, inject_id)
);
CREATE INDEX drill_injects_due ON drill_injects (due_at) WHERE outcome IS NULL;

CREATE TABLE drill_observations (
    id             uuid PRIMARY KEY,
    run_id         uuid NOT NULL REFERENCES drill_runs (id),
    -- The critical task (expectation id) it rates or is about; NULL for a general remark.
    expectation_id text,
    text           text NOT NULL DEFAULT '',
    -- P performed without challenges, S with some, M with major challenges, U unable.
    rating         text CHECK (rating IN ('P', 'S', 'M', 'U')),
    author_id      uuid NOT NULL REFERENCES users (id),
    author         text NOT NULL,
    at             timestamptz NOT NULL,
    CHECK (text <> '' OR rating IS NOT NULL)
);
CREATE INDEX drill_observations_run ON drill_observations (run_id, at);
