-- The center's voice warnings reach the edge boxes in their retained EdgeConfig (issue 7 item 4):
-- each edge's desired config now also carries the warning rules for its cameras and their messages.
-- A change of messages, rules, cameras or premises kinds bumps the revision of exactly the edges
-- whose set changed, found by comparing this fingerprint (SHA-256 of the set's JSON; NULL: the
-- edge has no center warnings).
ALTER TABLE edge_configs ADD COLUMN warnings_sha256 text;
