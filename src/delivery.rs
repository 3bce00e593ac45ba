//! Delivery: what each stored fact means for each participant's clients. A fact is written
//! once as a template and addressed to every online full JID (XEP-0403 presence) of the
//! participants subscribed to the node it concerns.

use crate::core::{Channel, Fact, Groups, Nodes, Participant};
use crate::mix::render::{self, Template, NODE_INFO, NODE_PARTICIPANTS};
use crate::mix::Service;
use crate::xml::ns;

/// Appends to `out` the stanzas that tell participants about `facts`, which the core has
/// already applied to `groups`.
pub fn deliver(groups: &Groups, service: &Service, facts: &[Fact], out: &mut Vec<String>) {
    for fact in facts {
        match fact {
            Fact::Posted(posted) => {
                let Some(channel) = groups.channel_by_key(posted.channel) else {
                    continue;
                };
                let jid = service.channel_jid(&channel.name);
                let template = Template::new(|x| {
                    render::channel_message(x, ns::COMPONENT, &jid, Some(Template::TO), posted)
                });
                address(&template, channel.subscribers(Nodes::MESSAGES), out);
            }
            Fact::Joined { key, participant } => {
                participant_item(groups, service, *key, participant, out)
            }
            Fact::NickChanged { key, jid, .. } => {
                if let Some(p) = groups.channel_by_key(*key).and_then(|c| c.participant(jid)) {
                    participant_item(groups, service, *key, p, out);
                }
            }
            Fact::Left { key, participant } => {
                let Some(channel) = groups.channel_by_key(*key) else {
                    continue;
                };
                let template = render::event(
                    &service.channel_jid(&channel.name),
                    NODE_PARTICIPANTS,
                    |x| {
                        x.open("retract", "").attr("id", &participant.id).close();
                    },
                );
                address(&template, channel.subscribers(Nodes::PARTICIPANTS), out);
            }
            Fact::InfoChanged { key, info } => {
                let Some(channel) = groups.channel_by_key(*key) else {
                    continue;
                };
                let template = render::event(&service.channel_jid(&channel.name), NODE_INFO, |x| {
                    x.open("item", "")
                        .attr("id", &render::timestamp(info.updated_at));
                    render::info_form(x, info);
                    x.close();
                });
                address(&template, channel.subscribers(Nodes::INFO), out);
            }
            Fact::ChannelDestroyed { channel } => destroyed(service, channel, out),
            Fact::ChannelCreated { .. }
            | Fact::SubscriptionChanged { .. }
            | Fact::PresenceChanged { .. } => {}
        }
    }
}

fn address<'a>(
    template: &Template,
    recipients: impl Iterator<Item = &'a Participant>,
    out: &mut Vec<String>,
) {
    for participant in recipients {
        for client in &participant.online {
            out.push(template.to(client.as_str()));
        }
    }
}

fn participant_item(
    groups: &Groups,
    service: &Service,
    key: i64,
    participant: &Participant,
    out: &mut Vec<String>,
) {
    let Some(channel) = groups.channel_by_key(key) else {
        return;
    };
    let template = render::event(
        &service.channel_jid(&channel.name),
        NODE_PARTICIPANTS,
        |x| {
            x.open("item", "").attr("id", &participant.id);
            render::participant(x, participant);
            x.close();
        },
    );
    address(&template, channel.subscribers(Nodes::PARTICIPANTS), out);
}

/// Every participant learns that the channel is gone: a pubsub node deletion (which pubsub
/// clients understand) together with MIX's `<destroy/>` naming the channel.
fn destroyed(service: &Service, channel: &Channel, out: &mut Vec<String>) {
    let jid = service.channel_jid(&channel.name);
    let template = Template::new(|x| {
        x.open("message", ns::COMPONENT)
            .attr("from", &jid)
            .attr("to", Template::TO)
            .attr("type", "headline")
            .open("event", ns::PUBSUB_EVENT)
            .open("delete", "")
            .attr("node", NODE_PARTICIPANTS)
            .close()
            .close()
            .open("destroy", ns::MIX_CORE)
            .attr("channel", &channel.name)
            .close();
    });
    address(&template, channel.participants.iter(), out);
}
