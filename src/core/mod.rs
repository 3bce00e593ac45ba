//! The group core: channels, their participants and the rules that govern them. No I/O.
//!
//! Every change is decided here and described as a [`Fact`]. The caller stores the facts
//! (the store persists them in one transaction) and only then delivers what they say, so a
//! client is never told about something a crash could take back. The core applies each fact to
//! its in-memory state as soon as it is decided, so the next command sees it; commands are
//! executed one at a time by the service loop, which keeps the rules free of locking.
//!
//! Each capability is its own file: `create`, `destroy`, `join`, `leave` (and removal),
//! `add`, `nick`, `subscription`, `post`, `info`, `presence`; administration: `role` (admins,
//! owners, transfer), `settings` (join policy, group mute, member limit), `access` (allowed
//! and banned lists), `mute`, `pending` (invitations and join requests), `configure` (the
//! XEP-0406 configuration as one change, through the commands above), `operator` (the
//! service's operator removing and deleting); conversation:
//! `typing`, `receipt`, `retract`, `correct`, `react`, `clear`; `notice` keeps group events
//! in the archive; `quota` limits what one user may do per unit of time.

mod create;
mod destroy;
mod history;
mod info;
mod join;
mod leave;
mod nick;
mod operator;
mod post;
mod presence;
mod private;
mod quota;
mod subscription;
mod timestamp;

mod access;
mod add;
mod channels;
mod clear;
mod configure;
mod correct;
mod directory;
mod mute;
mod notice;
mod pending;
mod react;
mod receipt;
mod retract;
mod role;
mod roster;
mod settings;
mod typing;
mod user;

pub mod model;

use std::collections::HashMap;

pub use add::MAX_ADDED_PER_REQUEST;
pub use configure::ConfigChange;
pub use correct::Corrected;
pub use destroy::DEPARTED_OWNER_GRACE;
pub use history::HistoryScope;
pub use info::{check_info, InfoChange};
pub use model::{
    Access, AccessList, Administration, Channel, Dialect, Info, JoinPolicy, MessageRef, Nodes,
    Online, Participant, ParticipantId, Pending, PendingKind, Role, Settings,
};
pub use notice::{Notice, NoticeKind};
pub use post::{Posted, Submission};
pub use private::PrivateRoute;
pub use quota::{OutOfTokens, Quota, Quotas, MAX_TRACKED};
pub use react::Reacted;
pub use receipt::{Receipt, ReceiptKind};
pub use retract::Retracted;
pub use roster::Roster;
pub use settings::SettingsChange;
pub use timestamp::iso_time;
pub use typing::{ChatState, Quiet, QuietNews, Repeats};
pub use user::{bare_text, UserJid, UserJids};

use jid::{BareJid, FullJid};

/// A point in time, in microseconds since the Unix epoch (what the archive stores).
pub type Micros = i64;

/// Why a command was refused: an XMPP-neutral condition and a human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub condition: Condition,
    pub text: String,
}

/// The conditions the rules can refuse with; dialects map them onto their error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    BadRequest,
    Forbidden,
    NotAllowed,
    ItemNotFound,
    Conflict,
    ResourceConstraint,
    NotAcceptable,
    /// A request for something the service does not do (a MAM filter it does not know).
    FeatureNotImplemented,
    /// A rate the service sets was passed (see `quota.rs`): retry later.
    PolicyViolation,
}

impl Refusal {
    pub fn new(condition: Condition, text: impl Into<String>) -> Self {
        Refusal {
            condition,
            text: text.into(),
        }
    }
}

pub type Outcome<T = Vec<Fact>> = Result<T, Refusal>;

