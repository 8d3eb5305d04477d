-- An incident's evidence clip shared into a consult room (issue 7 item 7): the blob's SHA-256 while
-- it plays (or is paused) in the gateway room, NULL otherwise.
ALTER TABLE rooms ADD COLUMN shared_clip text CHECK (shared_clip ~ '^[0-9a-f]{64}$');
