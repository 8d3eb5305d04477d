-- Drills, after the first cut (issue 8): the PDF of the after-action report, the improvement plan
-- tracked to closure, the participants' roles kept with the run, and drill changes on the
-- WebSocket's change feed (migration 0005).

-- The PDF is rendered from report_html by headless Chromium after ENDEX (outside the ENDEX
-- transaction: it takes seconds); a failed rendering keeps its reason and is retried a few times.
ALTER TABLE drill_runs
    ADD COLUMN report_pdf          bytea,
    ADD COLUMN report_pdf_error    text,
    ADD COLUMN report_pdf_attempts integer NOT NULL DEFAULT 0,
    -- The participants' roles (scenario `participants.roles`): who hears of the run live.
    ADD COLUMN roles               text[] NOT NULL DEFAULT '{}';

-- Improvement items (改进计划): one problem the drill revealed, the corrective action, its owner
-- and due date, followed open → inProgress → done → verified. Created at ENDEX from the report's
-- problems or by hand.
CREATE TABLE drill_improvements (
    id             uuid PRIMARY KEY,
    run_id         uuid NOT NULL REFERENCES drill_runs (id),
    -- The critical task (expectation id) it comes from; NULL for one added by hand about no task.
    expectation_id text,
    problem        text NOT NULL CHECK (problem <> ''),
    action         text NOT NULL CHECK (action <> ''),
    owner          text NOT NULL CHECK (owner <> ''),
    due_date       date NOT NULL,
    state          text NOT NULL CHECK (state IN ('open', 'inProgress', 'done', 'verified')),
    -- Every state it went through: [{state, by, at, note}], oldest first (who and when).
    history        jsonb NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX drill_improvements_run ON drill_improvements (run_id, created_at);
CREATE INDEX drill_improvements_open ON drill_improvements (due_date) WHERE state IN ('open', 'inProgress');

-- A drill change: ids, towns and roles only (consoles read the run by REST). Its towns and roles
-- let the WebSocket show it only to coordinators and participants of those towns.
CREATE FUNCTION bl_notify_drill_run(run uuid, what text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r drill_runs%ROWTYPE;
BEGIN
    SELECT * INTO r FROM drill_runs WHERE id = run;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'drill',
        'runId', r.id,
        'what', what,
        'state', r.state,
        'towns', r.towns,
        'roles', r.roles,
        'at', now())::text);
END
$$;

CREATE FUNCTION bl_notify_drill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'drill_runs' THEN
        -- the PDF's bytes arriving are announced too (the console offers the download)
        PERFORM bl_notify_drill_run(NEW.id, 'run');
    ELSIF TG_TABLE_NAME = 'drill_injects' THEN
        PERFORM bl_notify_drill_run(NEW.run_id, 'inject');
    ELSIF TG_TABLE_NAME = 'drill_observations' THEN
        PERFORM bl_notify_drill_run(NEW.run_id, 'observation');
    ELSE
        PERFORM bl_notify_drill_run(NEW.run_id, 'improvement');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER drill_runs_notify AFTER INSERT OR UPDATE ON drill_runs
    FOR EACH ROW EXECUTE FUNCTION bl_notify_drill();
-- Only a fired (or not-fired) inject: moving due times on resume is the run's change already.
CREATE TRIGGER drill_injects_notify AFTER UPDATE OF outcome ON drill_injects
    FOR EACH ROW EXECUTE FUNCTION bl_notify_drill();
CREATE TRIGGER drill_observations_notify AFTER INSERT ON drill_observations
    FOR EACH ROW EXECUTE FUNCTION bl_notify_drill();
CREATE TRIGGER drill_improvements_notify AFTER INSERT OR UPDATE ON drill_improvements
    FOR EACH ROW EXECUTE FUNCTION bl_notify_drill();
