//! A channel's participants in order of joining, found by JID, nick and participant id in
//! constant time once the channel is large: a join checks the JID and the nick, delivery
//! asks whether anyone follows a node or speaks FlyChat, and at 10,000 participants each of
//! those scans made the last join of a channel a hundred times slower than its first.
//!
//! Small channels (most of a service's: a million channels of ten) keep only the list, which
//! a scan reads faster than a hash map and which costs nothing more in memory; the index is
//! made when a channel grows past [`INDEXED_FROM`] participants.
//!
//! Every change goes through these methods, so the index never disagrees with the list; a
//! reader sees the list as a slice (`Deref`), in order of joining.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use compact_str::CompactString;
use jid::BareJid;

use super::model::{Dialect, Nodes, Online, Participant, ParticipantId};
use super::UserJid;

/// From this many participants on, a channel keeps its index.
pub const INDEXED_FROM: usize = 32;

/// The MIX nodes, each counted separately (see [`Index::followers`]).
const NODES: [Nodes; 5] = [
    Nodes::MESSAGES,
    Nodes::PRESENCE,
    Nodes::PARTICIPANTS,
    Nodes::INFO,
    Nodes::CONFIG,
];

#[derive(Clone, Default)]
pub struct Roster {
    list: Vec<Participant>,
    index: Option<Box<Index>>,
}

/// Where each participant is, by a number that grows with each newcomer (`places`), so that
/// one leaving moves nobody else's entry: a participant's position in the list is found by a
/// binary search of its place among the places, which stay sorted.
#[derive(Debug, Clone, Default)]
struct Index {
    /// The place of each participant of the list, at the same position.
    places: Vec<u32>,
    next_place: u32,
    by_jid: HashMap<UserJid, u32>,
    by_id: HashMap<ParticipantId, u32, BuildHasherDefault<IdHasher>>,
    /// By nick in ASCII lowercase (nicks compare without case): the place of one holder and
    /// how many hold it (several only in data from before nicks were unique).
    by_nick: HashMap<CompactString, Holders>,
    /// Subscribers of each of [`NODES`].
    followers: [u32; NODES.len()],
    /// Of those, the ones a MIX event reaches now ([`Participant::reached_by_mix_now`]).
    reached: [u32; NODES.len()],
    flychat: u32,
}

/// Participant ids are a keyed hash of channel and JID, or random after a collision
/// (`core/join.rs`): already spread over 64 bits, and no client can choose one, so they are
/// their own hash, with none of the keyed hashing that JIDs and nicks need.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Holders {
    place: u32,
    count: u32,
}

/// The list only: the index is made from it, and its maps' order differs from one map to the
/// next (two snapshots of the same participants must print alike).
impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

impl PartialEq for Roster {
    fn eq(&self, other: &Roster) -> bool {
        self.list == other.list
    }
}

impl Eq for Roster {}

impl std::ops::Deref for Roster {
    type Target = [Participant];

    fn deref(&self) -> &[Participant] {
        &self.list
    }
}

impl<'a> IntoIterator for &'a Roster {
    type Item = &'a Participant;
    type IntoIter = std::slice::Iter<'a, Participant>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl IntoIterator for Roster {
    type Item = Participant;
    type IntoIter = std::vec::IntoIter<Participant>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

impl FromIterator<Participant> for Roster {
    fn from_iter<I: IntoIterator<Item = Participant>>(participants: I) -> Self {
        let mut roster = Roster::default();
        for participant in participants {
            roster.put(participant);
        }
        roster
    }
}

impl Roster {
    /// The roster of `list`, participants in order of joining, each of its own JID (as
    /// loading reads them: the store's primary key), the list kept as it is sized.
    pub fn loaded(list: Vec<Participant>) -> Roster {
        let mut roster = Roster { list, index: None };
        if roster.list.len() >= INDEXED_FROM {
            roster.build_index();
        }
        roster
    }

    /// The participant whose bare JID is `jid`.
    pub fn get(&self, jid: &BareJid) -> Option<&Participant> {
        self.position(jid).map(|at| &self.list[at])
    }

    pub fn by_id(&self, id: ParticipantId) -> Option<&Participant> {
        match &self.index {
            Some(index) => index
                .by_id
                .get(&id)
                .map(|&place| &self.list[index.at(place)]),
            None => self.list.iter().find(|p| p.id == id),
        }
    }

