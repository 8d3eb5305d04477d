-- The change feed of the WebSocket (DESIGN.md §3.4, §8): triggers announce every change to
-- incidents, their timelines, notifications and edge status on the channel `bl_changes` as a small
-- JSON object tagged by `type`. PostgreSQL delivers a NOTIFY when (and only if) the writing
-- transaction commits, to the listeners of every dispatch replica, so a change is announced exactly
-- once per listener, whichever replica or process made it, with no hook in handler code.
-- Payloads stay far below PostgreSQL's 8000-byte limit: ids, states and times, never free text.

CREATE FUNCTION bl_notify_incident() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'incident',
        'op', lower(TG_OP),
        'id', NEW.id,
        'townId', NEW.town_id,
        'premisesId', NEW.premises_id,
        'routedTeamId', NEW.routed_team_id,
        'kind', NEW.kind,
        'tier', NEW.tier,
        'state', NEW.state,
        'exercise', NEW.exercise,
        'reportCount', NEW.report_count,
        'lastReportAt', NEW.last_report_at,
        'updatedAt', NEW.updated_at)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_notify AFTER INSERT OR UPDATE ON incidents
    FOR EACH ROW EXECUTE FUNCTION bl_notify_incident();

-- A timeline entry carries its incident's town, routed team and exercise (one lookup by primary
-- key) so that the WebSocket can filter it without a query per entry and per console.
CREATE FUNCTION bl_notify_timeline() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i incidents%ROWTYPE;
BEGIN
    SELECT * INTO i FROM incidents WHERE id = NEW.incident_id;
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'timeline',
        'incidentId', NEW.incident_id,
        'seq', NEW.seq,
        'action', NEW.action,
        'toState', NEW.to_state,
        'townId', i.town_id,
        'routedTeamId', i.routed_team_id,
        'exercise', i.exercise,
        'at', NEW.at)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER incident_timeline_notify AFTER INSERT ON incident_timeline
    FOR EACH ROW EXECUTE FUNCTION bl_notify_timeline();

CREATE FUNCTION bl_notify_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'notification',
        'id', NEW.id,
        'incidentId', NEW.incident_id,
        'targetKind', NEW.target_kind,
        'targetId', NEW.target_id,
        'townId', (SELECT town_id FROM incidents WHERE id = NEW.incident_id),
        'exercise', NEW.exercise,
        'createdAt', NEW.created_at)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION bl_notify_notification();

-- Each camera's id and online flag from a stored EdgeState (`state.cameras`).
CREATE FUNCTION bl_camera_health(state jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('cameraId', c->>'cameraId',
                                                 'online', (c->>'online')::boolean)), '[]'::jsonb)
    FROM jsonb_array_elements(CASE jsonb_typeof(state->'cameras')
                              WHEN 'array' THEN state->'cameras' ELSE '[]'::jsonb END) AS c
$$;

-- Edges report their state every few seconds; only a change of the edge's or a camera's online
-- flag is announced, so thousands of healthy edges do not flood the consoles.
CREATE FUNCTION bl_notify_edge_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cameras jsonb := bl_camera_health(NEW.state);
    payload jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.online = NEW.online AND bl_camera_health(OLD.state) = cameras THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_build_object(
        'type', 'edge',
        'edgeId', NEW.edge_id,
        'premisesId', p.id,
        'townId', p.town_id,
        'online', NEW.online,
        'cameras', cameras,
        'reportedAt', NEW.reported_at,
        'receivedAt', NEW.received_at)
        INTO payload
        FROM edges e JOIN premises p ON p.id = e.premises_id WHERE e.id = NEW.edge_id;
    -- An edge with very many cameras: announce the edge alone; consoles read the cameras by REST.
    IF octet_length(payload::text) > 7000 THEN
        payload := payload || jsonb_build_object('cameras', NULL);
    END IF;
    PERFORM pg_notify('bl_changes', payload::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER edge_status_notify AFTER INSERT OR UPDATE ON edge_status
    FOR EACH ROW EXECUTE FUNCTION bl_notify_edge_status();

-- A session that ends (logout, a sweep, a disabled user) closes its WebSockets at once on every
-- replica. The payload is the stored SHA-256 of the id, never the id itself.
CREATE FUNCTION bl_notify_session_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bl_changes', json_build_object(
        'type', 'sessionEnded',
        'idHash', encode(OLD.id_hash, 'hex'))::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_notify_ended AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION bl_notify_session_ended();
