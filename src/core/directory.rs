//! Who is in which group: the channels each user takes part in or owns, kept beside the
//! channels so that "my groups" answers without looking at every channel (at 100,000
//! channels a scan took 17 ms of the one thread that runs the rules).

use hashbrown::hash_map::Entry;
use jid::BareJid;

use super::user::{note, Memberships};
use super::{Fact, UserJid, UserJids};

#[derive(Debug, Default)]
pub struct Directory {
    /// Channel keys by user, sorted. Keyed by the JID the user's memberships share, so a
    /// user costs no JID of its own here.
    by_user: Memberships,
}

impl Directory {
    /// From the users the loading met, each with the channels it owns or takes part in.
    pub fn new(users: UserJids) -> Self {
        // The lists are left as they grew (about a third more room than they hold): shrunk
        // in place, each left a small free chunk behind, a million of them in the allocator's
        // bins, which the first requests served after the start then sorted, ten thousand
        // at a time (a p99 of 2 ms for "my groups" at ten million memberships).
        Directory { by_user: users.0 }
    }

    /// The keys of the channels `user` takes part in or owns.
    pub fn of(&self, user: &BareJid) -> &[i64] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }

    /// `user`'s JID as its memberships share it, for one more of them (a new one for a user
    /// in no channel yet).
    pub fn shared(&self, user: &BareJid) -> UserJid {
        match self.by_user.get_key_value(user) {
            Some((shared, _)) => shared.clone(),
            None => UserJid::from(user.clone()),
        }
    }

    /// Follows a fact the core applies.
    pub fn record(&mut self, fact: &Fact) {
        match fact {
            Fact::ChannelCreated { key, owner, .. } => self.add_owner(owner, *key),
            Fact::Joined {
                key, participant, ..
            } => self.add(&participant.jid, *key),
            // Leaving gives up ownership too.
            Fact::Left {
                key, participant, ..
            } => self.remove(&participant.jid, *key),
            Fact::ChannelDestroyed { channel, .. } => {
                let members = channel.participants.iter().map(|p| &*p.jid);
                for user in members.chain(&channel.owners) {
                    self.remove(user, channel.key);
                }
            }
            _ => {}
        }
    }

    /// An owner need not take part: its JID is the one its memberships share if it has any
    /// (met before or after), else its own.
    fn add_owner(&mut self, owner: &BareJid, key: i64) {
        self.add(&self.shared(owner), key);
    }

    fn add(&mut self, user: &UserJid, key: i64) {
        // One look-up (the JID hashed once), whether the user was met before or not: a
        // newcomer's join used to hash it for the look-up and again for the insert.
        match self.by_user.entry(user.clone()) {
            Entry::Occupied(mut keys) => note(keys.get_mut(), key),
            Entry::Vacant(entry) => {
                entry.insert(vec![key]);
            }
        }
    }

    fn remove(&mut self, user: &BareJid, key: i64) {
        if let Some(keys) = self.by_user.get_mut(user) {
            if let Ok(at) = keys.binary_search(&key) {
                keys.remove(at);
            }
            if keys.is_empty() {
                self.by_user.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Groups;

    fn names(g: &Groups, user: &str) -> Vec<String> {
        let mut names: Vec<_> = g.groups_of(&jid(user)).map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn follows_creation_joins_leaves_and_deletion() {
        let mut g = coven();
        g.create(&jid("bob@localhost"), Some("tower"), 5).unwrap();
        assert_eq!(names(&g, "alice@localhost"), ["coven"]);
        // Bob owns the tower without taking part in it.
        assert_eq!(names(&g, "bob@localhost"), ["coven", "tower"]);
        g.leave("coven", &jid("bob@localhost"), 6).unwrap();
        assert_eq!(names(&g, "bob@localhost"), ["tower"]);
        g.destroy(&jid("bob@localhost"), "tower", 7).unwrap();
        assert!(names(&g, "bob@localhost").is_empty());
        let again = Groups::new(
            g.rules.clone(),
            super::super::Snapshot::of(g.channels().cloned().map(Box::new).collect()),
        );
        assert_eq!(names(&again, "alice@localhost"), ["coven"]);
    }
}