    /// Whether a participant other than `other_than` has `nick`, in any case.
    pub fn nick_taken(&self, nick: &str, other_than: &BareJid) -> bool {
        let Some(index) = &self.index else {
            return self
                .list
                .iter()
                .any(|p| &p.jid != other_than && p.nick.eq_ignore_ascii_case(nick));
        };
        match index.by_nick.get(&folded(nick)) {
            None => false,
            Some(holders) if holders.count > 1 => true,
            Some(holders) => &self.list[index.at(holders.place)].jid != other_than,
        }
    }

    /// The participants subscribed to `node`: none at all, without looking at each, when a
    /// large channel's count says so.
    pub fn subscribers(&self, node: Nodes) -> impl Iterator<Item = &Participant> + Clone {
        let none = self.index.as_ref().is_some_and(|i| i.followers(node) == 0);
        let list = if none { &[][..] } else { &self.list[..] };
        list.iter().filter(move |p| p.nodes.contains(node))
    }

    /// Whether a subscriber of `node` other than `except` is reached by a MIX event now
    /// ([`Participant::reached_by_mix_now`]). A large channel counts them for each node, so
    /// that a join to one whose 10,000 followers are all offline does not look at each.
    pub fn any_reached(&self, node: Nodes, except: Option<&BareJid>) -> bool {
        let reached = |p: &Participant| p.nodes.contains(node) && p.reached_by_mix_now();
        let counted = self.index.as_ref().and_then(|index| {
            let at = NODES.iter().position(|n| *n == node)?;
            Some(index.reached[at])
        });
        match counted {
            // The one excepted matters only when it may be the one reached: looked up then
            // only (a join's broadcast excepts the joiner, of thousands reached).
            Some(0) => false,
            Some(1) => !except.and_then(|jid| self.get(jid)).is_some_and(reached),
            Some(_) => true,
            // A small channel, or several nodes at once: not counted.
            None => self
                .list
                .iter()
                .any(|p| Some(&*p.jid) != except && reached(p)),
        }
    }

    /// Whether any participant's client speaks `dialect`.
    pub fn any_speaks(&self, dialect: Dialect) -> bool {
        match (&self.index, dialect) {
            (Some(index), Dialect::FlyChat) => index.flychat > 0,
            (Some(index), Dialect::Mix) => (index.flychat as usize) < self.list.len(),
            (None, _) => self.list.iter().any(|p| p.dialect == dialect),
        }
    }

    /// Adds `participant`, or puts it in the place of the participant with its JID (joining
    /// again keeps the place in the order of joining).
    pub fn put(&mut self, participant: Participant) {
        let Some(index) = &mut self.index else {
            match self.position(&participant.jid) {
                Some(at) => self.change_at(at, |p| *p = participant),
                None => {
                    self.list.push(participant);
                    if self.list.len() >= INDEXED_FROM {
                        self.build_index();
                    }
                }
            }
            return;
        };
        // The JID hashed once, for the look-up and a newcomer's entry (a look-up and then an
        // insert hashed it twice, at every join: docs/benchmarks.md, `joins8`).
        let place = index.next_place;
        let found = match index.by_jid.entry(participant.jid.clone()) {
            Entry::Occupied(entry) => Some(*entry.get()),
            Entry::Vacant(entry) => {
                entry.insert(place);
                None
            }
        };
        match found {
            Some(found) => {
                let at = index.at(found);
                self.change_at(at, |p| *p = participant);
            }
            None => {
                index.next_place += 1;
                index.places.push(place);
                self.list.push(participant);
                index.enter(&self.list[self.list.len() - 1], place);
            }
        }
    }

    /// Takes the participant `jid` out; returns it.
    pub fn remove(&mut self, jid: &BareJid) -> Option<Participant> {
        let at = self.position(jid)?;
        let removed = self.list.remove(at);
        if let Some(index) = &mut self.index {
            let place = index.places.remove(at);
            index.take(&removed, place);
            index.rehome_nick(&removed.nick, &self.list);
        }
        Some(removed)
    }

    /// Changes the participant `jid` as `change` says, whatever it changes; returns whether
    /// there was one.
    pub fn update(&mut self, jid: &BareJid, change: impl FnOnce(&mut Participant)) -> bool {
        let Some(at) = self.position(jid) else {
            return false;
        };
        self.change_at(at, change);
        true
    }

