//! FlyChat shapes: dates, roles, the group vCard, and a group message as the SDK parses it.

use jid::BareJid;
use rxml::{AttrMap, Namespace};

use crate::core::{
    Channel, ChatState, Corrected, Info, Micros, Participant, Posted, ReceiptKind, Retracted, Role,
};

use crate::dialect::ids::Ids;
use crate::dialect::proxy::Naming;
use crate::dialect::shapes::normal_message;
use crate::store::{Archived, Completion, MemberReceipt};
use crate::xml::parse::{Build, Parser, Scope};
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

impl Payload {
    /// What a stored payload that does not parse shows as (old rows, hand-edited
    /// databases): an empty text message.
    fn empty() -> Payload {
        Payload {
            body: String::new(),
            message_type: "text".into(),
            meta_data: String::new(),
            edit_id: String::new(),
        }
    }
}

/// Reads archived payloads into [`Payload`]s, with one parser's scratch kept from one row to
/// the next (one per page).
///
/// Each is read by the link's own parser ([`crate::xml::parse`]: one pass over the slice)
/// into [`Reading`], which keeps the first top-level `<body/>`'s own text and the first
/// top-level `<chatcontent/>`'s attributes and builds nothing else. rxml did this before, a
/// fresh streaming parser a row lexing a byte at a time: about 2 µs a row, half of a FlyChat
/// page's rendering (docs/benchmarks.md, "What a history page costs beyond the store").
/// Both parsers accept the same fragments (the tests compare them) but for what mixd never
/// stores: what it stores it wrote itself, from stanzas the link's parser read.
#[derive(Debug, Default)]
pub struct Payloads {
    parser: Parser,
    /// The fragment inside a wrapper that gives its children the stanza's namespace.
    wrapped: String,
}

impl Payloads {
    /// `archived`'s [`Payload`]; a stored payload that does not parse shows as an empty text
    /// message.
    pub fn read(&mut self, archived: &Archived) -> Payload {
        self.read_content(&archived.posted.submission.content)
            .unwrap_or_else(Payload::empty)
    }

    /// [`Payloads::read`]'s reading of `content`; `None` if it is not a well-formed
    /// fragment.
    fn read_content(&mut self, content: &str) -> Option<Payload> {
        self.wrapped.clear();
        self.wrapped
            .extend(["<x xmlns='", ns::CLIENT, "'>", content, "</x>"]);
        let mut reading = Reading::default();
        self.parser
            .read_into(self.wrapped.as_bytes(), &Scope::default(), &mut reading)
            .ok()?;
        let mut chatcontent = reading.chatcontent.unwrap_or_default();
        let mut attr = |name: &str| {
            // Taken, not copied: each is read once.
            chatcontent
                .get_mut(&Namespace::NONE, name)
                .map(std::mem::take)
        };
        Some(Payload {
            body: reading.body,
            message_type: attr("message_type").unwrap_or_else(|| "text".into()),
            meta_data: attr("meta_data").unwrap_or_default(),
            edit_id: attr("edit_msg_id").unwrap_or_default(),
        })
    }
}

/// What [`Payloads`] keeps of a fragment (inside its wrapper, at depth 1) as the parser reads
/// it.
#[derive(Debug, Default)]
struct Reading {
    depth: usize,
    /// The first top-level `<body/>`'s own text (not that of elements inside it).
    body: String,
    seen_body: bool,
    /// While inside the first top-level `<body/>`.
    in_body: bool,
    chatcontent: Option<AttrMap>,
}

impl Build for Reading {
    fn start(&mut self, namespace: &str, name: &str, attrs: AttrMap) {
        self.depth += 1;
        if self.depth != 2 {
            return;
        }
        if !self.seen_body && name == "body" && namespace == ns::CLIENT {
            self.seen_body = true;
            self.in_body = true;
        } else if self.chatcontent.is_none() && name == "chatcontent" && namespace == CONTENT {
            self.chatcontent = Some(attrs);
        }
    }

    fn text(&mut self, text: String) {
        if self.in_body && self.depth == 2 {
            match self.body.is_empty() {
                true => self.body = text,
                false => self.body.push_str(&text),
            }
        }
    }

