//! Shapes both dialects send: `normal` messages to a user's bare JID (which stock servers
//! deliver to every resource or keep offline), the pending invitations and join requests, an
//! XEP-0407 invitation, and every member's receipt state of a message (the read behind MIX's
//! `<message-state/>` and FlyChat's `group_message_status`).

use jid::BareJid;

use super::ids::Ids;
use super::{Envelope, ErrorKind, Handled};
use crate::core::{iso_time, MessageRef, Micros, Pending, PendingKind};
use crate::xml::{ns, Template, Xml};

/// A `normal` message from the channel, for a user's bare JID: what FlyChat clients get, and
/// membership notifications (invitations, join requests, decisions) in both dialects.
/// `write` puts in the payload.
pub fn normal_message(channel_jid: &str, write: impl FnOnce(&mut Xml)) -> Template {
    Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", channel_jid)
            .attr("to", Template::TO)
            .attr("type", "normal");
        write(x);
    })
}

/// An XEP-0407 `<invitation/>`; its token is a MAC of the invitation under the service's
/// key (`Ids::invitation_token`): opaque, unpredictable, and informational (the invitee is
/// admitted by its bare JID). `inviter` is the inviter as the invitee may see it (its proxy
/// JID in a JID-hidden channel).
pub fn invitation(x: &mut Xml, ids: &Ids, channel_jid: &str, invitation: &Pending, inviter: &str) {
    let token = ids.invitation_token(channel_jid, invitation.jid.as_str(), invitation.at);
    x.open("invitation", ns::MIX_MISC)
        .leaf("inviter", "", inviter)
        .leaf("invitee", "", invitation.jid.as_str())
        .leaf("channel", "", channel_jid)
        .leaf("token", "", &token)
        .close();
}

/// Invitations (`<invited/>`) and join requests (`<requested/>`) waiting.
pub fn pending(x: &mut Xml, pending: &[Pending]) {
    for p in pending {
        let element = match p.kind {
            PendingKind::Invited => "invited",
            PendingKind::Requested => "requested",
        };
        x.open(element, "")
            .attr("jid", p.jid.as_str())
            .attr("by", p.by.as_str())
            .attr("at", &iso_time(p.at))
            .close();
    }
}

/// One member's state of a message: when it got it and when it saw it.
pub struct MemberState {
    pub member: BareJid,
    pub delivered_at: Option<Micros>,
    pub displayed_at: Option<Micros>,
}

/// Reads, off the rules task, every member's state of `message` (`members`: the participants
/// other than its author); `render` writes the iq result's payload.
pub fn member_states(
    env: &Envelope,
    message: MessageRef,
    members: Vec<BareJid>,
    render: impl FnOnce(&MessageRef, &[MemberState]) -> String + Send + 'static,
) -> Handled {
    let reply_to = env.reply_to();
    Handled::read(env, move |reader| {
        let receipts = match reader.receipts(message.id) {
            Ok(receipts) => receipts,
            Err(error) => {
                tracing::error!(%error, "reading receipts failed");
                return vec![reply_to.storage_failed(ErrorKind::Iq)];
            }
        };
        let states: Vec<MemberState> = members
            .into_iter()
            .map(|member| {
                let receipt = receipts.iter().find(|r| r.member == member);
                MemberState {
                    delivered_at: receipt.and_then(|r| r.delivered_at),
                    displayed_at: receipt.and_then(|r| r.displayed_at),
                    member,
                }
            })
            .collect();
        vec![reply_to.iq_result(Some(&render(&message, &states)))]
    })
}