    /// Changes the clients online of the participant whose bare JID's text is `jid` (a
    /// client's, read in place: [`super::bare_text`]), which the index does not hold: presence
    /// (a client in, a client out) re-indexes nothing. Returns whether there was one.
    pub fn update_online(&mut self, jid: &str, change: impl FnOnce(&mut Online)) -> bool {
        let Some(at) = self.position_of(jid) else {
            return false;
        };
        let participant = &mut self.list[at];
        let was_reached = participant.reached_by_mix_now();
        change(&mut participant.online);
        let reached = participant.reached_by_mix_now();
        if let Some(index) = self.index.as_mut().filter(|_| reached != was_reached) {
            index.count_reached(participant, if reached { 1 } else { u32::MAX });
        }
        true
    }

    fn change_at(&mut self, at: usize, change: impl FnOnce(&mut Participant)) {
        let Some(index) = &mut self.index else {
            change(&mut self.list[at]);
            return;
        };
        let place = index.places[at];
        index.take(&self.list[at], place);
        let nick = self.list[at].nick.clone();
        change(&mut self.list[at]);
        index.add(&self.list[at], place);
        if !nick.eq_ignore_ascii_case(&self.list[at].nick) {
            index.rehome_nick(&nick, &self.list);
        }
    }

    /// Changes every participant as `change` says (rare: the index is made again).
    pub fn update_all(&mut self, mut change: impl FnMut(&mut Participant)) {
        self.list.iter_mut().for_each(&mut change);
        if self.index.is_some() {
            self.build_index();
        }
    }

    fn position(&self, jid: &BareJid) -> Option<usize> {
        self.position_of(jid.as_str())
    }

    /// [`Roster::position`] by the JID's text, which a `BareJid` hashes and compares as.
    fn position_of(&self, jid: &str) -> Option<usize> {
        // The newest participant first, without hashing: the facts that follow a join name
        // the one just put (its client coming online).
        let newest = self.list.len().checked_sub(1)?;
        if self.list[newest].jid.as_str() == jid {
            return Some(newest);
        }
        match &self.index {
            Some(index) => index.by_jid.get(jid).map(|&place| index.at(place)),
            None => self.list.iter().position(|p| p.jid.as_str() == jid),
        }
    }

    fn build_index(&mut self) {
        let count = self.list.len();
        let mut index = Index {
            places: (0..count as u32).collect(),
            next_place: count as u32,
            by_jid: HashMap::with_capacity(count),
            by_id: HashMap::with_capacity_and_hasher(count, Default::default()),
            by_nick: HashMap::with_capacity(count),
            ..Index::default()
        };
        for (place, participant) in self.list.iter().enumerate() {
            index.add(participant, place as u32);
        }
        self.index = Some(Box::new(index));
    }
}

impl Index {
    /// The position in the list of the participant at `place`.
    fn at(&self, place: u32) -> usize {
        self.places
            .binary_search(&place)
            .expect("every indexed place is in the list")
    }

    fn followers(&self, node: Nodes) -> u32 {
        NODES
            .iter()
            .zip(self.followers)
            .filter(|(n, _)| node.contains(**n))
            .map(|(_, count)| count)
            .min()
            .unwrap_or(self.places.len() as u32)
    }

    fn add(&mut self, p: &Participant, place: u32) {
        self.by_jid.insert(p.jid.clone(), place);
        self.enter(p, place);
    }

    /// [`Index::add`] but for the JID's entry, which the caller made.
    fn enter(&mut self, p: &Participant, place: u32) {
        self.by_id.insert(p.id, place);
        self.by_nick
            .entry(p.nick.to_ascii_lowercase())
            .and_modify(|h| h.count += 1)
            .or_insert(Holders { place, count: 1 });
        self.count(p, 1);
    }

    /// Takes `p`'s entries out; a nick another participant also holds keeps its entry, which
    /// may still name `p` until [`Index::rehome_nick`] (once `p` has its new nick or is gone).
    fn take(&mut self, p: &Participant, place: u32) {
        self.by_jid.remove(&*p.jid);
        if self.by_id.get(&p.id) == Some(&place) {
            self.by_id.remove(&p.id);
        }
        let nick = p.nick.to_ascii_lowercase();
        if let Some(holders) = self.by_nick.get_mut(nick.as_str()) {
            holders.count -= 1;
            if holders.count == 0 {
                self.by_nick.remove(nick.as_str());
            }
        }
        self.count(p, u32::MAX);
    }

