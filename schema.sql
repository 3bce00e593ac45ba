-- The whole mixd schema, at the version in `PRAGMA user_version` that src/store/migrate.rs
-- names LATEST. A new database gets this file; an older one gets the migrations after its
-- version. Times are microseconds since the Unix epoch; JIDs are normalized bare JIDs.

-- A channel and its information node (XEP-0369 §7.2). The key is what the hot tables use.
CREATE TABLE channels (
    key              INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    info_name        TEXT    NOT NULL DEFAULT '',
    info_description TEXT    NOT NULL DEFAULT '',
    -- Contact JIDs separated by single spaces (a JID never contains one).
    info_contacts    TEXT    NOT NULL DEFAULT '',
    -- The group's picture and thumbnail: the URL or upload token a client gave.
    info_avatar      TEXT    NOT NULL DEFAULT '',
    info_thumbnail   TEXT    NOT NULL DEFAULT '',
    -- 1 when members see what was said before they joined.
    info_history     INTEGER NOT NULL DEFAULT 1,
    info_updated_at  INTEGER NOT NULL,
    -- Messages in the archive (retractions and reactions too, not notices), so that history
    -- can give its count without counting: those at or below the watermark of deferred
    -- look-up entries (`meta.indexed_upto`), which the fill raises; a reader adds the
    -- channel's rows above it (src/store/sqlite/deferred.rs).
    message_count    INTEGER NOT NULL DEFAULT 0,
    -- Membership settings: 0 open, 1 invitation only, 2 by request; 1 when only owners and
    -- admins may post; the group's member limit (NULL: the service's).
    join_policy      INTEGER NOT NULL DEFAULT 0,
    muted            INTEGER NOT NULL DEFAULT 0,
    max_members      INTEGER,
    -- The picture's media type (`image/png`) when the client gave one.
    info_avatar_type TEXT    NOT NULL DEFAULT '',
    -- 1 when its creator named it to be found (a MIX create with a name); 0 for ad-hoc
    -- channels and FlyChat groups. Public (listed to anyone) = listed and join_policy 0.
    listed           INTEGER NOT NULL DEFAULT 1,
    -- 1 when participants see each other's nicks and participant ids but not real JIDs
    -- (XEP-0404 'JID Hidden'; owners and admins still see them).
    jids_hidden      INTEGER NOT NULL DEFAULT 0,
    -- When roles, settings or mutes last changed (the XEP-0406 configuration item's id);
    -- 0 while they are as the channel was made.
    config_updated_at INTEGER NOT NULL DEFAULT 0
);

-- Owners who left a channel themselves, who may still delete it for a minute (the FlyChat
-- SDK's delete is the owner's exit, then the delete). Keyed by the channel's key, which is
-- never reused, so the right never reaches a later channel of the same name; no foreign key,
-- so that it outlives the channel its exit emptied (the delete after it is then accepted).
-- Rows older than the grace are dropped whenever one is added.
CREATE TABLE departed_owners (
    channel INTEGER NOT NULL,
    name    TEXT    NOT NULL,
    jid     TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (channel, jid)
) WITHOUT ROWID;

-- The allowed (list 0) and banned (list 1) lists: bare JIDs, or domains for a whole domain.
CREATE TABLE channel_access (
    channel INTEGER NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    list    INTEGER NOT NULL,
    entry   TEXT    NOT NULL,
    PRIMARY KEY (channel, list, entry)
) WITHOUT ROWID;

-- Invitations (kind 0, `by` the inviter) and join requests (kind 1) not yet answered;
-- `dialect` is the requester's (0 MIX, 1 FlyChat).
CREATE TABLE pending (
    channel INTEGER NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    jid     TEXT    NOT NULL,
    kind    INTEGER NOT NULL,
    by      TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    dialect INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, jid)
) WITHOUT ROWID;

-- Owners of a channel, who need not be participants.
CREATE TABLE channel_owners (
    channel INTEGER NOT NULL REFERENCES channels (key) ON DELETE CASCADE,
    jid     TEXT    NOT NULL,
    PRIMARY KEY (channel, jid)
) WITHOUT ROWID;

-- Participants: `id` is the stable participant id, `nodes` a bit set of subscribed nodes
-- (1 messages, 2 presence, 4 participants, 8 info, 16 config), `role` 0 member, 1 admin,
-- 2 owner, `dialect` the shape its client understands and for MIX how it is reached (0 MIX,
-- directly; 1 FlyChat; 2 MIX, through its server: XEP-0405), `muted_until` the
-- time before which it may not post (0: not muted). The foreign keys of participants and
-- presence are checked at the commit (a batch whose rows name no channel or participant
-- fails whole, as before): an immediate one gave each multi-row insert of a run of joins a
-- statement journal (docs/benchmarks.md, issue 16, branch `joins7`).
CREATE TABLE participants (
    channel   INTEGER NOT NULL REFERENCES channels (key) ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED,
    jid       TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    nick      TEXT    NOT NULL,
    nodes     INTEGER NOT NULL,
    role      INTEGER NOT NULL,
    dialect   INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    -- Messages up to this archive id are hidden from this participant's own history.
    cleared_upto INTEGER NOT NULL DEFAULT 0,
    muted_until  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, jid)
) WITHOUT ROWID;

-- Clients online in a channel (XEP-0403): each participant's full JIDs (`jid` the bare JID,
-- `resource` the rest) that live deliveries go to. Kept so that a restart does not silence
-- the channel (clients never send presence again by themselves); an entry whose client went
-- away meanwhile is deleted when a delivery to it bounces. Goes with its participant, which
-- the writer deletes it with (src/store/sqlite/write.rs): no foreign key, whose probe of the
-- participant's key cost every join's client a B-tree seek (schema 15; docs/benchmarks.md,
-- issue 16, branch `joins8`).
CREATE TABLE presence (
    channel  INTEGER NOT NULL,
    jid      TEXT    NOT NULL,
    resource TEXT    NOT NULL,
    PRIMARY KEY (channel, jid, resource)
) WITHOUT ROWID;

