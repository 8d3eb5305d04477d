-- Consult rooms recorded on request (issue 7 item 7): the gateway records a room's voices, every
-- participant mixed, and reports it like a talk (kind 'room'); dispatch keeps whether a room is
-- being recorded, since when, so every member's console shows it.
ALTER TABLE voice_recordings DROP CONSTRAINT voice_recordings_kind_check;
ALTER TABLE voice_recordings ADD CONSTRAINT voice_recordings_kind_check
    CHECK (kind IN ('talk', 'broadcast', 'ptt', 'room'));
ALTER TABLE rooms ADD COLUMN recording_since timestamptz;