    /// After a holder of `nick` left it: points its entry at a holder still in `list`.
    fn rehome_nick(&mut self, nick: &str, list: &[Participant]) {
        let Some(holders) = self.by_nick.get(&folded(nick)) else {
            return;
        };
        let holder = self
            .places
            .binary_search(&holders.place)
            .ok()
            .filter(|&at| list[at].nick.eq_ignore_ascii_case(nick));
        if holder.is_none() {
            let at = list
                .iter()
                .position(|p| p.nick.eq_ignore_ascii_case(nick))
                .expect("a counted nick has a holder");
            let place = self.places[at];
            if let Some(holders) = self.by_nick.get_mut(&folded(nick)) {
                holders.place = place;
            }
        }
    }

    /// Adds `p` to the counts (`step` 1) or takes it off (`step` `u32::MAX`, wrapping).
    fn count(&mut self, p: &Participant, step: u32) {
        for (node, followers) in NODES.iter().zip(&mut self.followers) {
            if p.nodes.contains(*node) {
                *followers = followers.wrapping_add(step);
            }
        }
        if p.dialect == Dialect::FlyChat {
            self.flychat = self.flychat.wrapping_add(step);
        }
        if p.reached_by_mix_now() {
            self.count_reached(p, step);
        }
    }

    /// Adds `p` to the counts of the reached (`step` 1) or takes it off (`u32::MAX`).
    fn count_reached(&mut self, p: &Participant, step: u32) {
        for (node, reached) in NODES.iter().zip(&mut self.reached) {
            if p.nodes.contains(*node) {
                *reached = reached.wrapping_add(step);
            }
        }
    }
}

/// `nick` as the index keys it, in ASCII lowercase: inline, without a heap allocation, up to
/// 24 bytes.
fn folded(nick: &str) -> CompactString {
    let mut folded = CompactString::from(nick);
    folded.make_ascii_lowercase();
    folded
}

#[cfg(test)]
mod tests {
    use super::super::model::{Reach, Role};
    use super::super::testing::jid;
    use super::*;

    fn someone(n: usize, nodes: Nodes) -> Participant {
        Participant {
            id: ParticipantId(n as u64 * 7919),
            jid: jid(&format!("user{n}@localhost")).into(),
            nick: format!("User{n}").into(),
            nodes,
            role: Role::Member,
            dialect: Dialect::Mix,
            reach: Reach::Direct,
            joined_at: n as i64,
            cleared_upto: 0,
            online: Default::default(),
        }
    }

    /// What a scan of the list finds, which the index must agree with.
    fn agrees(roster: &Roster) {
        for p in roster.iter() {
            assert_eq!(roster.get(&p.jid), Some(p));
            assert_eq!(roster.by_id(p.id), Some(p));
            assert!(roster.nick_taken(&p.nick.to_uppercase(), &jid("x@localhost")));
            assert!(!roster.nick_taken(&p.nick, &p.jid), "{}", p.nick);
        }
        for node in NODES {
            assert_eq!(
                roster.subscribers(node).count(),
                roster.iter().filter(|p| p.nodes.contains(node)).count()
            );
        }
        assert_eq!(
            roster.any_speaks(Dialect::FlyChat),
            roster.iter().any(|p| p.dialect == Dialect::FlyChat)
        );
        for (at, node) in NODES.into_iter().enumerate() {
            let reached: Vec<&Participant> = roster
                .iter()
                .filter(|p| p.nodes.contains(node) && p.reached_by_mix_now())
                .collect();
            if let Some(index) = &roster.index {
                assert_eq!(index.reached[at] as usize, reached.len(), "{node:?}");
            }
            assert_eq!(roster.any_reached(node, None), !reached.is_empty());
            if let [only] = reached[..] {
                assert!(!roster.any_reached(node, Some(&only.jid)));
            }
        }
    }

