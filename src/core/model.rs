//! The shape of a channel as the core keeps it in memory.

use jid::{BareJid, FullJid};

use compact_str::CompactString;

use super::Roster;
use super::{Fact, Micros, UserJid};

/// The MIX nodes a participant can subscribe to, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nodes(pub u8);

impl Nodes {
    pub const NONE: Nodes = Nodes(0);
    pub const MESSAGES: Nodes = Nodes(1);
    pub const PRESENCE: Nodes = Nodes(2);
    pub const PARTICIPANTS: Nodes = Nodes(4);
    pub const INFO: Nodes = Nodes(8);
    /// The configuration node (XEP-0406): roles, policies and who changed them last.
    pub const CONFIG: Nodes = Nodes(16);
    pub const ALL: Nodes = Nodes(31);

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

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Some(match name {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            _ => return None,
        })
    }
}

/// How users who are not participants get in. Admins may always add users directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinPolicy {
    /// Anyone admitted by the allowed and banned lists may join.
    #[default]
    Open = 0,
    /// Only users an owner or admin invited may join.
    Invite = 1,
    /// Users ask; an owner or admin approves or declines, and the first decision stands.
    Request = 2,
}

impl JoinPolicy {
    pub fn from_i64(value: i64) -> JoinPolicy {
        match value {
            1 => JoinPolicy::Invite,
            2 => JoinPolicy::Request,
            _ => JoinPolicy::Open,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JoinPolicy::Open => "open",
            JoinPolicy::Invite => "invite",
            JoinPolicy::Request => "request",
        }
    }

    pub fn from_name(name: &str) -> Option<JoinPolicy> {
        Some(match name {
            "open" => JoinPolicy::Open,
            "invite" => JoinPolicy::Invite,
            "request" => JoinPolicy::Request,
            _ => return None,
        })
    }
}

/// A group's membership settings, changed together and announced together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub policy: JoinPolicy,
    /// The whole group is muted: only owners and admins post.
    pub muted: bool,
    /// This group's member limit, below the service's; `None` takes the service's.
    pub max_members: Option<usize>,
    /// JID-hidden (XEP-0404 'JID Hidden'): participants see each other's nicks and
    /// participant ids, never real JIDs; owners and admins still do.
    pub jids_hidden: bool,
}

/// The allowed and banned lists (XEP-0369 §7.3.7): bare JIDs and whole domains. A user
/// matching a banned entry is refused; when the allowed list has entries, so is a user
/// matching none of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub allowed: Vec<BareJid>,
    pub banned: Vec<BareJid>,
}

/// Which access list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessList {
    Allowed = 0,
    Banned = 1,
}

impl Access {
    fn matches(list: &[BareJid], user: &BareJid) -> bool {
        list.iter().any(|entry| match entry.node() {
            Some(_) => entry == user,
            None => entry.domain() == user.domain(),
        })
    }

    pub fn is_banned(&self, user: &BareJid) -> bool {
        Self::matches(&self.banned, user)
    }

    /// Banned wins over allowed.
    pub fn admits(&self, user: &BareJid) -> bool {
        !self.is_banned(user) && (self.allowed.is_empty() || Self::matches(&self.allowed, user))
    }

    pub fn list(&self, list: AccessList) -> &Vec<BareJid> {
        match list {
            AccessList::Allowed => &self.allowed,
            AccessList::Banned => &self.banned,
        }
    }

    fn list_mut(&mut self, list: AccessList) -> &mut Vec<BareJid> {
        match list {
            AccessList::Allowed => &mut self.allowed,
            AccessList::Banned => &mut self.banned,
        }
    }
}

/// A user on its way in: invited by an admin, or asking to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub jid: BareJid,
    pub kind: PendingKind,
    /// Who invited (for a request: the requester itself).
    pub by: BareJid,
    pub at: Micros,
    /// The dialect of the requester's client, in which it takes part once approved. (An
    /// invitee's is the one it joins with.)
    pub dialect: Dialect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Invited = 0,
    Requested = 1,
}

impl PendingKind {
    pub fn from_i64(value: i64) -> PendingKind {
        if value == 1 {
            PendingKind::Requested
        } else {
            PendingKind::Invited
        }
    }
}

/// A stable participant id (XEP-0369 §7.1), written as 16 hex digits. Kept as a number:
/// a service holds millions of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId(pub u64);

impl ParticipantId {
    /// The id's 16 hex digits, written without the formatter or a heap allocation: every
    /// join writes them into its reply, its proxy JID and its row.
    pub fn hex(self) -> HexId {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0; 16];
        for (at, digit) in digits.iter_mut().enumerate() {
            *digit = DIGITS[(self.0 >> (60 - 4 * at) & 0xf) as usize];
        }
        HexId(digits)
    }
}

