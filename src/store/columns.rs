//! Values that both backends keep in a column of their own making: how a participant takes
//! part, a channel's contacts, an archived action, the opaque ids' secret and the writer's
//! clock; and the rows both read alike (an archived message, [`archived`]), decoded once
//! through [`Row`]. Here once, so that SQLite and PostgreSQL keep them alike and a database
//! means the same to either.

use anyhow::Context;
use jid::BareJid;

use super::{Action, Archived, Tombstone};
use crate::core::model::Reach;
use crate::core::{
    Administration, Channel, Dialect, Info, JoinPolicy, Micros, NoticeKind, Participant, Posted,
    Roster, Settings, Submission,
};

/// A value both drivers read from a column: integers, text, booleans, and those or NULL.
pub trait Value: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Value for T {}

/// A result row of either backend, read by column position.
pub trait Row {
    fn column<T: Value>(&self, i: usize) -> anyhow::Result<T>;
    /// A text column read in place, not copied into a `String` (the start-up reads ten
    /// million rows).
    fn text(&self, i: usize) -> anyhow::Result<&str>;
}

impl Row for rusqlite::Row<'_> {
    fn column<T: Value>(&self, i: usize) -> anyhow::Result<T> {
        Ok(self.get(i)?)
    }

    fn text(&self, i: usize) -> anyhow::Result<&str> {
        Ok(self.get_ref(i)?.as_str()?)
    }
}

impl Row for postgres::Row {
    fn column<T: Value>(&self, i: usize) -> anyhow::Result<T> {
        Ok(self.try_get(i)?)
    }

    fn text(&self, i: usize) -> anyhow::Result<&str> {
        Ok(self.try_get(i)?)
    }
}

/// A bare JID from a text column; one that does not parse fails the read rather than
/// panicking.
pub fn bare(text: String) -> anyhow::Result<BareJid> {
    BareJid::new(&text).with_context(|| format!("stored JID {text:?} does not parse"))
}

/// The columns [`archived`] reads, in its order.
pub const ARCHIVED_COLUMNS: &str =
    "id, channel, at, sender, nick, origin_id, client_id, media, content,
     edited_at, retracted_at, retracted_by, moderated, moderation_reason, notice, notice_target,
     action, action_target, retraction";

/// An archived message, group event or action from a row of [`ARCHIVED_COLUMNS`] (its
/// reactions are filled in by the page that reads it).
pub fn archived(row: &impl Row) -> anyhow::Result<Archived> {
    let moderated = || -> anyhow::Result<Option<Option<String>>> {
        row.column::<bool>(12)?.then(|| row.column(13)).transpose()
    };
    let action = action(row.column(16)?, row.column(17)?, moderated, || {
        row.column(8)
    })?;
    let retraction = match row.column::<Option<i64>>(10)? {
        Some(at) => Some(Tombstone {
            retraction: row.column(18)?,
            at,
            by: bare(row.column(11)?)?,
            moderated: moderated()?,
        }),
        None => None,
    };
    Ok(Archived {
        action,
        posted: Posted {
            id: row.column(0)?,
            channel: row.column(1)?,
            at: row.column(2)?,
            sender: bare(row.column(3)?)?,
            nick: row.column(4)?,
            submission: Submission {
                origin_id: row.column(5)?,
                client_id: row.column(6)?,
                media: row.column(7)?,
                content: row.column(8)?,
            },
        },
        edited_at: row.column(9)?,
        retraction,
        reactions: Vec::new(),
        notice: match NoticeKind::from_i64(row.column(14)?) {
            Some(kind) => Some((
                kind,
                row.column::<Option<String>>(15)?.map(bare).transpose()?,
            )),
            None => None,
        },
    })
}

/// How a participant takes part, as the `participants.dialect` column keeps it: its
/// dialect, and for MIX how it is reached. `0` and `1` are what the column always held (MIX,
/// FlyChat); `2` is new, a MIX participant whose server joined for it (XEP-0405), so that the
/// schema need not change and an older mixd reads it as MIX (reached at its clients).
/// [`mode`] reads it back.
pub fn mode_code(p: &Participant) -> i64 {
    match (p.dialect, p.reach) {
        (Dialect::Mix, Reach::Direct) => 0,
        (Dialect::FlyChat, Reach::Direct | Reach::Server) => 1,
        (Dialect::Mix, Reach::Server) => 2,
    }
}

