//! The start-up snapshot as both backends assemble it from their whole-table reads, once for
//! both: the channels in key order, found by a binary search (no map of a million keys); the
//! participants in primary-key order (by channel, then JID: the order the rows lie in, so
//! that the database sorts nothing) and put into each channel in order of joining here, a
//! channel's few rows at a time; each user's JID parsed once, with the channels it owns or
//! takes part in noted as they come (the directory of "my groups" is made of them, with no
//! look-up of its own).

use std::collections::HashMap;

use anyhow::Context;
use jid::FullJid;

use super::columns::{mode, Row};
use crate::core::{
    Channel, Departure, Micros, Nodes, Participant, Role, Roster, Snapshot, UserJids,
};

/// The participants as [`Loading::participant`] takes them: its columns, in the primary key's
/// order.
pub const PARTICIPANTS: &str =
    "SELECT channel, jid, id, nick, nodes, role, joined_at, cleared_upto, dialect, muted_until
     FROM participants ORDER BY channel, jid";

/// A snapshot being loaded.
pub struct Loading {
    /// In the order of their keys; boxed as the core keeps them (see [`Snapshot::channels`]).
    #[allow(clippy::vec_box)]
    channels: Vec<Box<Channel>>,
    users: UserJids,
    /// Clients online when mixd last ran, by channel and bare JID (few: most participants
    /// have none).
    online: HashMap<(i64, String), Vec<FullJid>>,
    /// The channel whose participants are being read, with its place in `channels` (none
    /// for a key no channel has), and those of its participants read so far, each with the
    /// time its mute ends.
    current: Option<(i64, Option<usize>)>,
    members: Vec<(Participant, Micros)>,
}

impl Loading {
    /// Starts from the channels, which come in the order of their keys.
    pub fn new(channels: Vec<Box<Channel>>) -> Self {
        debug_assert!(channels.windows(2).all(|pair| pair[0].key < pair[1].key));
        Loading {
            channels,
            users: UserJids::default(),
            online: HashMap::new(),
            current: None,
            members: Vec::new(),
        }
    }

    /// The channel whose key is `key`, for its access lists and pending requests.
    pub fn channel_mut(&mut self, key: i64) -> Option<&mut Channel> {
        let at = self.place(key)?;
        Some(&mut self.channels[at])
    }

    fn place(&self, key: i64) -> Option<usize> {
        self.channels.binary_search_by_key(&key, |c| c.key).ok()
    }

    /// An owner of channel `key` (a `channel_owners` row), noted among the users: the
    /// directory counts the channels a user owns with those it takes part in.
    pub fn owner(&mut self, key: i64, jid: &str) -> anyhow::Result<()> {
        let Some(at) = self.place(key) else {
            return Ok(());
        };
        let owner = self
            .users
            .member(jid, key)
            .with_context(|| format!("stored JID {jid:?} does not parse"))?;
        self.channels[at].owners.push(owner.to_bare());
        Ok(())
    }

    /// A client that was online in channel `key` (a `presence` row): read before the
    /// participants. A row that no longer makes a JID is skipped, not a reason to refuse to
    /// start.
    pub fn online(&mut self, key: i64, bare: String, resource: &str) {
        if let Ok(full) = FullJid::new(&format!("{bare}/{resource}")) {
            self.online.entry((key, bare)).or_default().push(full);
        }
    }

    /// A row of [`PARTICIPANTS`].
    pub fn participant(&mut self, row: &impl Row) -> anyhow::Result<()> {
        let key: i64 = row.column(0)?;
        if self.current.map(|(current, _)| current) != Some(key) {
            self.settle();
            self.current = Some((key, self.place(key)));
        }
        if !matches!(self.current, Some((_, Some(_)))) {
            return Ok(());
        }
        let jid_text = row.text(1)?;
        let jid = self
            .users
            .member(jid_text, key)
            .with_context(|| format!("stored JID {jid_text:?} does not parse"))?;
        let online = match self.online.is_empty() {
            true => Vec::new(),
            false => self
                .online
                .remove(&(key, jid_text.to_owned()))
                .unwrap_or_default(),
        };
        let id_text = row.text(2)?;
        let (dialect, reach) = mode(row.column(8)?);
        let participant = Participant {
            jid,
            id: id_text
                .parse()
                .with_context(|| format!("stored participant id {id_text:?}"))?,
            nick: row.text(3)?.into(),
            nodes: Nodes(row.column::<i64>(4)? as u8),
            role: Role::from_i64(row.column(5)?),
            joined_at: row.column(6)?,
            cleared_upto: row.column(7)?,
            dialect,
            reach,
            online: online.into(),
        };
        self.members.push((participant, row.column(9)?));
        Ok(())
    }

    /// Puts the participants read of the current channel into it, in order of joining (those
    /// who joined at the same time by JID, the order they were read in: the sort is stable),
    /// its list sized to them.
    fn settle(&mut self) {
        let Some((_, Some(at))) = self.current.take() else {
            self.members.clear();
            return;
        };
        let channel = &mut self.channels[at];
        self.members
            .sort_by_key(|(participant, _)| participant.joined_at);
        let mut list = Vec::with_capacity(self.members.len());
        for (participant, muted_until) in self.members.drain(..) {
            if muted_until > 0 {
                let mutes = &mut channel.administration_mut().mutes;
                mutes.push((participant.jid.to_bare(), muted_until));
            }
            list.push(participant);
        }
        channel.participants = Roster::loaded(list);
    }

    /// The snapshot, with the last keys the sequences handed out.
    pub fn finish(
        mut self,
        last_channel_key: i64,
        last_message_id: i64,
        departures: Vec<Departure>,
    ) -> Snapshot {
        self.settle();
        Snapshot {
            channels: self.channels,
            users: self.users,
            last_channel_key,
            last_message_id,
            departures,
        }
    }
}
