-- Every edge report moves its incident's last_report_at (and updated_at, report_count). With
-- last_report_at in the dedup index each of those updates wrote a new entry in all four indexes of
-- incidents; without it PostgreSQL can update the row in place on its page (a HOT update, which
-- needs room on the page: hence the fill factor). The dedup lookup finds the few incidents of one
-- (premises, kind) by the index and sorts them itself.
DROP INDEX incidents_dedup;
CREATE INDEX incidents_dedup ON incidents (premises_id, kind);
ALTER TABLE incidents SET (fillfactor = 70);