/// A participant id as written ([`ParticipantId::hex`]), read as a `&str`.
#[derive(Clone, Copy)]
pub struct HexId([u8; 16]);

impl std::ops::Deref for HexId {
    type Target = str;

    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
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

/// How mixd reaches a MIX participant's clients. Only MIX delivery (`mix::deliver`) asks:
/// FlyChat participants are always told at their bare JID by their own dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// The client joined the channel itself (`<join/>` from a full JID): mixd sends to the
    /// full JIDs in [`Participant::online`] — the joining resource from its join on, and
    /// each client that sent presence (XEP-0403). For servers without MIX-PAM.
    #[default]
    Direct,
    /// The user's server joined for it (XEP-0405 MIX-PAM: `<join/>` from the bare JID):
    /// mixd sends to the bare JID, and the server delivers to each client, keeps offline and
    /// archives. `online` is not used to address it.
    Server,
}

/// One membership. A service holds millions (about ten per user), so every byte here counts
/// ten million times: the JID is shared with the user's other memberships, a nick of up to
/// 24 bytes is kept inline, and an empty list of online clients is one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Never reused within the channel.
    pub id: ParticipantId,
    pub jid: UserJid,
    pub nick: CompactString,
    pub nodes: Nodes,
    pub role: Role,
    pub dialect: Dialect,
    /// Where MIX deliveries go: the bare JID or the online full JIDs. Stored with the
    /// dialect (see `store::sqlite::write`), so no schema change.
    pub reach: Reach,
    pub joined_at: Micros,
    /// Messages up to this archive id are hidden from this participant's own history.
    pub cleared_upto: i64,
    /// Full JIDs that joined directly or sent available presence to the channel
    /// (XEP-0403); live deliveries go to these when `reach` is [`Reach::Direct`]. Stored, so that live delivery resumes after a restart without
    /// clients sending presence again (they do not); one that went away meanwhile is dropped
    /// when a delivery to it bounces. At most `Rules::max_resources_per_participant`.
    pub online: Online,
}

impl Participant {
    /// Whether a MIX event sent now reaches this participant: through its server (at the bare
    /// JID, which delivers or keeps it), or at one of its clients online. A FlyChat
    /// participant is told in its own dialect, at its bare JID.
    pub fn reached_by_mix_now(&self) -> bool {
        self.dialect == Dialect::Mix
            && match self.reach {
                Reach::Server => true,
                Reach::Direct => !self.online.is_empty(),
            }
    }
}

/// A participant's online clients (see [`Participant::online`]): most participants have
/// none, and none costs one word instead of an empty `Vec`'s three.
// Boxed on purpose: the box is one word where a `Vec` is three, in ten million participants.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Online(Option<Box<Vec<FullJid>>>);

impl Online {
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |clients| clients.len())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, FullJid> {
        self.0.as_deref().map_or(&[][..], Vec::as_slice).iter()
    }

    pub fn contains(&self, client: &FullJid) -> bool {
        self.iter().any(|c| c == client)
    }

    pub fn push(&mut self, client: FullJid) {
        self.0.get_or_insert_with(Box::default).push(client);
    }

    /// Keeps the clients `keep` says; none left is no list.
    pub fn retain(&mut self, keep: impl FnMut(&FullJid) -> bool) {
        if let Some(clients) = &mut self.0 {
            clients.retain(keep);
            if clients.is_empty() {
                self.0 = None;
            }
        }
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl From<Vec<FullJid>> for Online {
    fn from(clients: Vec<FullJid>) -> Self {
        Online((!clients.is_empty()).then(|| Box::new(clients)))
    }
}

impl<'a> IntoIterator for &'a Online {
    type Item = &'a FullJid;
    type IntoIter = std::slice::Iter<'a, FullJid>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq<Vec<FullJid>> for Online {
    fn eq(&self, other: &Vec<FullJid>) -> bool {
        self.iter().eq(other.iter())
    }
}

/// The channel information node (XEP-0369 §7.2): Name, Description, Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub description: String,
    pub contacts: Vec<BareJid>,
    /// The group's picture and its thumbnail, as the URL, upload token or `data:` URI (the
    /// image's bytes) the client gave.
    pub avatar: String,
    /// The picture's media type (`image/png`), when the client said.
    pub avatar_type: String,
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
            avatar_type: String::new(),
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
    /// Whether its creator named it to be found: a MIX `<create channel='…'/>`. Ad-hoc
    /// channels (the service made the name up) and FlyChat groups (the SDK makes up a UUID
    /// for a conversation among the people it adds) are not; see [`Channel::is_public`].
    pub listed: bool,
    pub info: Info,
    pub created_by: BareJid,
    pub created_at: Micros,
    /// Participants in order of joining (the longest-standing first), found by JID, nick
    /// and id without a scan once there are many.
    pub participants: Roster,
    /// Owners need not be participants (XEP-0406): a MIX channel's creator may never join.
    pub owners: Vec<BareJid>,
    /// Settings, access lists, waiting invitations and requests, mutes: `None` while all are
    /// as a new channel has them, which is most channels' case (boxed, they cost a pointer
    /// instead of a hundred bytes each).
    pub administration: Option<Box<Administration>>,
}