/// A change the core has decided. Facts are stored, then delivered.
#[derive(Debug, Clone)]
pub enum Fact {
    ChannelCreated {
        key: i64,
        name: String,
        owner: BareJid,
        at: Micros,
        /// Named to be found (see [`Channel::listed`]).
        listed: bool,
    },
    /// The channel is gone; its archive goes too unless the service keeps archives.
    ChannelDestroyed {
        channel: Box<Channel>,
        by: BareJid,
        archive_kept: bool,
    },
    /// A participant joined (`by` is itself) or was added (`by` is who added it).
    Joined {
        key: i64,
        participant: Participant,
        by: BareJid,
        /// Whether the user had an invitation or a join request waiting, which the join
        /// settles (its entry goes): the store deletes a pending row only then, not for each
        /// of the joins that never had one.
        settles: bool,
        /// Whether the user already took part (joining again changes its subscriptions, nick
        /// or dialect): the store updates its row; a newcomer's is inserted, which needs no
        /// upsert and so no statement journal on SQLite (`store/sqlite/write.rs`).
        again: bool,
    },
    /// A participant left (`by` is itself) or was removed (`by` is who removed it).
    Left {
        key: i64,
        participant: Participant,
        by: BareJid,
    },
    /// `jid` is now owner, admin or plain member. Owners need not be participants.
    RoleChanged {
        key: i64,
        jid: BareJid,
        role: Role,
        by: BareJid,
    },
    SettingsChanged {
        key: i64,
        settings: Settings,
        by: BareJid,
    },
    /// `entry` (a bare JID or a domain) was put on (`present`) or taken off an access list.
    AccessChanged {
        key: i64,
        list: AccessList,
        entry: BareJid,
        present: bool,
        by: BareJid,
    },
    /// `jid` may not post before `until` (0: unmuted).
    Muted {
        key: i64,
        jid: BareJid,
        until: Micros,
        by: BareJid,
    },
    /// An invitation or a join request, waiting.
    PendingAdded {
        key: i64,
        pending: Pending,
    },
    /// An invitation or request answered: a request approved (with the `Joined` before it)
    /// or declined, an invitation declined by the invitee. Joining answers an invitation.
    PendingResolved {
        key: i64,
        pending: Pending,
        by: BareJid,
        accepted: bool,
    },
    NickChanged {
        key: i64,
        jid: BareJid,
        nick: String,
    },
    SubscriptionChanged {
        key: i64,
        jid: BareJid,
        nodes: Nodes,
    },
    Posted(std::sync::Arc<Posted>),
    /// A group event kept in the archive (see `notice.rs`).
    Noticed(std::sync::Arc<Notice>),
    InfoChanged {
        key: i64,
        info: Info,
        by: BareJid,
    },
    /// A client came online in a channel or went away (XEP-0403). Stored, so that live
    /// delivery survives a restart; told to nobody.
    PresenceChanged {
        key: i64,
        jid: FullJid,
        online: bool,
    },
    /// Typing and the like: relayed, never stored.
    ChatState {
        key: i64,
        sender: BareJid,
        nick: String,
        state: ChatState,
    },
    Receipt(Receipt),
    Retracted(std::sync::Arc<Retracted>),
    Corrected(std::sync::Arc<Corrected>),
    Reacted(std::sync::Arc<Reacted>),
    /// A participant hid its history up to `upto` from itself.
    HistoryCleared {
        key: i64,
        member: BareJid,
        upto: i64,
    },
}

