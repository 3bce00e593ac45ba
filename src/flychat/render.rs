//! FlyChat shapes: dates, roles, the group vCard, and a group message as the SDK parses it.

use jid::BareJid;

use crate::core::{
    Channel, ChatState, Corrected, Info, Micros, Participant, Posted, ReceiptKind, Retracted, Role,
};

use crate::dialect::ids::Ids;
use crate::dialect::proxy::Naming;
use crate::dialect::shapes::normal_message;
use crate::store::{Archived, Completion, MemberReceipt};
use crate::xml::Template;
use crate::xml::{ns, Xml};

use super::wire::CONTENT;
use super::VCARD;
use crate::xml::node;

/// Times as the SDK reads them in messages and receipts: microseconds, 16 digits.
pub fn time(at: Micros) -> String {
    at.to_string()
}

/// `o` for owners and admins, `n` for members.
pub fn affiliation(role: Role) -> &'static str {
    if role >= Role::Admin {
        "o"
    } else {
        "n"
    }
}

pub fn group_vcard(x: &mut Xml, info: &Info) {
    x.open("vCard", VCARD)
        .leaf("nickName", "", &info.name)
        .leaf("image", "", &info.avatar)
        .leaf("thumbImage", "", &info.thumbnail)
        .leaf("history", "", if info.history_visible { "1" } else { "0" })
        .close();
}

/// A group message for a FlyChat client: `type='normal'` to its bare JID (stock servers
/// deliver those to every online resource, or keep them offline), with the payload as sent,
/// `<mix>` carrying the sender's message id as `<submission-id>` and its JID, and the time
/// in microseconds (16 digits, which the SDK reads as such). The stanza's id and stanza-id
/// are the archive id's opaque form, in FlyChat's digits (`dialect::ids`). Users are named
/// as `names` shows them (`dialect::proxy::Naming`: proxy JIDs in a JID-hidden channel).
pub fn message(ids: &Ids, channel_jid: &str, posted: &Posted, names: &Naming) -> Template {
    let archive_id = ids.encode_digits(posted.id);
    group_message(
        channel_jid,
        &archive_id,
        &GroupMessage {
            archive_id: &archive_id,
            client_id: posted.submission.client_id.as_deref(),
            content: &posted.submission.content,
            sender: &names.jid(&posted.sender),
            nick: &posted.nick,
            at: posted.at,
        },
    )
}

/// An SDK edit for the other FlyChat clients: the message again, with its new payload (whose
/// `<chatcontent/>` carries the edit's `edit_msg_id`), under the id the SDK knows it by, in
/// `<submission-id>`. The SDK takes a message whose `edit_msg_id` differs from that id for
/// an edit of it (its `editMessageListener`). The stanza's own id names the message and the
/// time, so that successive edits differ.
pub fn edit(ids: &Ids, channel_jid: &str, corrected: &Corrected, names: &Naming) -> Template {
    let archive_id = ids.encode_digits(corrected.message);
    group_message(
        channel_jid,
        &format!("{archive_id}-{}", corrected.at),
        &GroupMessage {
            archive_id: &archive_id,
            client_id: corrected.client_id.as_deref(),
            content: &corrected.submission.content,
            sender: &names.jid(&corrected.sender),
            nick: &corrected.nick,
            at: corrected.at,
        },
    )
}

/// What a group message shows: the message's archive id (opaque, in digits), the id its
/// sender gave it, if any, the payload, who sent it, under which nick, and when.
struct GroupMessage<'a> {
    archive_id: &'a str,
    client_id: Option<&'a str>,
    content: &'a str,
    sender: &'a str,
    nick: &'a str,
    at: Micros,
}

fn group_message(channel_jid: &str, id: &str, m: &GroupMessage) -> Template {
    let submission_id = m.client_id.unwrap_or(m.archive_id);
    Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", channel_jid)
            .attr("to", Template::TO)
            .attr("id", id)
            .attr("type", "normal")
            .raw(m.content)
            .open("mix", ns::MIX_CORE)
            .leaf("submission-id", "", submission_id)
            .leaf("jid", "", m.sender)
            .leaf("nick", "", m.nick)
            .close()
            .open("timestamp", "urn:xmpp:timestamp")
            .attr("time", &time(m.at))
            .close()
            .open("stanza-id", ns::SID)
            .attr("by", channel_jid)
            .attr("id", m.archive_id)
            .close();
    })
}