/// A participant's dialect and reach from the `participants.dialect` column, as
/// [`mode_code`] keeps them. A FlyChat participant's reach is not kept (its dialect always
/// tells it at its bare JID): it comes back as the default.
pub fn mode(code: i64) -> (Dialect, Reach) {
    match code {
        2 => (Dialect::Mix, Reach::Server),
        code => (Dialect::from_i64(code), Reach::Direct),
    }
}

/// The `messages.action` column: a retraction (XEP-0424), a member's reactions (XEP-0444);
/// 0 for neither.
pub const ACTION_RETRACTION: i64 = 1;
pub const ACTION_REACTIONS: i64 = 2;

/// An archived row's action from its `action` and `action_target` columns; `moderated` and
/// `content` are read only for the action that keeps something in them (a retraction's
/// moderation, the reactions one a line).
pub fn action<E>(
    code: i64,
    target: Option<i64>,
    moderated: impl FnOnce() -> Result<Option<Option<String>>, E>,
    content: impl FnOnce() -> Result<String, E>,
) -> Result<Option<Action>, E> {
    Ok(match (code, target) {
        (ACTION_RETRACTION, Some(target)) => Some(Action::Retraction {
            target,
            moderated: moderated()?,
        }),
        (ACTION_REACTIONS, Some(target)) => Some(Action::Reactions {
            target,
            reactions: content()?
                .split('\n')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        }),
        _ => None,
    })
}

/// A channel's contacts as one column, separated by spaces (which no JID holds);
/// [`contacts`] splits them back.
pub fn contacts_text(contacts: &[BareJid]) -> String {
    contacts
        .iter()
        .map(|j| j.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The contacts [`contacts_text`] kept; a word that is no longer a JID is skipped.
pub fn contacts(text: &str) -> Vec<BareJid> {
    text.split_whitespace()
        .filter_map(|j| BareJid::new(j).ok())
        .collect()
}

/// A new secret for the opaque ids clients see (`dialect::ids`), from the OS's randomness;
/// each backend stores the first one made in its `meta` table and reads it back after.
pub fn new_id_key() -> anyhow::Result<[u8; 16]> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS for the id key: {e}"))?;
    Ok(key)
}

/// The stored id key as the 16 bytes it must be.
pub fn id_key_from(stored: Vec<u8>) -> anyhow::Result<[u8; 16]> {
    stored
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored id key is not 16 bytes"))
}

/// The writer's clock, for what a fact carries no time of: a departed owner's exit (a `Left`
/// has none). The writer commits within moments of the rules deciding it (the same clock, a
/// group commit away), which against a grace of a minute only errs by that commit's delay.
pub fn writer_now() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// The columns [`channel`] reads, in its order.
pub const CHANNEL_COLUMNS: &str = "key, name, created_by, created_at, info_name, info_description,
     info_contacts, info_updated_at, info_avatar, info_thumbnail, info_history, join_policy,
     muted, max_members, info_avatar_type, listed, jids_hidden, config_updated_at";

/// A channel from a row of [`CHANNEL_COLUMNS`], without its participants, owners and the
/// administration kept in other tables (the start-up load adds them).
pub fn channel(row: &impl Row) -> anyhow::Result<Channel> {
    let contacts_text: String = row.column(6)?;
    let settings = Settings {
        policy: JoinPolicy::from_i64(row.column(11)?),
        muted: row.column(12)?,
        max_members: row.column::<Option<i64>>(13)?.map(|m| m as usize),
        jids_hidden: row.column(16)?,
    };
    let mut channel = Channel {
        key: row.column(0)?,
        name: row.column(1)?,
        listed: row.column(15)?,
        created_by: bare(row.column(2)?)?,
        created_at: row.column(3)?,
        info: Info {
            name: row.column(4)?,
            description: row.column(5)?,
            contacts: contacts(&contacts_text),
            updated_at: row.column(7)?,
            avatar: row.column(8)?,
            avatar_type: row.column(14)?,
            thumbnail: row.column(9)?,
            history_visible: row.column(10)?,
        },
        participants: Roster::default(),
        owners: Vec::new(),
        administration: (settings != Settings::default()).then(|| {
            Box::new(Administration {
                settings,
                ..Administration::default()
            })
        }),
    };
    let configured_at: i64 = row.column(17)?;
    if configured_at != 0 {
        channel.administration_mut().configured_at = configured_at;
    }
    Ok(channel)
}