/// Limits and permissions the operator configures.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Users of these domains may create channels.
    pub user_domains: Vec<String>,
    /// Largest message payload accepted, in bytes of XML.
    pub max_message_bytes: usize,
    /// Longest nick accepted, in bytes.
    pub max_nick_bytes: usize,
    /// Participants per group, unless a group sets a lower limit.
    pub max_members: usize,
    /// Groups one user may have created and not deleted (0: no limit).
    pub max_groups_per_creator: usize,
    /// Clients (full JIDs) one participant may have online in one channel at once. Each is
    /// a copy of every live delivery, so a user with thousands of resources would multiply
    /// the channel's traffic; presence beyond the limit is refused (see `presence.rs`).
    pub max_resources_per_participant: usize,
    /// Whether a deleted group's archive stays in the database (for the operator; no client
    /// can read it) instead of being erased with the group.
    pub keep_archive: bool,
    /// The service's secret, from which stable participant ids are made (see
    /// `join::participant_id`); the service gives the one kept in its database.
    pub participant_key: [u8; 16],
    /// Posts one user may make at once before the sustained rate applies (0: no message
    /// quota). See `quota.rs` for every quota.
    pub message_burst: u32,
    /// Posts one user may make per minute, sustained.
    pub messages_per_minute: u32,
    /// Chat states, receipts, reactions and retractions of one user per minute, all of them
    /// at once at most (0: no limit).
    pub signals_per_minute: u32,
    /// Channels one user may create per hour (0: no limit).
    pub channels_per_hour: u32,
    /// Joins (that change something) and join requests of one user per minute (0: no limit).
    pub joins_per_minute: u32,
    /// Users one user may add to groups or invite per hour (0: no limit).
    pub adds_per_hour: u32,
    /// Reads of the archive one user may ask for at once before the sustained rate applies
    /// (0: no history quota).
    pub history_burst: u32,
    /// Reads of the archive one user may ask for per minute, sustained.
    pub history_per_minute: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            user_domains: Vec::new(),
            max_message_bytes: 64 * 1024,
            max_nick_bytes: 64,
            max_members: 10_000,
            max_groups_per_creator: 1_000,
            max_resources_per_participant: 64,
            keep_archive: false,
            participant_key: [0; 16],
            message_burst: 500,
            messages_per_minute: 600,
            signals_per_minute: 1_200,
            channels_per_hour: 100,
            joins_per_minute: 600,
            adds_per_hour: 1_000,
            history_burst: 300,
            history_per_minute: 600,
        }
    }
}

/// Everything the core knows, loaded from the store at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Boxed as the core keeps them, so that handing them over moves pointers rather than
    /// copying a million channels while the list still holds them.
    pub channels: Vec<Box<Channel>>,
    /// The participants' and owners' users, each with the channels it owns or takes part in
    /// (the directory).
    pub users: UserJids,
    /// The highest channel key ever handed out, deleted channels' included: keys are never
    /// reused, which the departed owners' right (keyed by channel) relies on.
    pub last_channel_key: i64,
    pub last_message_id: i64,
    /// Owners who left a channel themselves lately (see `destroy.rs`), expired ones too: the
    /// rules look at the time.
    pub departures: Vec<Departure>,
}

#[cfg(test)]
impl Snapshot {
    /// A snapshot of `channels` alone, their users as loading would have met them.
    pub fn of(channels: Vec<Box<Channel>>) -> Snapshot {
        Snapshot {
            users: UserJids::of(&channels),
            channels,
            ..Default::default()
        }
    }
}

/// One more channel created by `creator`; its JID is copied only for its first (a user
/// creates a few channels; a million are counted at start).
fn count_created(created: &mut HashMap<BareJid, usize>, creator: &BareJid) {
    match created.get_mut(creator) {
        Some(n) => *n += 1,
        None => {
            created.insert(creator.clone(), 1);
        }
    }
}

/// An owner who left a channel itself: for [`DEPARTED_OWNER_GRACE`] it may still delete that
/// channel — that one only, named by its key, never a later channel reusing the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub key: i64,
    /// The channel's name, for a delete that arrives when the channel is already gone.
    pub name: String,
    pub owner: BareJid,
    pub at: Micros,
}

/// The groups of one service and the counters that key new ones.
pub struct Groups {
    pub rules: Rules,
    /// By name and by key (facts name channels by key). Boxed: a hash table holds twice as
    /// many slots as entries at worst, and a channel is some 300 bytes (at a million
    /// channels, 300 MB of empty slots inline).
    channels: channels::Channels,
    last_channel_key: i64,
    last_message_id: i64,
    ids: IdSource,
    /// The channels of each user.
    directory: directory::Directory,
    /// How many existing channels each user created (for the per-creator limit).
    created: HashMap<BareJid, usize>,
    /// Owners who just left a channel, with its key: they may still delete that channel for
    /// a moment (see `destroy.rs`). A handful at most: expired ones go as new ones come.
    departed_owners: Vec<Departure>,
    /// Each active user's quota buckets (see `quota.rs`).
    quotas: Quotas,
    /// The last chat state each user told each channel lately (see `typing.rs`).
    chat_states: typing::LastStates,
}