/// A `normal` message from the group as the SDK turns it into an app message: with an `id`
/// (the app's `msgId`) and a `<timestamp>` (its `timestamp`), without which the app sees
/// `msgId: null` and `timestamp: 0`. `write` puts in the rest.
fn stamped(channel_jid: &str, write: impl FnOnce(&mut Xml)) -> Template {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or_default();
    let mut random = [0u8; 8];
    // An id only needs to be unique; without randomness the time alone still is, nearly.
    let _ = getrandom::fill(&mut random);
    let id = format!(
        "{now:x}{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    normal_message(channel_jid, |x| {
        x.attr("id", &id)
            .open("timestamp", "urn:xmpp:timestamp")
            .attr("time", &time(now))
            .close();
        write(x);
    })
}

/// A `normal` message from the group carrying an `<event>`; `write` fills the event.
fn event(channel_jid: &str, write: impl FnOnce(&mut Xml)) -> Template {
    stamped(channel_jid, |x| {
        x.open("event", ns::PUBSUB_EVENT);
        write(x);
    })
}

/// `userAdded`: an item published by whoever added (or, on a join, the user itself), with
/// the participant and the group's name.
pub fn user_added(
    channel_jid: &str,
    channel: &Channel,
    participant: &Participant,
    by: &BareJid,
    names: &Naming,
) -> Template {
    event(channel_jid, |x| {
        x.open("items", "")
            .attr("node", node::PARTICIPANTS)
            .open("item", "")
            .attr("id", &participant.id.to_string())
            .attr("publisher", &names.jid(by))
            .open("participant", ns::MIX_CORE)
            .attr("jid", &names.participant(participant))
            .attr("nick", &channel.info.name);
        x.open("vCard", VCARD)
            .leaf("nickName", "", &participant.nick)
            .close();
    })
}

/// `userLeft` when `by` is the user, `userRemoved` otherwise.
pub fn user_left(
    channel_jid: &str,
    participant: &Participant,
    by: &BareJid,
    names: &Naming,
) -> Template {
    event(channel_jid, |x| {
        x.open("items", "")
            .attr("node", node::PARTICIPANTS)
            .open("retract", "")
            .attr("id", &participant.id.to_string())
            .close()
            .open("item", "")
            .attr("publisher", &names.jid(by))
            .leaf("jid", "", &names.participant(participant));
    })
}

/// `profileUpdated`, with the profile as it now is.
pub fn profile_updated(channel_jid: &str, info: &Info, by: &str) -> Template {
    event(channel_jid, |x| {
        x.open("info", "")
            .attr("status", "group_profile_updated")
            .attr("done_by", by);
        group_vcard(x, info);
    })
}

/// `madeAdmin`.
pub fn made_admin(channel_jid: &str, admin: &str, by: &str) -> Template {
    event(channel_jid, |x| {
        x.open("info", "")
            .attr("new_admin", admin)
            .attr("done_by", by)
            .close();
    })
}

/// mixd's own group events, in the shape of `madeAdmin` (an `<info>` with `done_by`), which
/// the SDK passes on and answers by fetching the participants again:
/// `status='admin_revoked'`, `'owner_changed'`, `'user_muted'`, `'group_settings_updated'`,
/// `'access_updated'`. `attributes` are the event's own.
pub fn info_event(
    channel_jid: &str,
    status: &str,
    by: &str,
    attributes: &[(&str, &str)],
) -> Template {
    // Not an `<info>` in an `<event>`: the SDK takes any `<info>` for `madeAdmin` and throws
    // without `new_admin`. An element of mixd's own namespace the SDK does not look for
    // passes it by; the change is in history (a notice row) and in the next participant list.
    stamped(channel_jid, |x| {
        x.open("admin", ns::MIXD_ADMIN)
            .attr("status", status)
            .attr("done_by", by);
        for (name, value) in attributes {
            x.attr(name, value);
        }
        x.close();
    })
}

/// The group is gone (`deleteChat`).
pub fn group_deleted(channel_jid: &str, name: &str) -> Template {
    stamped(channel_jid, |x| {
        x.open("groupdelete", super::NS)
            .attr("group_id", name)
            .close();
    })
}

/// A `normal` message from the group with one element `write` puts in, and who it is about.
fn notice(channel_jid: &str, about: Option<&str>, write: impl FnOnce(&mut Xml)) -> Template {
    stamped(channel_jid, |x| {
        write(x);
        if let Some(jid) = about {
            x.open("mix", ns::MIX_CORE).leaf("jid", "", jid).close();
        }
    })
}

