//! A user's bare JID as the core holds it: one allocation per user, shared by every
//! membership and by the directory, instead of a `BareJid` (32 bytes and a heap string of
//! its own) in each. At ten million memberships of a million users that is 500 MB less, and
//! loading parses each user's JID once instead of once per membership.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use jid::BareJid;

/// A participant's bare JID, cheap to clone (a reference count). Reads as a `BareJid`
/// (`Deref`), compares with one, and finds entries keyed by it (`Borrow`): it hashes as the
/// `BareJid` it holds, which hashes its text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserJid(Arc<BareJid>);

impl UserJid {
    /// The plain `BareJid`, for what outlives the core's state (facts' texts, the wire).
    pub fn to_bare(&self) -> BareJid {
        (*self.0).clone()
    }
}

/// The bare part of a JID's text: up to its first '/' (a node or a domain has none). Read in
/// place, where `to_bare` builds a new JID: a client's presence, a join from a client.
pub fn bare_text(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

impl Deref for UserJid {
    type Target = BareJid;

    fn deref(&self) -> &BareJid {
        &self.0
    }
}

impl Borrow<BareJid> for UserJid {
    fn borrow(&self) -> &BareJid {
        &self.0
    }
}

/// Lets the loader find a user by the text of a stored row without parsing it: a `BareJid`
/// compares and hashes as its normalized text.
impl Borrow<str> for UserJid {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl Hash for UserJid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0).hash(state)
    }
}

impl From<BareJid> for UserJid {
    fn from(jid: BareJid) -> Self {
        UserJid(Arc::new(jid))
    }
}

impl PartialEq<BareJid> for UserJid {
    fn eq(&self, other: &BareJid) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<UserJid> for BareJid {
    fn eq(&self, other: &UserJid) -> bool {
        *self == *other.0
    }
}

impl fmt::Display for UserJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for UserJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Each user's channels by its shared JID: the directory's map, which loading fills.
pub(super) type Memberships = hashbrown::HashMap<UserJid, Vec<i64>, RandomState>;

/// The users met while loading, each with the keys of the channels it owns or takes part in: a
/// user's memberships share its one [`UserJid`], and the directory is made of these lists
/// (one look-up a membership for both).
#[derive(Default)]
pub struct UserJids(pub(super) Memberships);

/// By JID, so that two loads of the same state show alike (the map's order is its hasher's).
impl fmt::Debug for UserJids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<_> = self.0.iter().collect();
        users.sort_unstable_by(|a, b| a.0.cmp(b.0));
        f.debug_map().entries(users).finish()
    }
}

impl UserJids {
    /// The shared JID whose text is `text`, noted as an owner or participant of channel `key`: found
    /// without parsing when it was met before in its normalized form (as the store writes
    /// it), else parsed once.
    pub fn member(&mut self, text: &str, key: i64) -> Result<UserJid, jid::Error> {
        if let Some((known, keys)) = self.0.get_key_value_mut(text) {
            note(keys, key);
            return Ok(known.clone());
        }
        let jid = BareJid::new(text)?;
        if let Some((known, keys)) = self.0.get_key_value_mut(&jid) {
            note(keys, key);
            return Ok(known.clone());
        }
        let user = UserJid::from(jid);
        self.0.insert(user.clone(), vec![key]);
        Ok(user)
    }

    /// The users of `channels` as loading would have met them (for snapshots made in tests
    /// from a running core's channels).
    #[cfg(test)]
    pub fn of(channels: &[Box<super::Channel>]) -> UserJids {
        let mut users = UserJids::default();
        for channel in channels {
            for participant in channel.participants.iter() {
                note(
                    users.0.entry(participant.jid.clone()).or_default(),
                    channel.key,
                );
            }
            for owner in &channel.owners {
                users.member(owner.as_str(), channel.key).unwrap();
            }
        }
        users
    }
}

/// Adds `key` to a sorted list of channel keys, once (loading, which goes in key order,
/// appends).
pub(super) fn note(keys: &mut Vec<i64>, key: i64) {
    match keys.last() {
        Some(&last) if last >= key => {
            if let Err(at) = keys.binary_search(&key) {
                keys.insert(at, key);
            }
        }
        _ => keys.push(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_met_twice_is_one_allocation_and_reads_as_its_bare_jid() {
        let mut users = UserJids::default();
        let first = users.member("alice@localhost", 3).unwrap();
        let again = users.member("alice@localhost", 1).unwrap();
        assert!(Arc::ptr_eq(&first.0, &again.0));
        // Unnormalized text finds the same user once parsed.
        let upper = users.member("alice@LOCALHOST", 2).unwrap();
        assert!(Arc::ptr_eq(&first.0, &upper.0));
        // Its channels, sorted, each once.
        users.member("alice@localhost", 2).unwrap();
        assert_eq!(users.0[&first], [1, 2, 3]);
        let bare: BareJid = "alice@localhost".parse().unwrap();
        assert_eq!(first, bare);
        assert_eq!(first.to_string(), "alice@localhost");
        assert!(users.member("not a jid@", 1).is_err());
        let keyed: std::collections::HashSet<UserJid> = [first].into();
        assert!(keyed.contains(&bare));
    }

    #[test]
    fn the_bare_text_of_a_jid_is_its_bare_jid_as_written() {
        for text in [
            "alice@localhost/phone/with/slashes",
            "alice@localhost",
            "localhost/r",
        ] {
            let jid: jid::Jid = text.parse().unwrap();
            assert_eq!(bare_text(jid.as_str()), jid.to_bare().as_str());
        }
    }
}