impl Groups {
    pub fn new(rules: Rules, snapshot: Snapshot) -> Self {
        let directory = directory::Directory::new(snapshot.users);
        let mut created = HashMap::new();
        for channel in &snapshot.channels {
            count_created(&mut created, &channel.created_by);
        }
        Groups {
            rules,
            channels: channels::Channels::new(snapshot.channels),
            last_channel_key: snapshot.last_channel_key,
            last_message_id: snapshot.last_message_id,
            ids: IdSource::default(),
            directory,
            created,
            departed_owners: snapshot.departures,
            quotas: Quotas::default(),
            chat_states: typing::LastStates::default(),
        }
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(name)
    }

    pub fn channel_by_key(&self, key: i64) -> Option<&Channel> {
        self.channels.by_key(key)
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter()
    }

    /// The channels `user` may learn of ([`Channel::visible_to`]), each once: the public ones
    /// it may join, then those it takes part in or owns, then those it is invited to or asked
    /// to join. In no particular order. Costs a look at each channel's settings, not at its
    /// participants: its own groups come from the directory.
    pub fn visible_channels<'a>(&'a self, user: &'a BareJid) -> impl Iterator<Item = &'a Channel> {
        let found = move |c: &Channel| c.is_public() && c.access().admits(user);
        let own = self.directory.of(user);
        let public = self.channels().filter(move |c| found(c));
        let mine = self.groups_of(user).filter(move |c| !found(c));
        let waiting = self.channels().filter(move |c| {
            c.administration.is_some()
                && c.pending(user).is_some()
                && !found(c)
                && !own.contains(&c.key)
        });
        public.chain(mine).chain(waiting)
    }

    /// The channel `name` if `user` may learn of it; otherwise the refusal a missing channel
    /// gets, so that a name cannot be probed.
    pub fn visible(&self, name: &str, user: &BareJid) -> Outcome<&Channel> {
        match self.channels.get(name) {
            Some(channel) if channel.visible_to(user) => Ok(channel),
            _ => Err(Refusal::new(
                Condition::ItemNotFound,
                format!("no channel '{name}'"),
            )),
        }
    }

    pub fn may_create(&self, user: &BareJid) -> bool {
        self.rules
            .user_domains
            .iter()
            .any(|d| d.as_str() == user.domain().as_str())
    }

