-- Notification delivery (DESIGN.md §4): one row per (notification, outbound channel), claimed by
-- the sender worker of every replica with FOR UPDATE SKIP LOCKED, retried with backoff, and marked
-- 'sending' with a lease in a committed transaction before the network call, so that a crash
-- leaves a trace instead of a silent double send.

-- Phones of officers and supervisors, for robot @mentions and SMS ('' = none).
ALTER TABLE users ADD COLUMN phone text NOT NULL DEFAULT '';

-- When the sender planned a notification's deliveries (one row per matching channel, possibly
-- none). Notifications written before this migration count as planned: they are not delivered
-- late by a channel configured after them.
ALTER TABLE notifications ADD COLUMN delivery_planned_at timestamptz;
UPDATE notifications SET delivery_planned_at = created_at;
CREATE INDEX notifications_unplanned ON notifications (created_at) WHERE delivery_planned_at IS NULL;

CREATE TABLE notification_deliveries (
    -- Sent to receivers as the Idempotency-Key: a resend after a crash carries the same one.
    id              uuid PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notifications (id),
    -- The [[notify.channel]] name and its kind at planning time.
    channel         text NOT NULL,
    channel_kind    text NOT NULL CHECK (channel_kind IN ('webhook', 'wecom', 'dingtalk', 'sms')),
    -- pending: not tried yet; sending: a worker holds it until lease_until (the request may be on
    -- the wire); sent; failed: a retryable failure, tried again at next_attempt_at; dead: given up
    -- (permanent error or attempts exhausted); uncertain: a robot send whose outcome is unknown
    -- (crash or timeout mid-request) and that is not repeated, because robots do not de-duplicate.
    state           text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'dead', 'uncertain')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    claimed_by      text,
    last_error      text,
    last_attempt_at timestamptz,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL,
    UNIQUE (notification_id, channel),
    CHECK ((state = 'sending') = (lease_until IS NOT NULL)),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'failed');
CREATE INDEX notification_deliveries_lease ON notification_deliveries (lease_until)
    WHERE state = 'sending';
CREATE INDEX notification_deliveries_channel ON notification_deliveries (channel, state);
