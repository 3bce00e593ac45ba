-- The whole mixd schema for PostgreSQL, at the version that src/store/postgres/migrate.rs
-- names LATEST (kept in `schema_version`). It holds what schema.sql holds for SQLite, table
-- for table and column for column, so that the two backends mean the same; the differences
-- are only where the engines differ:
-- - integers are BIGINT (Rust's i64) and flags BOOLEAN;
-- - text that is compared or sorted (names, JIDs, reactions) is COLLATE "C": byte order, as
--   SQLite compares, whatever locale the database was created with;
-- - SQLite's AUTOINCREMENT bookkeeping (`sqlite_sequence`) is the `sequences` table: the
--   highest channel key and archive id ever handed out, so that neither is reused after a
--   deletion (the core assigns them; the store only remembers);
-- - `fence` holds the epoch of the active mixd: every write transaction checks it, so that an
--   instance that lost its place to a standby can no longer commit (src/store/postgres/mod.rs).
-- Times are microseconds since the Unix epoch; JIDs are normalized bare JIDs.

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

CREATE TABLE sequences (
    name TEXT COLLATE "C" PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO sequences (name, last) VALUES ('channels', 0), ('messages', 0);

-- One row. The active instance raises the epoch when it takes over and writes only while the
-- row still holds its own.
CREATE TABLE fence (
    epoch BIGINT NOT NULL
);
INSERT INTO fence (epoch) VALUES (0);

-- A channel and its information node (XEP-0369 §7.2). The key is what the hot tables use.
CREATE TABLE channels (
    key              BIGINT  PRIMARY KEY,
    name             TEXT    COLLATE "C" NOT NULL UNIQUE,
    created_by       TEXT    COLLATE "C" NOT NULL,
    created_at       BIGINT  NOT NULL,
    info_name        TEXT    NOT NULL DEFAULT '',
    info_description TEXT    NOT NULL DEFAULT '',
    -- Contact JIDs separated by single spaces (a JID never contains one).
    info_contacts    TEXT    NOT NULL DEFAULT '',
    -- The group's picture and thumbnail: the URL or upload token a client gave.
    info_avatar      TEXT    NOT NULL DEFAULT '',
    info_thumbnail   TEXT    NOT NULL DEFAULT '',
    -- True when members see what was said before they joined.
    info_history     BOOLEAN NOT NULL DEFAULT TRUE,
    info_updated_at  BIGINT  NOT NULL,
    -- Messages in the archive, so that history can give its count without counting.
    message_count    BIGINT  NOT NULL DEFAULT 0,
    -- Membership settings: 0 open, 1 invitation only, 2 by request; true when only owners
    -- and admins may post; the group's member limit (NULL: the service's).
    join_policy      BIGINT  NOT NULL DEFAULT 0,
    muted            BOOLEAN NOT NULL DEFAULT FALSE,
    max_members      BIGINT,
    -- The picture's media type (`image/png`) when the client gave one.
    info_avatar_type TEXT    NOT NULL DEFAULT '',
    -- True when its creator named it to be found (a MIX create with a name); false for
    -- ad-hoc channels and FlyChat groups. Public (listed to anyone) = listed and join_policy 0.
    listed           BOOLEAN NOT NULL DEFAULT TRUE,
    -- TRUE when participants see each other's nicks and participant ids but not real JIDs
    -- (XEP-0404 'JID Hidden'; owners and admins still see them).
    jids_hidden      BOOLEAN NOT NULL DEFAULT FALSE,
    -- When roles, settings or mutes last changed (the XEP-0406 configuration item's id);
    -- 0 while they are as the channel was made.
    config_updated_at BIGINT NOT NULL DEFAULT 0
);

-- Owners who left a channel themselves, who may still delete it for a minute (the FlyChat
-- SDK's delete is the owner's exit, then the delete). Keyed by the channel's key, which is
-- never reused, so the right never reaches a later channel of the same name; no foreign key,
-- so that it outlives the channel its exit emptied (the delete after it is then accepted).
-- Rows older than the grace are dropped whenever one is added.
CREATE TABLE departed_owners (
    channel BIGINT NOT NULL,
    name    TEXT   COLLATE "C" NOT NULL,
    jid     TEXT   COLLATE "C" NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (channel, jid)
);

-- The allowed (list 0) and banned (list 1) lists: bare JIDs, or domains for a whole domain.
CREATE TABLE channel_access (
    channel BIGINT NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    list    BIGINT NOT NULL,
    entry   TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (channel, list, entry)
);

-- Invitations (kind 0, `by` the inviter) and join requests (kind 1) not yet answered;
-- `dialect` is the requester's (0 MIX, 1 FlyChat).
CREATE TABLE pending (
    channel BIGINT NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    jid     TEXT   COLLATE "C" NOT NULL,
    kind    BIGINT NOT NULL,
    by      TEXT   COLLATE "C" NOT NULL,
    at      BIGINT NOT NULL,
    dialect BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, jid)
);

-- Owners of a channel, who need not be participants.
CREATE TABLE channel_owners (
    channel BIGINT NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    jid     TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (channel, jid)
);

-- Participants: `id` is the stable participant id, `nodes` a bit set of subscribed nodes
-- (1 messages, 2 presence, 4 participants, 8 info, 16 config), `role` 0 member, 1 admin,
-- 2 owner, `dialect` the shape its client understands and for MIX how it is reached (0 MIX,
-- directly; 1 FlyChat; 2 MIX, through its server: XEP-0405), `muted_until` the
-- time before which it may not post (0: not muted).
CREATE TABLE participants (
    channel      BIGINT NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    jid          TEXT   COLLATE "C" NOT NULL,
    id           TEXT   NOT NULL,
    nick         TEXT   NOT NULL,
    nodes        BIGINT NOT NULL,
    role         BIGINT NOT NULL,
    dialect      BIGINT NOT NULL DEFAULT 0,
    joined_at    BIGINT NOT NULL,
    -- Messages up to this archive id are hidden from this participant's own history.
    cleared_upto BIGINT NOT NULL DEFAULT 0,
    muted_until  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, jid)
);