/// What owners and admins set beyond roles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Administration {
    pub settings: Settings,
    pub access: Access,
    /// Invitations and join requests not yet answered, oldest first.
    pub pending: Vec<Pending>,
    /// Muted participants and the time their mute ends.
    pub mutes: Vec<(BareJid, Micros)>,
    /// When an owner or admin last changed what the configuration node shows (roles,
    /// settings, mutes); 0 while nobody has since the channel was made. See
    /// [`Channel::configured_at`].
    pub configured_at: Micros,
}

/// A channel's administration while it has none of its own.
static UNCHANGED: Administration = Administration {
    settings: Settings {
        policy: JoinPolicy::Open,
        muted: false,
        max_members: None,
        jids_hidden: false,
    },
    access: Access {
        allowed: Vec::new(),
        banned: Vec::new(),
    },
    pending: Vec::new(),
    mutes: Vec::new(),
    configured_at: 0,
};

impl Channel {
    pub fn new(key: i64, name: String, owner: BareJid, at: Micros) -> Self {
        Channel {
            key,
            name,
            listed: true,
            info: Info {
                updated_at: at,
                ..Info::default()
            },
            created_by: owner.clone(),
            created_at: at,
            participants: Roster::default(),
            owners: vec![owner],
            administration: None,
        }
    }

    pub fn administration(&self) -> &Administration {
        self.administration.as_deref().unwrap_or(&UNCHANGED)
    }

    /// The channel's own administration, made on first use.
    pub fn administration_mut(&mut self) -> &mut Administration {
        self.administration.get_or_insert_with(Box::default)
    }

