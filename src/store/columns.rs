//! Values that both backends keep in a column of their own making: how a participant takes
//! part, a channel's contacts, an archived action, the opaque ids' secret and the writer's
//! clock. Here once, so
//! that SQLite and PostgreSQL keep them alike and a database means the same to either.

use jid::BareJid;

use super::Action;
use crate::core::model::Reach;
use crate::core::{Dialect, Micros, Participant};

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