    fn end(&mut self) {
        if self.depth == 2 {
            self.in_body = false;
        }
        self.depth -= 1;
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

#[cfg(test)]
mod tests {
    use super::{ns, Payload, Payloads, CONTENT};
    use crate::xml::parse::testing::mutated;

    /// The fields of a payload, to compare.
    type Fields = (String, String, String, String);

    fn fields(payload: Payload) -> Fields {
        (
            payload.body,
            payload.message_type,
            payload.meta_data,
            payload.edit_id,
        )
    }

    fn ours(payloads: &mut Payloads, content: &str) -> Option<Fields> {
        payloads.read_content(content).map(fields)
    }

    /// The reading before this one (rxml, a streaming parser, over the fragment in a
    /// wrapper), kept as the oracle the new one is compared with.
    fn rxml(content: &str) -> Option<Fields> {
        use rxml::{Event, Namespace, Parse, Parser};
        let mut parser = Parser::default();
        let wrapper = format!("<x xmlns='{}'>", ns::CLIENT);
        let pieces: [(&[u8], bool); 3] = [
            (wrapper.as_bytes(), false),
            (content.as_bytes(), false),
            (b"</x>", true),
        ];
        let mut body: Option<String> = None;
        let mut chatcontent: Option<rxml::AttrMap> = None;
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
        Some((
            body.unwrap_or_default(),
            attr("message_type").unwrap_or_else(|| "text".into()),
            attr("meta_data").unwrap_or_default(),
            attr("edit_msg_id").unwrap_or_default(),
        ))
    }

    /// What mixd never stores (it writes what it stores from stanzas the link's parser
    /// read), where the two parsers differ (`xml/parse.rs`'s module doc): comments, CDATA
    /// sections, processing instructions, carriage returns in values, two default namespace
    /// declarations on one tag.
    fn not_compared(content: &str) -> bool {
        content.contains('\r')
            || content.contains("<!")
            || content.contains("<?")
            || content.split('<').any(|tag| {
                tag.split('>')
                    .next()
                    .unwrap_or("")
                    .matches("xmlns=")
                    .count()
                    > 1
            })
    }

    const CASES: &[&str] = &[
        "",
        "   ",
        "text only",
        "<body>archived message number 12</body>",
        "<body>hello <b>bold</b>world &amp; more</body>",
        "<body>a&lt;b&gt;c &#x263A;&#65; &quot;q&apos;</body>",
        "<body></body><body>second</body>",
        "<body/>",
        "<body>one</body><body>two</body>",
        "<x xmlns='other'><body>nested</body></x><body>top</body>",
        "<x xmlns='jabber:client'><body>nested in client</body></x>",
        "<body xmlns='other'>not this</body><body>this</body>",
        "<c:body xmlns:c='jabber:client'>prefixed</c:body>",
        "<body xml:lang='en'>lang</body>",
        "<body>a<x/>b<y>c</y>d</body>",
        "<body>\n  spaced \t</body>\n",
        "<body>first</body> tail <chatcontent xmlns='urn:xmpp:flychat:content'/>",
        "<chatcontent xmlns='urn:xmpp:flychat:content' message_type='image' \
            meta_data='{&quot;w&quot;:1}' edit_msg_id='e-2'/><body>b</body>",
        "<chatcontent xmlns='urn:xmpp:flychat:content' message_type='file'>\
            <chatcontent message_type='inner'/></chatcontent>",
        "<chatcontent xmlns='urn:xmpp:flychat:content'/>\
            <chatcontent xmlns='urn:xmpp:flychat:content' message_type='second'/>",
        "<f:chatcontent xmlns:f='urn:xmpp:flychat:content' message_type='p' f:meta_data='ns'/>",
        "<chatcontent xmlns='urn:xmpp:flychat:content' xmlns:q='urn:q' q:message_type='q' \
            meta_data='a\tb\nc'/>",
        "<chatcontent message_type='no namespace'/>",
        "<chatcontent xmlns='other' message_type='other'/>",
        "<body>open",
        "<body>a</body",
        "</x><body>out</body>",
        "<body>a</b>",
        "<body a='1' a='2'>dup</body>",
        "<q:body>undeclared</q:body>",
        "<body>&nbsp;</body>",
        "<body>&#0;</body>",
        "<body>a]]>b</body>",
        "<body>\u{1}</body>",
        "<body a=x>v</body>",
        "<body>é ☺ \u{1F600}</body>",
    ];

    #[test]
    fn a_payload_is_read_from_its_top_level_body_and_chatcontent() {
        let content = "<body>hello <b>bold</b>world &amp; more</body>\
            <chatcontent xmlns='urn:xmpp:flychat:content' message_type='image' \
            meta_data='{&quot;w&quot;:1}' edit_msg_id='e-2'/>\
            <body>second</body>\
            <x xmlns='other'><body>nested</body></x>";
        let content = content.replace("urn:xmpp:flychat:content", CONTENT);
        let (body, message_type, meta_data, edit_id) =
            ours(&mut Payloads::default(), &content).unwrap();
        assert_eq!(body, "hello world & more");
        assert_eq!(message_type, "image");
        assert_eq!(meta_data, "{\"w\":1}");
        assert_eq!(edit_id, "e-2");
    }

    #[test]
    fn a_payload_without_its_parts_or_not_well_formed() {
        let mut payloads = Payloads::default();
        let other = ours(
            &mut payloads,
            "<body xmlns='other'>not this</body><chatcontent/>",
        );
        let nothing = || (String::new(), "text".into(), String::new(), String::new());
        assert_eq!(other, Some(nothing()));
        assert_eq!(ours(&mut payloads, "<body>open"), None);
        assert_eq!(ours(&mut payloads, "</x><body>out</body>"), None);
        assert_eq!(ours(&mut payloads, ""), Some(nothing()));
        assert_eq!(fields(Payload::empty()), nothing());
    }

    /// The fragments a seed's stanzas hold: each stanza, and what is inside it.
    fn seed_fragments() -> Vec<String> {
        let mut fragments = Vec::new();
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds");
        for dir in std::fs::read_dir(seeds).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let bytes = std::fs::read(file.unwrap().path()).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                let Some(start) = text.find('<') else {
                    continue;
                };
                let stanza = &text[start..];
                fragments.push(stanza.to_owned());
                if let (Some(open), Some(close)) = (stanza.find('>'), stanza.rfind("</")) {
                    if open < close {
                        fragments.push(stanza[open + 1..close].to_owned());
                    }
                }
            }
        }
        fragments
    }

