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

/// An event on the participants node: `write` fills its `<items/>`.
fn participants_event(channel_jid: &str, write: impl FnOnce(&mut Xml)) -> Template {
    event(channel_jid, |x| {
        x.open("items", "").attr("node", node::PARTICIPANTS);
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
    participants_event(channel_jid, |x| {
        x.open("item", "")
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
    participants_event(channel_jid, |x| {
        x.open("retract", "")
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

/// `archived`'s [`Payload`], read from the stored form as it streams through the parser, without building its tree
/// (a page of 50 rows did a tree of each: docs/benchmarks.md, "History pages, fewer steps"):
/// the first top-level `<body/>`'s own text and the first top-level `<chatcontent/>`'s
/// attributes. A stored payload that does not parse shows as an empty text message.
pub fn payload(archived: &Archived) -> Payload {
    read_payload(&archived.posted.submission.content).unwrap_or(Payload {
        body: String::new(),
        message_type: "text".into(),
        meta_data: String::new(),
        edit_id: String::new(),
    })
}

/// [`payload`]'s reading; `None` if `content` is not a well-formed fragment.
fn read_payload(content: &str) -> Option<Payload> {
    use rxml::{Event, Namespace, Parse, Parser};
    let mut parser = Parser::default();
    // The fragment inside a wrapper that gives its children the stanza's namespace.
    let wrapper = format!("<x xmlns='{}'>", ns::CLIENT);
    let pieces: [(&[u8], bool); 3] = [
        (wrapper.as_bytes(), false),
        (content.as_bytes(), false),
        (b"</x>", true),
    ];
    let mut body: Option<String> = None;
    let mut chatcontent: Option<rxml::AttrMap> = None;
    // Depth 1 is the wrapper's children; `in_body` while inside the first body, at depth 2.
    let (mut depth, mut in_body) = (0usize, false);
    for (mut bytes, at_end) in pieces {
        loop {
            let event = match parser.parse(&mut bytes, at_end) {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(rxml::error::EndOrError::NeedMoreData) => break,
                Err(rxml::error::EndOrError::Error(_)) => return None,
            };
            match event {
                Event::XmlDeclaration(..) => {}
                Event::StartElement(_, (namespace, name), attrs) => {
                    depth += 1;
                    if depth == 2 {
                        if body.is_none() && name == "body" && namespace == ns::CLIENT {
                            body = Some(String::new());
                            in_body = true;
                        } else if chatcontent.is_none()
                            && name == "chatcontent"
                            && namespace == CONTENT
                        {
                            chatcontent = Some(attrs);
                        }
                    }
                }
                Event::Text(_, text) => {
                    if in_body && depth == 2 {
                        body.get_or_insert_with(String::new).push_str(&text);
                    }
                }
                Event::EndElement(_) => {
                    if depth == 2 {
                        in_body = false;
                    }
                    depth = depth.checked_sub(1)?;
                }
            }
        }
    }
    let attr = |name: &str| {
        chatcontent
            .as_ref()
            .and_then(|c| c.get(&Namespace::NONE, name))
            .cloned()
    };
    Some(Payload {
        body: body.unwrap_or_default(),
        message_type: attr("message_type").unwrap_or_else(|| "text".into()),
        meta_data: attr("meta_data").unwrap_or_default(),
        edit_id: attr("edit_msg_id").unwrap_or_default(),
    })
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

#[cfg(test)]
mod tests {
    use super::read_payload;

    #[test]
    fn a_payload_is_read_from_its_top_level_body_and_chatcontent() {
        let content = "<body>hello <b>bold</b>world &amp; more</body>\
            <chatcontent xmlns='urn:xmpp:flychat:content' message_type='image' \
            meta_data='{&quot;w&quot;:1}' edit_msg_id='e-2'/>\
            <body>second</body>\
            <x xmlns='other'><body>nested</body></x>";
        let content = content.replace("urn:xmpp:flychat:content", super::CONTENT);
        let payload = read_payload(&content).unwrap();
        assert_eq!(payload.body, "hello world & more");
        assert_eq!(payload.message_type, "image");
        assert_eq!(payload.meta_data, "{\"w\":1}");
        assert_eq!(payload.edit_id, "e-2");
    }

    #[test]
    fn a_payload_without_its_parts_or_not_well_formed() {
        let other = read_payload("<body xmlns='other'>not this</body><chatcontent/>").unwrap();
        assert_eq!(
            (other.body.as_str(), other.message_type.as_str()),
            ("", "text")
        );
        assert_eq!((other.meta_data.as_str(), other.edit_id.as_str()), ("", ""));
        assert!(read_payload("<body>open").is_none());
        assert!(read_payload("</x><body>out</body>").is_none());
        assert!(read_payload("").is_some());
    }
}