    /// The channels `user` takes part in (or owns without taking part).
    pub fn groups_of<'a>(&'a self, user: &BareJid) -> impl Iterator<Item = &'a Channel> {
        self.directory
            .of(user)
            .iter()
            .filter_map(|key| self.channel_by_key(*key))
    }

    /// Refuses `user` if the channel's allowed and banned lists do not admit it.
    fn admitted(channel: &Channel, user: &BareJid) -> Outcome<()> {
        Self::admitted_as(channel, user, channel.role_of(user))
    }

    /// Owners and admins are always admitted (banning one removes it, with an owner's
    /// rights); `role` is `user`'s, which the caller may already know.
    fn admitted_as(channel: &Channel, user: &BareJid, role: Role) -> Outcome<()> {
        if role >= Role::Admin || channel.access().admits(user) {
            return Ok(());
        }
        let text = if channel.access().is_banned(user) {
            format!("{user} is banned from '{}'", channel.name)
        } else {
            format!("{user} is not on the allowed list of '{}'", channel.name)
        };
        Err(Refusal::new(Condition::Forbidden, text))
    }

    /// Refuses if `joining` more participants would pass the channel's member limit.
    fn room_for(&self, channel: &Channel, joining: usize) -> Outcome<()> {
        let limit = channel
            .settings()
            .max_members
            .map_or(self.rules.max_members, |m| m.min(self.rules.max_members));
        if channel.participants.len() + joining > limit {
            return Err(Refusal::new(
                Condition::ResourceConstraint,
                format!(
                    "'{}' has {} participants and a limit of {limit}; {joining} more do not fit",
                    channel.name,
                    channel.participants.len()
                ),
            ));
        }
        Ok(())
    }

    /// The message `target` as found in channel `key`, unless it is gone.
    fn live_message<'a>(
        &self,
        key: i64,
        target: Option<&'a MessageRef>,
    ) -> Outcome<&'a MessageRef> {
        match target {
            Some(m) if m.channel == key && !m.retracted => Ok(m),
            _ => Err(Refusal::new(
                Condition::ItemNotFound,
                "no such message in this channel (or it was retracted)",
            )),
        }
    }

    pub fn last_message_id(&self) -> i64 {
        self.last_message_id
    }

    /// The channel `name`, or the refusal that says there is none.
    pub fn existing(&self, name: &str) -> Outcome<&Channel> {
        self.channel(name)
            .ok_or_else(|| Refusal::new(Condition::ItemNotFound, format!("no channel '{name}'")))
    }

    /// Refuses `actor` unless its role in `channel` is at least `needed`; the text says who
    /// may `what`.
    fn at_least(channel: &Channel, actor: &BareJid, needed: Role, what: &str) -> Outcome<()> {
        if channel.role_of(actor) >= needed {
            return Ok(());
        }
        let who = if needed == Role::Owner {
            "an owner"
        } else {
            "an owner or admin"
        };
        Err(Refusal::new(
            Condition::Forbidden,
            format!("only {who} of '{}' may {what}", channel.name),
        ))
    }

    /// The role it takes to act on `target`: an admin for a member, an owner for an admin or
    /// another owner.
    fn above(channel: &Channel, target: &BareJid) -> Role {
        if channel.role_of(target) == Role::Member {
            Role::Admin
        } else {
            Role::Owner
        }
    }

    /// The participant `target` of `channel`, which a command names: `item-not-found` if it
    /// takes no part.
    fn named<'a>(channel: &'a Channel, target: &BareJid) -> Outcome<&'a Participant> {
        channel.participant(target).ok_or_else(|| {
            Refusal::new(
                Condition::ItemNotFound,
                format!("{target} is not a participant of '{}'", channel.name),
            )
        })
    }

    /// The participant `who` in channel `name`, or the refusal a non-participant gets.
    pub fn participant_of<'a>(
        &'a self,
        name: &str,
        who: &BareJid,
    ) -> Outcome<(&'a Channel, &'a Participant)> {
        let channel = self.existing(name)?;
        let participant = channel.participant(who).ok_or_else(|| {
            Refusal::new(
                Condition::Forbidden,
                format!("{who} is not a participant of '{name}'"),
            )
        })?;
        Ok((channel, participant))
    }

    /// Applies a decided fact to the in-memory state.
    fn apply(&mut self, fact: &Fact) {
        self.directory.record(fact);
        if fact.ends_a_membership() {
            self.chat_states.membership_ended();
        }
        match fact {
            Fact::ChannelCreated {
                key,
                name,
                owner,
                at,
                listed,
            } => {
                self.last_channel_key = self.last_channel_key.max(*key);
                let mut channel = Channel::new(*key, name.clone(), owner.clone(), *at);
                channel.listed = *listed;
                self.channels.insert(Box::new(channel));
                count_created(&mut self.created, owner);
            }
            Fact::ChannelDestroyed { channel, .. } => {
                self.channels.remove(channel.key);
                if let Some(n) = self.created.get_mut(&channel.created_by) {
                    *n = n.saturating_sub(1);
                }
            }
            Fact::Posted(posted) => {
                self.last_message_id = self.last_message_id.max(posted.id);
            }
            Fact::Noticed(notice) => {
                self.last_message_id = self.last_message_id.max(notice.id);
                // The notice carries the time the facts before it lack.
                if notice.kind.changes_configuration() {
                    if let Some(channel) = self.channels.by_key_mut(notice.channel) {
                        let admin = channel.administration_mut();
                        admin.configured_at = admin.configured_at.max(notice.at);
                    }
                }
            }
            Fact::Retracted(retracted) => {
                self.last_message_id = self.last_message_id.max(retracted.id);
            }
            Fact::Reacted(reacted) => {
                self.last_message_id = self.last_message_id.max(reacted.id);
            }
            other => {
                if let Some(channel) = self.channels.by_key_mut(other.channel_key()) {
                    channel.apply(other);
                }
            }
        }
    }

    fn apply_all(&mut self, facts: Vec<Fact>) -> Vec<Fact> {
        for fact in &facts {
            self.apply(fact);
        }
        facts
    }

    fn next_channel_key(&mut self) -> i64 {
        self.last_channel_key + 1
    }

    fn next_message_id(&mut self) -> i64 {
        self.last_message_id + 1
    }
}

