-- Registry (regions, grids, premises, edges, cameras, teams, rosters) and auth (users, sessions,
-- login throttling). Identifiers that become MQTT topics or paths follow proto's id rule.

CREATE TABLE regions (
    id        text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    parent_id text REFERENCES regions (id),
    kind      text NOT NULL CHECK (kind IN ('district', 'street', 'town')),
    name_zh   text NOT NULL,
    name_en   text NOT NULL,
    lat       double precision,
    lon       double precision,
    CHECK ((kind = 'district') = (parent_id IS NULL))
);

CREATE TABLE grids (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    town_id          text NOT NULL REFERENCES regions (id),
    name             text NOT NULL,
    person_in_charge text NOT NULL DEFAULT '',
    phone            text NOT NULL DEFAULT ''
);
CREATE INDEX grids_town ON grids (town_id);

CREATE TABLE premises (
    id               uuid PRIMARY KEY,
    name             text NOT NULL CHECK (name <> ''),
    licence_no       text NOT NULL UNIQUE CHECK (licence_no <> ''),
    kind             text NOT NULL
        CHECK (kind IN ('schoolCanteen', 'restaurant', 'centralKitchen', 'pharmacy', 'other')),
    address          text NOT NULL,
    lat              double precision,
    lon              double precision,
    town_id          text NOT NULL REFERENCES regions (id),
    grid_id          text REFERENCES grids (id),
    risk_grade       text NOT NULL CHECK (risk_grade IN ('A', 'B', 'C', 'D')),
    person_in_charge text NOT NULL,
    phone            text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX premises_town ON premises (town_id, name);

CREATE TABLE edges (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$' AND id <> 'dispatch'),
    premises_id          uuid NOT NULL REFERENCES premises (id),
    -- SHA-256 (hex) of the one-time enrolment code; cleared when the edge enrols.
    enrolment_code_hash  text,
    enrolment_expires_at timestamptz,
    -- The edge's Ed25519 public key (32 bytes), registered at enrolment.
    public_key           bytea CHECK (public_key IS NULL OR length(public_key) = 32),
    enrolled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX edges_premises ON edges (premises_id);

CREATE TABLE cameras (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    premises_id   uuid NOT NULL REFERENCES premises (id),
    name          text NOT NULL,
    source        text NOT NULL CHECK (source IN ('edge', 'pull')),
    edge_id       text REFERENCES edges (id),
    -- For an edge camera the stream name the edge pushes; for a pull camera its URL without credentials.
    main_stream   text NOT NULL,
    sub_stream    text,
    pull_username text,
    pull_password text,
    talk          boolean NOT NULL DEFAULT false,
    CHECK ((source = 'edge') = (edge_id IS NOT NULL))
);
CREATE INDEX cameras_premises ON cameras (premises_id);

CREATE TABLE teams (
    id      uuid PRIMARY KEY,
    town_id text NOT NULL REFERENCES regions (id),
    name    text NOT NULL,
    phone   text NOT NULL DEFAULT '',
    UNIQUE (town_id, name)
);

-- A recurring shift in China Standard Time (UTC+8, no daylight saving): on the weekdays in
-- `weekdays` (bit 0 = Monday … bit 6 = Sunday) from `starts` to `ends`; `ends <= starts` crosses midnight.
CREATE TABLE roster_shifts (
    id       uuid PRIMARY KEY,
    team_id  uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    weekdays smallint NOT NULL CHECK (weekdays BETWEEN 1 AND 127),
    starts   time NOT NULL,
    ends     time NOT NULL
);
CREATE INDEX roster_shifts_team ON roster_shifts (team_id);

-- For [starts_at, ends_at) the team is on duty for its town instead of the regular shifts.
CREATE TABLE roster_overrides (
    id        uuid PRIMARY KEY,
    team_id   uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason    text NOT NULL DEFAULT ''
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'supervisor', 'operator', 'townOfficer', 'field',
                                                'drillCoordinator', 'auditor')),
    -- NULL = the whole district; otherwise the towns this user may see.
    scope_towns   text[],
    team_id       uuid REFERENCES teams (id),
    password_hash text NOT NULL,
    -- TOTP secret in use (NULL = TOTP off), one being set up, and the last step used (no replays).
    totp_secret    bytea,
    totp_pending   bytea,
    totp_last_step bigint,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    -- SHA-256 of the session id; the id itself exists only in the user's cookie.
    id_hash      bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed logins per key ('user:<name>' or 'ip:<address>').
CREATE TABLE login_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    locked_until timestamptz,
    last_at      timestamptz NOT NULL
);
