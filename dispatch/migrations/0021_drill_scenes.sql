-- Drill scenes on real cameras (issue 8, DESIGN.md §5): a scene inject stages an exercise on the
-- camera's edge through the retained EdgeConfig, camsim plays the scene once the edge confirmed,
-- and the staging is cleared after ENDEX (or when it runs out).

-- The center's desired EdgeConfig per edge, published retained on bl/v1/edge/{edge}/config. Today
-- it carries only staged exercises (its `cameras` list is empty: the boxes keep their own rules).
CREATE TABLE edge_configs (
    edge_id   text PRIMARY KEY REFERENCES edges (id),
    -- Bumped by every change of the desired config.
    revision  bigint NOT NULL CHECK (revision > 0),
    -- The last revision handed to the broker; below `revision` means "publish it".
    published bigint NOT NULL DEFAULT 0
);

-- One per fired scene inject.
--   staged  : in the edge's config, waiting for the edge to report the revision
--   playing : claimed by a replica that is asking camsim to play the scene
--   played  : camsim plays it; the staging stays until ENDEX or `until`
--   skipped : not played (no camsim, no camera, the edge did not confirm, camsim refused): `note`
--   cleared : out of the config again (after ENDEX or `until`)
CREATE TABLE drill_stagings (
    run_id      uuid NOT NULL,
    inject_id   text NOT NULL,
    edge_id     text REFERENCES edges (id),
    camera_id   text REFERENCES cameras (id),
    premises_id uuid NOT NULL REFERENCES premises (id),
    scene       text NOT NULL,
    secs        integer NOT NULL CHECK (secs > 0),
    staged_at   timestamptz NOT NULL,
    -- The edge marks episodes that start on the camera before this.
    until       timestamptz NOT NULL,
    -- The edge config revision that carries the staging; NULL when it was never staged.
    revision    bigint,
    state       text NOT NULL CHECK (state IN ('staged', 'playing', 'played', 'skipped', 'cleared')),
    -- Why it was skipped, or what camsim said.
    note        text NOT NULL DEFAULT '',
    played_at   timestamptz,
    cleared_at  timestamptz,
    PRIMARY KEY (run_id, inject_id),
    FOREIGN KEY (run_id, inject_id) REFERENCES drill_injects (run_id, inject_id),
    CHECK ((state = 'skipped') OR (edge_id IS NOT NULL AND camera_id IS NOT NULL AND revision IS NOT NULL))
);
-- One live staging per camera: the edge config has one entry per camera.
CREATE UNIQUE INDEX drill_stagings_camera ON drill_stagings (camera_id)
    WHERE state IN ('staged', 'playing', 'played');

-- A scene inject's outcome: `staged` until its incident appears (then `opened`), or `skipped`.
ALTER TABLE drill_injects DROP CONSTRAINT drill_injects_outcome_check;
ALTER TABLE drill_injects ADD CONSTRAINT drill_injects_outcome_check
    CHECK (outcome IN ('opened', 'attached', 'message', 'notFired', 'staged', 'skipped'));