impl Fact {
    /// Whether someone stops being a participant: a participant left or was removed, or a
    /// channel went with its participants.
    pub fn ends_a_membership(&self) -> bool {
        match self {
            Fact::Left { .. } | Fact::ChannelDestroyed { .. } => true,
            Fact::ChannelCreated { .. }
            | Fact::Joined { .. }
            | Fact::RoleChanged { .. }
            | Fact::SettingsChanged { .. }
            | Fact::AccessChanged { .. }
            | Fact::Muted { .. }
            | Fact::PendingAdded { .. }
            | Fact::PendingResolved { .. }
            | Fact::NickChanged { .. }
            | Fact::SubscriptionChanged { .. }
            | Fact::InfoChanged { .. }
            | Fact::PresenceChanged { .. }
            | Fact::ChatState { .. }
            | Fact::HistoryCleared { .. }
            | Fact::Receipt(_)
            | Fact::Retracted(_)
            | Fact::Corrected(_)
            | Fact::Reacted(_)
            | Fact::Posted(_)
            | Fact::Noticed(_) => false,
        }
    }

    /// The key of the channel this fact is about.
    pub fn channel_key(&self) -> i64 {
        match self {
            Fact::ChannelCreated { key, .. }
            | Fact::Joined { key, .. }
            | Fact::Left { key, .. }
            | Fact::RoleChanged { key, .. }
            | Fact::SettingsChanged { key, .. }
            | Fact::AccessChanged { key, .. }
            | Fact::Muted { key, .. }
            | Fact::PendingAdded { key, .. }
            | Fact::PendingResolved { key, .. }
            | Fact::NickChanged { key, .. }
            | Fact::SubscriptionChanged { key, .. }
            | Fact::InfoChanged { key, .. }
            | Fact::PresenceChanged { key, .. }
            | Fact::ChatState { key, .. }
            | Fact::HistoryCleared { key, .. } => *key,
            Fact::Receipt(r) => r.channel,
            Fact::Retracted(r) => r.channel,
            Fact::Corrected(c) => c.channel,
            Fact::Reacted(r) => r.channel,
            Fact::ChannelDestroyed { channel, .. } => channel.key,
            Fact::Posted(posted) => posted.channel,
            Fact::Noticed(notice) => notice.channel,
        }
    }
}

/// Identifiers the service makes up (participant ids, ad-hoc channel names): drawn from the
/// OS's randomness (`getrandom`), so that none can be guessed from another, from the time or
/// from how many came before. Should the OS refuse (it does not on any supported system
/// once booted), a counter and the time hashed under a per-process random key stand in.
#[derive(Default)]
struct IdSource {
    counter: u64,
    keys: std::collections::hash_map::RandomState,
}

impl IdSource {
    /// An ad-hoc channel's name: 128 random bits as 32 lowercase hex digits (a valid,
    /// already normalized JID localpart).
    fn next(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }

    fn next_u64(&mut self) -> u64 {
        getrandom::u64().unwrap_or_else(|_| self.fallback())
    }

