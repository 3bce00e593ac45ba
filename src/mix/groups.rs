//! "My groups": `<groups xmlns='urn:mixd:admin:0'/>` in an iq get to the service lists the
//! channels the sender takes part in or owns, each with its name and the sender's role.

use minidom::Element;

use crate::core::{Groups, Outcome};
use crate::dialect::{Envelope, Handled, Service};
use crate::xml::{ns, Xml};

/// "My groups": XEP-0369 has no such query (a client is meant to keep its channels in its
/// roster), so mixd offers one for clients that start without that state. It asks nothing
/// but who the sender is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyGroups;

impl MyGroups {
    pub fn parse(_payload: &Element) -> Outcome<Self> {
        Ok(MyGroups)
    }

    pub fn apply(self, groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
        mine(groups, service, env)
    }
}

fn mine(groups: &Groups, service: &Service, env: &Envelope) -> Outcome<Handled> {
    let user = env.sender();
    let mut mine: Vec<_> = groups.groups_of(&user).collect();
    mine.sort_by(|a, b| a.name.cmp(&b.name));
    let mut x = Xml::new();
    x.open("groups", ns::MIXD_ADMIN);
    for channel in mine {
        x.open("group", "")
            .attr("jid", &service.channel_jid(&channel.name))
            .attr("name", &channel.info.name)
            .attr("role", channel.role_of(&user).name())
            .attr(
                "participant",
                if channel.participant(&user).is_some() {
                    "true"
                } else {
                    "false"
                },
            )
            .close();
    }
    x.close();
    Ok(env.iq_result(Some(&x.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::testing::element;

    #[test]
    fn my_groups_carries_nothing_to_parse() {
        let payload = element("<groups xmlns='urn:mixd:admin:0'/>");
        assert_eq!(MyGroups::parse(&payload).unwrap(), MyGroups);
    }
}