    /// The time of the last change to the configuration, which names the configuration
    /// node's one item (XEP-0406): the channel's creation until anyone changes it.
    pub fn configured_at(&self) -> Micros {
        match self.administration().configured_at {
            0 => self.created_at,
            at => at,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.administration().settings
    }

    pub fn access(&self) -> &Access {
        &self.administration().access
    }

    /// The invitation or request of `jid`, if one waits.
    pub fn pending(&self, jid: &BareJid) -> Option<&Pending> {
        self.administration().pending.iter().find(|p| &p.jid == jid)
    }

    /// When the mute of `jid` ends (0: not muted).
    pub fn muted_until(&self, jid: &BareJid) -> Micros {
        let mutes = &self.administration().mutes;
        mutes
            .iter()
            .find(|(j, _)| j == jid)
            .map_or(0, |(_, until)| *until)
    }

    /// Whether anyone may find the channel: it was named to be found ([`Channel::listed`])
    /// and anyone admitted by the access lists may join it without asking (the open join
    /// policy). Invitation-only and request groups, ad-hoc channels and FlyChat groups are
    /// found only by those who take part in them or wait on them.
    pub fn is_public(&self) -> bool {
        self.listed && self.settings().policy == JoinPolicy::Open
    }

    /// Whether `user` may learn that the channel exists (discovery, its disco#info, its
    /// nodes): a participant, an owner, a user with an invitation or a request waiting, or
    /// — for a public channel — anyone the allowed and banned lists admit, that is anyone
    /// with the right to join it (XEP-0369 §6.3: a service lists only the channels the
    /// requester has rights to subscribe to).
    pub fn visible_to(&self, user: &BareJid) -> bool {
        self.participant(user).is_some()
            || self.is_owner(user)
            || self.pending(user).is_some()
            || (self.is_public() && self.access().admits(user))
    }

    /// Whether `viewer` may see the real JIDs of the channel's participants: always in a
    /// channel that does not hide them; in one that does (XEP-0404 'JID Hidden'), only its
    /// owners and admins.
    pub fn shows_jids_to(&self, viewer: &BareJid) -> bool {
        !self.settings().jids_hidden || self.role_of(viewer) >= Role::Admin
    }

    /// [`Channel::shows_jids_to`] for one of its participants, without looking it up (which
    /// would make telling every participant quadratic).
    pub fn shows_jids_to_participant(&self, viewer: &Participant) -> bool {
        !self.settings().jids_hidden || viewer.role >= Role::Admin || self.is_owner(&viewer.jid)
    }

    /// The participant whose participant id is `id`.
    pub fn participant_by_id(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.by_id(id)
    }

    pub fn participant(&self, jid: &BareJid) -> Option<&Participant> {
        self.participants.get(jid)
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
        self.role_of(jid) >= Role::Admin
    }

    /// Owners and admins, the ones told about join requests.
    pub fn admins(&self) -> impl Iterator<Item = &Participant> + Clone {
        self.participants
            .iter()
            .filter(|p| self.role_of(&p.jid) >= Role::Admin)
    }

    pub fn nick_taken(&self, nick: &str, by_other_than: &BareJid) -> bool {
        self.participants.nick_taken(nick, by_other_than)
    }

    /// Participants subscribed to `node`.
    pub fn subscribers(&self, node: Nodes) -> impl Iterator<Item = &Participant> + Clone {
        self.participants.subscribers(node)
    }

    pub(super) fn apply(&mut self, fact: &Fact) {
        match fact {
            Fact::Joined { participant, .. } => {
                // Joining again keeps the place in the order of joining.
                self.participants.put(participant.clone());
                if let Some(admin) = self.administration.as_mut() {
                    admin.pending.retain(|p| p.jid != participant.jid);
                }
            }
            Fact::Left { participant, .. } => {
                self.participants.remove(&participant.jid);
                // Leaving gives up ownership (it passes on: see `leave.rs`) and ends a mute.
                self.owners.retain(|o| o != &participant.jid);
                if let Some(admin) = self.administration.as_mut() {
                    admin.mutes.retain(|(j, _)| j != &participant.jid);
                }
            }
            Fact::RoleChanged { jid, role, .. } => {
                self.participants.update(jid, |p| p.role = *role);
                self.owners.retain(|o| o != jid);
                if *role == Role::Owner {
                    self.owners.push(jid.clone());
                }
            }
            Fact::SettingsChanged { settings, .. } => {
                self.administration_mut().settings = settings.clone()
            }
            Fact::AccessChanged {
                list,
                entry,
                present,
                ..
            } => {
                let list = self.administration_mut().access.list_mut(*list);
                list.retain(|e| e != entry);
                if *present {
                    list.push(entry.clone());
                }
            }
            Fact::Muted { jid, until, .. } => {
                let mutes = &mut self.administration_mut().mutes;
                mutes.retain(|(j, _)| j != jid);
                if *until > 0 {
                    mutes.push((jid.clone(), *until));
                }
            }
            Fact::PendingAdded { pending, .. } => {
                let waiting = &mut self.administration_mut().pending;
                waiting.retain(|p| p.jid != pending.jid);
                waiting.push(pending.clone());
            }
            Fact::PendingResolved { pending, .. } => {
                if let Some(admin) = self.administration.as_mut() {
                    admin.pending.retain(|p| p.jid != pending.jid);
                }
            }
            Fact::NickChanged { jid, nick, .. } => {
                self.participants
                    .update(jid, |p| p.nick = nick.as_str().into());
            }
            Fact::SubscriptionChanged { jid, nodes, .. } => {
                self.participants.update(jid, |p| p.nodes = *nodes);
            }
            Fact::InfoChanged { info, .. } => self.info = info.clone(),
            Fact::HistoryCleared { member, upto, .. } => {
                self.participants
                    .update(member, |p| p.cleared_upto = p.cleared_upto.max(*upto));
            }
            Fact::PresenceChanged { jid, online, .. } => {
                let bare = super::bare_text(jid.as_str());
                self.participants.update_online(bare, |clients| {
                    clients.retain(|j| j != jid);
                    if *online {
                        clients.push(jid.clone());
                    }
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A service holds ten million participants: every byte of one is 10 MB of memory.
    #[test]
    fn a_participant_is_small_and_a_short_nick_needs_no_heap() {
        assert!(std::mem::size_of::<Participant>() <= 72);
        assert_eq!(std::mem::size_of::<Online>(), 8);
        let nick: CompactString = "u1234567".into();
        assert!(!nick.is_heap_allocated());
    }

    #[test]
    fn a_participant_id_is_written_as_16_hex_digits_and_read_back() {
        for id in [0, 1, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
            let written = ParticipantId(id).to_string();
            assert_eq!(written, format!("{id:016x}"));
            assert_eq!(&*ParticipantId(id).hex(), written);
            assert_eq!(written.parse::<ParticipantId>(), Ok(ParticipantId(id)));
        }
    }
}