    fn fallback(&mut self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        self.counter += 1;
        let mut hasher = self.keys.build_hasher();
        hasher.write_u64(self.counter);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        hasher.finish()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    pub fn groups() -> Groups {
        Groups::new(
            Rules {
                user_domains: vec!["localhost".into()],
                ..Rules::default()
            },
            Snapshot::default(),
        )
    }

    /// The participant `who` of channel `coven`.
    pub fn member(g: &Groups, who: &str) -> Participant {
        g.channel("coven")
            .unwrap()
            .participant(&jid(who))
            .unwrap()
            .clone()
    }

    /// `who`'s chat state `state` in `coven` at time 0, repeats dropped: its facts.
    pub fn chat_state(g: &mut Groups, who: &str, state: ChatState) -> Vec<Fact> {
        g.chat_state("coven", &jid(who), state, Repeats::Dropped, 0)
            .unwrap()
    }

    /// A plain text submission.
    pub fn text(body: &str) -> Submission {
        Submission {
            content: format!("<body>{body}</body>"),
            origin_id: Some(format!("o-{body}")),
            ..Submission::default()
        }
    }

    /// Alice administers `coven` from `now` on (one step a microsecond): join requests only,
    /// muted, at most 50 members, JIDs hidden; `spam.example` banned and `localhost` allowed;
    /// bob muted until 1,000; erin invited; frank asking to join. The facts, for the stores'
    /// round trips of every administrative kind.
    pub fn administered(g: &mut Groups, now: Micros) -> Vec<Fact> {
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let change = SettingsChange {
            policy: Some(JoinPolicy::Request),
            muted: Some(true),
            max_members: Some(Some(50)),
            jids_hidden: Some(true),
        };
        let mut facts = g.change_settings("coven", &alice, change, now).unwrap();
        for (list, entry) in [
            (AccessList::Banned, "spam.example"),
            (AccessList::Allowed, "localhost"),
        ] {
            facts.extend(
                g.set_access("coven", &alice, list, &jid(entry), true, now + 1)
                    .unwrap(),
            );
        }
        facts.extend(g.mute("coven", &alice, &bob, 1_000, now + 2).unwrap());
        facts.extend(
            g.invite("coven", &alice, &[jid("erin@localhost")], now + 3)
                .unwrap()
                .1,
        );
        facts.extend(
            g.request_join("coven", &jid("frank@localhost"), Dialect::FlyChat, now + 4)
                .unwrap(),
        );
        facts
    }

    /// Alice's FlyChat group `name` (or one whose name mixd picks), without a profile, of
    /// `members`, created at `now`.
    pub fn alices_group(
        g: &mut Groups,
        name: Option<&str>,
        members: &[BareJid],
        now: Micros,
    ) -> Outcome<(String, Vec<Fact>)> {
        g.create_group(
            &jid("alice@localhost"),
            name,
            InfoChange::default(),
            members,
            Dialect::FlyChat,
            now,
        )
    }

    /// `coven` where carol joined after alice and bob.
    pub fn with_carol() -> Groups {
        let mut g = coven();
        g.join("coven", &jid("carol@localhost"), None, Nodes::ALL, 4)
            .unwrap();
        g
    }

    /// A service with channel `coven` owned by alice, where alice and bob have joined.
    pub fn coven() -> Groups {
        let mut g = groups();
        g.create(&jid("alice@localhost"), Some("coven"), 1).unwrap();
        g.join(
            "coven",
            &jid("alice@localhost"),
            Some("alice"),
            Nodes::ALL,
            2,
        )
        .unwrap();
        g.join("coven", &jid("bob@localhost"), Some("bob"), Nodes::ALL, 3)
            .unwrap();
        g
    }
}

#[cfg(test)]
mod visibility_tests {
    use super::testing::*;
    use super::*;

