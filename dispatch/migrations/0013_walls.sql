-- Video walls (issue 6): the layout a wall monitor shows, set from an operator's desk. One row per
-- wall; every write bumps `revision`. The trigger announces the change on the WebSocket's channel
-- (migration 0005) with ids only — consoles read the layout itself by REST — so a wall window on
-- another machine, connected to any replica, follows the desk as soon as the write commits.

CREATE TABLE walls (
    id text PRIMARY KEY,
    layout jsonb NOT NULL,
    revision bigint NOT NULL CHECK (revision > 0),
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);

CREATE FUNCTION bl_notify_wall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'wall',
        'id', NEW.id,
        'revision', NEW.revision,
        'updatedAt', NEW.updated_at)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER walls_notify AFTER INSERT OR UPDATE ON walls
    FOR EACH ROW EXECUTE FUNCTION bl_notify_wall();