    /// A join to a large channel tells the participants node's followers only if one of them
    /// would be reached: that is a count the roster keeps as clients come and go, so that
    /// 10,000 followers all offline are not looked at one by one at every join.
    #[test]
    fn followers_reached_now_are_counted_as_clients_come_and_go() {
        let size = INDEXED_FROM + 40;
        let mut roster: Roster = (0..size).map(|n| someone(n, Nodes::ALL)).collect();
        let followers = Nodes::PARTICIPANTS;
        assert!(!roster.any_reached(followers, None), "all offline");
        agrees(&roster);
        let (first, last) = (roster[0].jid.clone(), roster[size - 1].jid.clone());
        let phone = jid::FullJid::new(&format!("{last}/phone")).unwrap();
        roster.update_online(last.as_str(), |online| online.push(phone.clone()));
        assert!(roster.any_reached(followers, None));
        assert!(
            !roster.any_reached(followers, Some(&last)),
            "only the one excepted"
        );
        agrees(&roster);
        // A second client of the same participant changes nothing; both gone, none is reached.
        let pc = jid::FullJid::new(&format!("{last}/pc")).unwrap();
        roster.update_online(last.as_str(), |online| online.push(pc));
        agrees(&roster);
        roster.update_online(last.as_str(), |online| online.clear());
        assert!(!roster.any_reached(followers, None));
        agrees(&roster);
        // Reached through its server, it counts while it follows; a FlyChat participant never.
        roster.update(&first, |p| p.reach = Reach::Server);
        assert!(roster.any_reached(followers, None));
        agrees(&roster);
        roster.update(&first, |p| p.nodes = Nodes::MESSAGES);
        assert!(!roster.any_reached(followers, None));
        assert!(roster.any_reached(Nodes::MESSAGES, None));
        agrees(&roster);
        roster.update(&first, |p| p.dialect = Dialect::FlyChat);
        assert!(!roster.any_reached(Nodes::MESSAGES, None));
        agrees(&roster);
        // Online and leaving: the count goes with it.
        roster.update_online(last.as_str(), |online| online.push(phone.clone()));
        agrees(&roster);
        roster.remove(&last);
        assert!(!roster.any_reached(followers, None));
        agrees(&roster);
    }

    #[test]
    fn small_and_large_rosters_find_the_same_participants() {
        for size in [5, INDEXED_FROM + 40] {
            let mut roster: Roster = (0..size).map(|n| someone(n, Nodes::MESSAGES)).collect();
            assert_eq!(roster.index.is_some(), size >= INDEXED_FROM);
            agrees(&roster);
            // Leaving from the front, the middle and the end moves the others' places.
            for n in [0, size / 2, size - 1] {
                let gone = roster.remove(&jid(&format!("user{n}@localhost"))).unwrap();
                assert_eq!(gone.joined_at, n as i64);
                assert!(roster.get(&gone.jid).is_none());
                assert!(!roster.nick_taken(&gone.nick, &jid("x@localhost")));
                agrees(&roster);
            }
            // Joining again keeps the place; a changed nick and subscriptions are followed.
            let (second, old_nick) = (roster[1].jid.clone(), roster[1].nick.clone());
            let again = Participant {
                nick: "renamed".into(),
                nodes: Nodes::ALL,
                dialect: Dialect::FlyChat,
                ..roster[1].clone()
            };
            roster.put(again);
            assert_eq!(roster[1].jid, second);
            assert!(roster.nick_taken("RENAMED", &jid("x@localhost")));
            assert!(!roster.nick_taken(&old_nick, &jid("x@localhost")));
            assert_eq!(roster.subscribers(Nodes::PARTICIPANTS).count(), 1);
            agrees(&roster);
            assert!(roster.update(&second, |p| p.nick = "again".into()));
            assert!(!roster.nick_taken("renamed", &jid("x@localhost")));
            agrees(&roster);
            let phone = jid::FullJid::new(&format!("{second}/phone")).unwrap();
            assert!(roster.update_online(second.as_str(), |online| online.push(phone.clone())));
            assert!(roster.get(&second).unwrap().online.iter().eq([&phone]));
            assert!(!roster.update_online("x@localhost", |_| panic!("no one")));
            agrees(&roster);
            roster.update_all(|p| p.nodes = Nodes::NONE);
            assert_eq!(roster.subscribers(Nodes::MESSAGES).count(), 0);
            agrees(&roster);
        }
    }

    #[test]
    fn a_nick_two_participants_hold_stays_taken_until_both_let_it_go() {
        // Data from before nicks were unique may hold one nick twice.
        let mut roster: Roster = (0..INDEXED_FROM)
            .map(|n| someone(n, Nodes::MESSAGES))
            .collect();
        let (first, last) = (roster[0].jid.clone(), roster[INDEXED_FROM - 1].jid.clone());
        roster.update(&last, |p| p.nick = "user0".into());
        assert!(roster.nick_taken("user0", &first), "the last holds it too");
        roster.remove(&first);
        assert!(roster.nick_taken("user0", &first));
        assert!(!roster.nick_taken("user0", &last));
        roster.update(&last, |p| p.nick = "other".into());
        assert!(!roster.nick_taken("user0", &first));
        agrees(&roster);
    }
}
