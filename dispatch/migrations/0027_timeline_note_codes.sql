-- Timeline notes in the reader's language (issue 6): the system's notes carry a code and its
-- parameters beside the English `note`, and the apps say them in zh-CN or en-US. Rows written
-- before this (and notes people type) have no code: the apps show `note` as it is. Adding columns
-- changes no row, so the append-only triggers stay as they are.
ALTER TABLE incident_timeline
    ADD COLUMN note_code   text,
    ADD COLUMN note_params jsonb NOT NULL DEFAULT '{}'::jsonb;