/// Someone typing (`composing`) or no longer (`gone`: every other chat state).
pub fn typing(channel_jid: &str, sender: &str, state: ChatState) -> Template {
    let name = if state == ChatState::Composing {
        "composing"
    } else {
        "gone"
    };
    // The SDK takes the group from `group_id` as a JID (its local part).
    notice(channel_jid, Some(sender), |x| {
        x.open(name, ns::CHATSTATES)
            .attr("group_id", channel_jid)
            .close();
    })
}

/// A message recalled (retracted or moderated), named by the id its sender gave it (else
/// its opaque archive id).
pub fn recall(
    ids: &Ids,
    channel_jid: &str,
    group: &str,
    retracted: &Retracted,
    names: &Naming,
) -> Template {
    let id = retracted
        .client_id
        .clone()
        .unwrap_or_else(|| ids.encode_digits(retracted.message));
    notice(channel_jid, Some(&names.jid(&retracted.by)), |x| {
        x.open("recall", super::NS)
            .attr("chat_type", "normal")
            .attr("group_id", group)
            .attr("id", &id)
            .close();
    })
}

/// To the author: every member has the message (`delivered`, status 1) or has seen it
/// (`seen`, status 2).
pub fn aggregated_receipt(
    ids: &Ids,
    channel_jid: &str,
    group: &str,
    done: &Completion,
) -> Template {
    let id = done
        .client_id
        .clone()
        .unwrap_or_else(|| ids.encode_digits(done.message));
    let (element, status) = match done.kind {
        ReceiptKind::Delivered => ("delivered", "1"),
        ReceiptKind::Displayed => ("seen", "2"),
    };
    notice(channel_jid, None, |x| {
        x.open(element, ns::RECEIPTS)
            .attr("id", &id)
            .attr("group_id", group)
            .attr("message_status", status)
            .close();
    })
}

/// The body text and `<chatcontent/>` attributes of an archived payload, as history rows and
/// looked-up messages show them.
pub struct Payload {
    pub body: String,
    pub message_type: String,
    pub meta_data: String,
    /// `edit_msg_id`: the id of the SDK edit that made this payload; empty for a payload as
    /// first posted.
    pub edit_id: String,
}

pub fn payload(archived: &Archived) -> Payload {
    let parsed: Option<minidom::Element> = format!(
        "<x xmlns='{}'>{}</x>",
        ns::CLIENT,
        archived.posted.submission.content
    )
    .parse()
    .ok();
    let content = parsed
        .as_ref()
        .and_then(|x| x.get_child("chatcontent", CONTENT));
    let attr = |name: &str| {
        content
            .and_then(|c| c.attr(name))
            .unwrap_or_default()
            .to_owned()
    };
    Payload {
        body: parsed
            .as_ref()
            .and_then(|x| x.get_child("body", ns::CLIENT))
            .map(|b| b.text())
            .unwrap_or_default(),
        message_type: content
            .and_then(|c| c.attr("message_type"))
            .unwrap_or("text")
            .to_owned(),
        meta_data: attr("meta_data"),
        edit_id: attr("edit_msg_id"),
    }
}

/// A message's receipt states as one reader is shown them, as the SDK counts them (0 sent,
/// 1 delivered, 2 seen).
pub struct ReceiptStates {
    /// The reader's own receipt of another's message — the SDK sends delivered and seen
    /// again for a message at `0` — and `2` on the reader's own messages: it has nothing to
    /// acknowledge.
    pub own: &'static str,
    /// What the SDK shows as the message's state: the least advanced of the other members'.
    pub group: &'static str,
}

impl ReceiptStates {
    pub fn of(posted: &Posted, reader: &BareJid, receipts: &[MemberReceipt]) -> ReceiptStates {
        let own = if &posted.sender == reader {
            "2"
        } else {
            receipt_status(receipts.iter().find(|r| &r.member == reader))
        };
        let group = receipts
            .iter()
            .filter(|r| r.member != posted.sender)
            .map(|r| receipt_status(Some(r)))
            .min()
            .unwrap_or("0");
        ReceiptStates { own, group }
    }
}

fn receipt_status(receipt: Option<&MemberReceipt>) -> &'static str {
    match receipt {
        Some(r) if r.displayed_at.is_some() => "2",
        Some(r) if r.delivered_at.is_some() => "1",
        _ => "0",
    }
}
