//! The shape of a channel as the core keeps it in memory.

use jid::{BareJid, FullJid};

use super::{Fact, Micros};

/// The MIX nodes a participant can subscribe to, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nodes(pub u8);

impl Nodes {
    pub const NONE: Nodes = Nodes(0);
    pub const MESSAGES: Nodes = Nodes(1);
    pub const PRESENCE: Nodes = Nodes(2);
    pub const PARTICIPANTS: Nodes = Nodes(4);
    pub const INFO: Nodes = Nodes(8);
    pub const ALL: Nodes = Nodes(15);

    pub fn contains(self, other: Nodes) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn with(self, other: Nodes) -> Nodes {
        Nodes(self.0 | other.0)
    }
    pub fn without(self, other: Nodes) -> Nodes {
        Nodes(self.0 & !other.0)
    }
}

/// What a participant may do beyond posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member = 0,
    Admin = 1,
    Owner = 2,
}

impl Role {
    pub fn from_i64(value: i64) -> Role {
        match value {
            2 => Role::Owner,
            1 => Role::Admin,
            _ => Role::Member,
        }
    }
}

/// A stable participant id (XEP-0369 §7.1), written as 16 hex digits. Kept as a number:
/// a service holds millions of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId(pub u64);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for ParticipantId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(ParticipantId)
    }
}

/// The wire shape a participant's client understands; delivery writes each event in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Standard MIX (XEP-0369): the participant joined with `<join/>`.
    #[default]
    Mix = 0,
    /// The FlyChat SDK's `jabber:iq:mixgroupchat`: created or added through it.
    FlyChat = 1,
}

impl Dialect {
    pub fn from_i64(value: i64) -> Dialect {
        if value == 1 {
            Dialect::FlyChat
        } else {
            Dialect::Mix
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Never reused within the channel.
    pub id: ParticipantId,
    pub jid: BareJid,
    pub nick: String,
    pub nodes: Nodes,
    pub role: Role,
    pub dialect: Dialect,
    pub joined_at: Micros,
    /// Messages up to this archive id are hidden from this participant's own history.
    pub cleared_upto: i64,
    /// Full JIDs that have sent available presence to the channel (XEP-0403); live
    /// deliveries go to these. Not stored: it is rebuilt as clients send presence again.
    pub online: Vec<FullJid>,
}

/// The channel information node (XEP-0369 §7.2): Name, Description, Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub description: String,
    pub contacts: Vec<BareJid>,
    /// The group's picture and its thumbnail, as the URL or upload token the client gave.
    pub avatar: String,
    pub thumbnail: String,
    /// Whether members see what was said before they joined (FlyChat's `history` flag).
    pub history_visible: bool,
    /// When the info last changed; it is the id of the info node's item.
    pub updated_at: Micros,
}

impl Default for Info {
    fn default() -> Self {
        Info {
            name: String::new(),
            description: String::new(),
            contacts: Vec::new(),
            avatar: String::new(),
            thumbnail: String::new(),
            history_visible: true,
            updated_at: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Channel {
    /// Integer key used by the store (and in hot tables).
    pub key: i64,
    /// The channel's localpart: `name@mix.example`.
    pub name: String,
    pub info: Info,
    pub created_by: BareJid,
    pub created_at: Micros,
    /// Participants in order of joining (the longest-standing first).
    pub participants: Vec<Participant>,
    /// Owners who are not (or no longer) participants still own the channel.
    pub owners: Vec<BareJid>,
}

impl Channel {
    pub fn new(key: i64, name: String, owner: BareJid, at: Micros) -> Self {
        Channel {
            key,
            name,
            info: Info {
                updated_at: at,
                ..Info::default()
            },
            created_by: owner.clone(),
            created_at: at,
            participants: Vec::new(),
            owners: vec![owner],
        }
    }

    pub fn participant(&self, jid: &BareJid) -> Option<&Participant> {
        self.participants.iter().find(|p| &p.jid == jid)
    }

    fn participant_mut(&mut self, jid: &BareJid) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| &p.jid == jid)
    }

    pub fn is_owner(&self, jid: &BareJid) -> bool {
        self.owners.contains(jid)
    }

    /// What `jid` may do here: owners need not be participants.
    pub fn role_of(&self, jid: &BareJid) -> Role {
        if self.is_owner(jid) {
            return Role::Owner;
        }
        self.participant(jid).map_or(Role::Member, |p| p.role)
    }

    /// Owners and admins may change the channel's information.
    pub fn is_admin_or_owner(&self, jid: &BareJid) -> bool {
        self.is_owner(jid) || self.participant(jid).is_some_and(|p| p.role >= Role::Admin)
    }

    pub fn nick_taken(&self, nick: &str, by_other_than: &BareJid) -> bool {
        self.participants
            .iter()
            .any(|p| &p.jid != by_other_than && p.nick.eq_ignore_ascii_case(nick))
    }

    /// Participants subscribed to `node`.
    pub fn subscribers(&self, node: Nodes) -> impl Iterator<Item = &Participant> {
        self.participants
            .iter()
            .filter(move |p| p.nodes.contains(node))
    }

    pub(super) fn apply(&mut self, fact: &Fact) {
        match fact {
            Fact::Joined { participant, .. } => {
                self.participants.retain(|p| p.jid != participant.jid);
                self.participants.push(participant.clone());
            }
            Fact::Left { participant, .. } => {
                self.participants.retain(|p| p.jid != participant.jid);
            }
            Fact::RoleChanged { jid, role, .. } => {
                if let Some(p) = self.participant_mut(jid) {
                    p.role = *role;
                }
            }
            Fact::NickChanged { jid, nick, .. } => {
                if let Some(p) = self.participant_mut(jid) {
                    p.nick = nick.clone();
                }
            }
            Fact::SubscriptionChanged { jid, nodes, .. } => {
                if let Some(p) = self.participant_mut(jid) {
                    p.nodes = *nodes;
                }
            }
            Fact::InfoChanged { info, .. } => self.info = info.clone(),
            Fact::HistoryCleared { member, upto, .. } => {
                if let Some(p) = self.participant_mut(member) {
                    p.cleared_upto = p.cleared_upto.max(*upto);
                }
            }
            Fact::PresenceChanged { jid, online, .. } => {
                let bare = jid.to_bare();
                if let Some(p) = self.participant_mut(&bare) {
                    p.online.retain(|j| j != jid);
                    if *online {
                        p.online.push(jid.clone());
                    }
                }
            }
            Fact::ChannelCreated { .. }
            | Fact::ChannelDestroyed { .. }
            | Fact::Posted(_)
            | Fact::Noticed(_)
            | Fact::ChatState { .. }
            | Fact::Receipt(_)
            | Fact::Retracted(_)
            | Fact::Corrected(_)
            | Fact::Reacted(_) => {}
        }
    }
}

/// An archived message a participant refers to (to retract, correct, react to or
/// acknowledge it). The archive is not kept in memory: the service looks it up in the store
/// and hands it to the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub id: i64,
    pub channel: i64,
    pub sender: BareJid,
    /// The id the sender's client gave the message (what FlyChat clients refer to).
    pub client_id: Option<String>,
    pub retracted: bool,
}