-- The archive. `id` is the archive id, unique across the service and never reused
-- (AUTOINCREMENT); clients never see it, only its opaque form (src/dialect/ids.rs: MAM
-- result id, reflected id, stanza-id). `content` is the message's children
-- as sent (the latest correction's), an XML fragment whose stanza-namespace elements carry
-- no xmlns; a retracted message keeps only its tombstone (`retracted_*`, content erased).
-- `client_id` is the id attribute of the sender's stanza; `media` marks file sharing.
-- No foreign key on `channel`: checking it would cost every insert; destroy deletes rows.
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    channel           INTEGER NOT NULL,
    at                INTEGER NOT NULL,
    sender            TEXT    NOT NULL,
    nick              TEXT    NOT NULL,
    origin_id         TEXT,
    client_id         TEXT,
    media             INTEGER NOT NULL DEFAULT 0,
    content           TEXT    NOT NULL,
    edited_at         INTEGER,
    retracted_at      INTEGER,
    retracted_by      TEXT,
    -- 1 when a moderator retracted it (XEP-0425), with the reason if one was given.
    moderated         INTEGER NOT NULL DEFAULT 0,
    moderation_reason TEXT,
    -- A notice instead of a message (a group event: 1 created, 2 added, 3 left or removed,
    -- 4 profile updated, 5 made admin, and mixd's kinds 6–18 of src/core/notice.rs);
    -- `sender` did it, `notice_target` is whom it concerns.
    notice            INTEGER NOT NULL DEFAULT 0,
    notice_target     TEXT,
    -- A member's action on the message `action_target` instead of a message: 1 its
    -- retraction (XEP-0424, `moderated` and `moderation_reason` as above for a moderator's),
    -- 2 its reactions (XEP-0444, `content` holds them, one a line; none: it took them back).
    -- Archived because clients that were away learn of them from the archive.
    action            INTEGER NOT NULL DEFAULT 0,
    action_target     INTEGER,
    -- On a retracted message: the archive id of its retraction (the tombstone names it).
    retraction        INTEGER,
    -- 1 while a post's look-up entries (by channel, sender, client id, origin-id: the
    -- partial indexes below) are not yet entered: posts are stored with only their row and
    -- an entry in `tail`, and the writer enters many channels' entries at once
    -- (src/store/sqlite/deferred.rs); every row up to `meta.indexed_upto` has them.
    deferred          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_channel ON messages (channel, id) WHERE deferred = 0;
-- The posts not yet entered (`deferred = 1`), by channel: what `(channel, id)` above holds of
-- the other rows. A few dozen pages at most (src/store/sqlite/deferred.rs bounds them), so a
-- commit of posts into many channels dirties those instead of a leaf of the index a channel.
CREATE TABLE tail (
    channel INTEGER NOT NULL,
    id      INTEGER NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;
-- History filtered by sender (MAM `with`) and media-only history (MAM's media field, the
-- FlyChat SDK's media list), paged by id like the rest: the index's entries end with the
-- rowid, the archive id. The media one holds only media rows. A sender's messages and
-- notices are in two indexes, so that a page `with` a sender that leaves notices out (MAM's
-- default) is counted from its index alone, without reading a row of the table for its
-- `notice` (src/store/sqlite/history.rs).
CREATE INDEX messages_by_sender ON messages (channel, sender) WHERE deferred = 0 AND notice = 0;
CREATE INDEX notices_by_sender ON messages (channel, sender) WHERE deferred = 0 AND notice != 0;
CREATE INDEX messages_with_media ON messages (channel, id) WHERE media = 1;
-- A message named by the id its sender gave it (an XEP-0359 origin-id, or the stanza's id:
-- what MIX retractions, corrections and reactions and the FlyChat SDK's look-ups name), so
-- that a reference to no message costs an index probe, not a read of the channel's archive.
-- An origin-id equal to the stanza's id (what most MIX clients send) is found by the
-- client id's entry: the origin-id's index holds only those that differ.
CREATE INDEX messages_by_origin_id ON messages (channel, origin_id)
    WHERE deferred = 0 AND origin_id IS NOT NULL AND origin_id IS NOT client_id;
CREATE INDEX messages_by_client_id ON messages (channel, client_id)
    WHERE deferred = 0 AND client_id IS NOT NULL;

-- Receipts and markers per member and message (XEP-0184, XEP-0333).
CREATE TABLE receipts (
    message      INTEGER NOT NULL,
    member       TEXT    NOT NULL,
    delivered_at INTEGER,
    displayed_at INTEGER,
    PRIMARY KEY (message, member)
) WITHOUT ROWID;

-- Each member's current reactions to a message (XEP-0444), newline-separated.
CREATE TABLE reactions (
    message   INTEGER NOT NULL,
    member    TEXT    NOT NULL,
    reactions TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (message, member)
) WITHOUT ROWID;

-- Settings of this database that are not rows of anything else. `id_key`: the 16-byte
-- secret of the keyed permutation that turns archive ids into the ids clients see
-- (src/dialect/ids.rs); made from the OS's randomness when the database is opened first, and
-- kept, so that ids stay the same across restarts and differ between services.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
-- `indexed_upto`: the archive id up to which every row's look-up entries are entered (see
-- `messages.deferred`); rows above it not yet entered are read through `tail`.
INSERT INTO meta (name, value) VALUES ('indexed_upto', 0);