-- Clients online in a channel (XEP-0403): each participant's full JIDs (`jid` the bare JID,
-- `resource` the rest) that live deliveries go to. Kept so that a restart (or a standby's
-- takeover) does not silence the channel; an entry whose client went away meanwhile is
-- deleted when a delivery to it bounces. Goes with its participant.
CREATE TABLE presence (
    channel  BIGINT NOT NULL,
    jid      TEXT   COLLATE "C" NOT NULL,
    resource TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (channel, jid, resource),
    FOREIGN KEY (channel, jid) REFERENCES participants (channel, jid) ON DELETE CASCADE
);

-- The archive. `id` is the archive id, unique across the service and never reused
-- (`sequences`); clients never see it, only its opaque form (src/dialect/ids.rs: MAM
-- result id, reflected id, stanza-id). `content` is the message's children
-- as sent (the latest correction's), an XML fragment whose stanza-namespace elements carry
-- no xmlns; a retracted message keeps only its tombstone (`retracted_*`, content erased).
-- `client_id` is the id attribute of the sender's stanza; `media` marks file sharing.
-- No foreign key on `channel`: checking it would cost every insert; destroy deletes rows.
CREATE TABLE messages (
    id                BIGINT  PRIMARY KEY,
    channel           BIGINT  NOT NULL,
    at                BIGINT  NOT NULL,
    sender            TEXT    COLLATE "C" NOT NULL,
    nick              TEXT    NOT NULL,
    origin_id         TEXT    COLLATE "C",
    client_id         TEXT    COLLATE "C",
    media             BOOLEAN NOT NULL DEFAULT FALSE,
    content           TEXT    NOT NULL,
    edited_at         BIGINT,
    retracted_at      BIGINT,
    retracted_by      TEXT    COLLATE "C",
    -- True when a moderator retracted it (XEP-0425), with the reason if one was given.
    moderated         BOOLEAN NOT NULL DEFAULT FALSE,
    moderation_reason TEXT,
    -- A notice instead of a message (a group event: 1 created, 2 added, 3 left or removed,
    -- 4 profile updated, 5 made admin, and mixd's kinds 6–18 of src/core/notice.rs);
    -- `sender` did it, `notice_target` is whom it concerns.
    notice            BIGINT  NOT NULL DEFAULT 0,
    notice_target     TEXT    COLLATE "C",
    -- A member's action on the message `action_target` instead of a message: 1 its
    -- retraction (XEP-0424, `moderated` and `moderation_reason` as above for a moderator's),
    -- 2 its reactions (XEP-0444, `content` holds them, one a line; none: it took them back).
    -- Archived because clients that were away learn of them from the archive.
    action            BIGINT  NOT NULL DEFAULT 0,
    action_target     BIGINT,
    -- On a retracted message: the archive id of its retraction (the tombstone names it).
    retraction        BIGINT
);
CREATE INDEX messages_by_channel ON messages (channel, id);
-- History filtered by sender (MAM `with`) and media-only history, paged by id.
CREATE INDEX messages_by_sender ON messages (channel, sender, id);
CREATE INDEX messages_with_media ON messages (channel, id) WHERE media;
-- A message named by the id its sender gave it (origin-id or stanza id): an index probe each.
CREATE INDEX messages_by_origin_id ON messages (channel, origin_id) WHERE origin_id IS NOT NULL;
CREATE INDEX messages_by_client_id ON messages (channel, client_id) WHERE client_id IS NOT NULL;

-- Receipts and markers per member and message (XEP-0184, XEP-0333).
CREATE TABLE receipts (
    message      BIGINT NOT NULL,
    member       TEXT   COLLATE "C" NOT NULL,
    delivered_at BIGINT,
    displayed_at BIGINT,
    PRIMARY KEY (message, member)
);

-- Each member's current reactions to a message (XEP-0444), newline-separated.
CREATE TABLE reactions (
    message   BIGINT NOT NULL,
    member    TEXT   COLLATE "C" NOT NULL,
    reactions TEXT   COLLATE "C" NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (message, member)
);

-- Settings of this database that are not rows of anything else. `id_key`: the 16-byte
-- secret of the keyed permutation that turns archive ids into the ids clients see
-- (src/dialect/ids.rs); made when the database is opened first, and kept, so that ids stay
-- the same across restarts and standbys and differ between services.
CREATE TABLE meta (
    name  TEXT  COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);