    fn seen_by(g: &Groups, user: &str) -> Vec<String> {
        let user = jid(user);
        let mut names: Vec<String> = g.visible_channels(&user).map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    fn policy(g: &mut Groups, name: &str, policy: JoinPolicy) {
        let change = SettingsChange {
            policy: Some(policy),
            ..SettingsChange::default()
        };
        g.change_settings(name, &jid("alice@localhost"), change, 9)
            .unwrap();
    }

    /// `coven` (public), `sabbat` (invitation only), `moot` (by request), an ad-hoc channel
    /// and a FlyChat group, all alice's; bob takes part in `coven` only.
    fn service() -> (Groups, String, String) {
        let mut g = coven();
        let alice = jid("alice@localhost");
        for name in ["sabbat", "moot"] {
            g.create(&alice, Some(name), 5).unwrap();
        }
        policy(&mut g, "sabbat", JoinPolicy::Invite);
        policy(&mut g, "moot", JoinPolicy::Request);
        let (ad_hoc, _) = g.create(&alice, None, 6).unwrap();
        let (flychat, _) =
            alices_group(&mut g, Some("trip"), std::slice::from_ref(&alice), 7).unwrap();
        (g, ad_hoc, flychat)
    }

    #[test]
    fn outsiders_see_public_channels_and_members_their_own() {
        let (g, ad_hoc, flychat) = service();
        assert_eq!(seen_by(&g, "dave@localhost"), ["coven"]);
        assert_eq!(seen_by(&g, "bob@localhost"), ["coven"]);
        let mut all = vec![
            "coven".to_owned(),
            "moot".into(),
            "sabbat".into(),
            ad_hoc,
            flychat,
        ];
        all.sort();
        assert_eq!(seen_by(&g, "alice@localhost"), all);
        for name in ["sabbat", "moot", "trip"] {
            let err = g.visible(name, &jid("dave@localhost")).unwrap_err();
            assert_eq!(err.condition, Condition::ItemNotFound);
            assert_eq!(err.text, format!("no channel '{name}'"), "as if missing");
        }
        assert!(g.visible("coven", &jid("dave@localhost")).is_ok());
    }

    #[test]
    fn invitations_and_requests_show_the_channel_to_whom_they_concern() {
        let (mut g, _, _) = service();
        let (alice, dave, eve) = (
            jid("alice@localhost"),
            jid("dave@localhost"),
            jid("eve@localhost"),
        );
        g.invite("sabbat", &alice, std::slice::from_ref(&dave), 10)
            .unwrap();
        g.request_join("moot", &eve, Dialect::Mix, 10).unwrap();
        assert_eq!(seen_by(&g, "dave@localhost"), ["coven", "sabbat"]);
        assert_eq!(seen_by(&g, "eve@localhost"), ["coven", "moot"]);
        assert_eq!(seen_by(&g, "frank@localhost"), ["coven"]);
        // Joining turns the invitation into participation: still seen, once.
        g.join("sabbat", &dave, None, Nodes::ALL, 11).unwrap();
        assert_eq!(seen_by(&g, "dave@localhost"), ["coven", "sabbat"]);
    }

    #[test]
    fn a_public_channel_is_hidden_from_whom_its_access_lists_keep_out() {
        let (mut g, _, _) = service();
        let alice = jid("alice@localhost");
        g.set_access(
            "coven",
            &alice,
            AccessList::Banned,
            &jid("eve@localhost"),
            true,
            10,
        )
        .unwrap();
        assert_eq!(seen_by(&g, "eve@localhost"), Vec::<String>::new());
        let allowed = jid("example.org");
        g.set_access("coven", &alice, AccessList::Allowed, &allowed, true, 10)
            .unwrap();
        assert_eq!(seen_by(&g, "dave@localhost"), Vec::<String>::new());
        assert_eq!(seen_by(&g, "dave@example.org"), ["coven"]);
        // Bob is not on the allowed list but takes part: he still sees his channel.
        assert_eq!(seen_by(&g, "bob@localhost"), ["coven"]);
        // An invitation-only channel that opens becomes public.
        policy(&mut g, "sabbat", JoinPolicy::Open);
        assert_eq!(seen_by(&g, "frank@localhost"), ["sabbat"]);
    }
}