    /// The new reading gives what the old one gave, over the cases above, the fuzz seeds'
    /// stanzas and their contents, and thousands of mutations of them.
    #[test]
    fn payloads_read_as_rxml_read_them() {
        let mut inputs: Vec<String> = CASES
            .iter()
            .map(|c| c.replace("urn:xmpp:flychat:content", CONTENT))
            .collect();
        inputs.extend(seed_fragments());
        let mut payloads = Payloads::default();
        let mut read = 0;
        for input in &inputs {
            if !not_compared(input) {
                let got = ours(&mut payloads, input);
                assert_eq!(got, rxml(input), "{input:?}");
                read += usize::from(got.is_some());
            }
        }
        assert!(read > inputs.len() / 2, "{read} of {}", inputs.len());
        let alphabet: &[u8] = b"<>/='\"&;#x:! \t\n]ab\xc3\xa9";
        let inputs: Vec<Vec<u8>> = inputs.into_iter().map(String::into_bytes).collect();
        let (mut compared, mut accepted, mut with_body, mut typed) = (0, 0, 0, 0);
        for input in mutated(&inputs, alphabet, 0x2545_f491_4f6c_dd1d, 30_000) {
            // Stored payloads are text.
            let Ok(input) = String::from_utf8(input) else {
                continue;
            };
            if not_compared(&input) {
                continue;
            }
            let got = ours(&mut payloads, &input);
            assert_eq!(got, rxml(&input), "{input:?}");
            compared += 1;
            accepted += usize::from(got.is_some());
            with_body += usize::from(got.as_ref().is_some_and(|(body, ..)| !body.is_empty()));
            typed += usize::from(got.is_some_and(|(_, message_type, ..)| message_type != "text"));
        }
        eprintln!(
            "{compared} compared, {accepted} read by both: {with_body} with a body, {typed} typed"
        );
        assert!(
            compared > 20_000 && accepted > 5_000 && with_body > 500 && typed > 50,
            "{compared}, {accepted}, {with_body}, {typed}"
        );
    }
}
