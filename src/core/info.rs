//! Channel information (XEP-0369 §7.2.2, §7.3.6): Name, Description and Contact, changed by
//! an owner or admin. Each change is stamped; the stamp is the info node item's id.

use jid::BareJid;

use super::{Condition, Fact, Groups, Info, Micros, Outcome, Refusal, Role};

/// The parts of the info node a change may set; `None` keeps the current value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InfoChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub contacts: Option<Vec<BareJid>>,
    pub avatar: Option<String>,
    pub avatar_type: Option<String>,
    pub thumbnail: Option<String>,
    pub history_visible: Option<bool>,
}

pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Pictures may come inline (`data:` URIs; the FlyChat SDK sends base64 thumbnails). Every
/// channel's information is kept in memory, hence a modest bound.
pub const MAX_IMAGE_BYTES: usize = 32 * 1024;
const MAX_MEDIA_TYPE_BYTES: usize = 127;

/// Whether `change` is within the limits, before anything is applied.
pub fn check_info(change: &InfoChange) -> Outcome<()> {
    for (what, value, max) in [
        ("name", &change.name, MAX_NAME_BYTES),
        ("description", &change.description, MAX_DESCRIPTION_BYTES),
        ("avatar", &change.avatar, MAX_IMAGE_BYTES),
        ("thumbnail", &change.thumbnail, MAX_IMAGE_BYTES),
        ("avatar type", &change.avatar_type, MAX_MEDIA_TYPE_BYTES),
    ] {
        if let Some(value) = value {
            if value.len() > max {
                return Err(Refusal::new(
                    Condition::NotAcceptable,
                    format!(
                        "the {what} is {} bytes; at most {max} are allowed",
                        value.len()
                    ),
                ));
            }
        }
    }
    if let Some(media_type) = change.avatar_type.as_deref() {
        let valid = media_type.is_empty()
            || media_type.split_once('/').is_some_and(|(kind, sub)| {
                !kind.is_empty() && !sub.is_empty() && !media_type.contains(char::is_whitespace)
            });
        if !valid {
            return Err(Refusal::new(
                Condition::BadRequest,
                format!("'{media_type}' is not a media type such as image/png"),
            ));
        }
    }
    Ok(())
}

impl Groups {
    pub fn set_info(
        &mut self,
        name: &str,
        actor: &BareJid,
        change: InfoChange,
        now: Micros,
    ) -> Outcome<(Info, Vec<Fact>)> {
        let channel = self.existing(name)?;
        Self::at_least(channel, actor, Role::Admin, "change its information")?;
        check_info(&change)?;
        let current = &channel.info;
        let info = Info {
            name: change.name.unwrap_or_else(|| current.name.clone()),
            description: change
                .description
                .unwrap_or_else(|| current.description.clone()),
            contacts: change.contacts.unwrap_or_else(|| current.contacts.clone()),
            avatar: change.avatar.unwrap_or_else(|| current.avatar.clone()),
            avatar_type: change
                .avatar_type
                .unwrap_or_else(|| current.avatar_type.clone()),
            thumbnail: change
                .thumbnail
                .unwrap_or_else(|| current.thumbnail.clone()),
            history_visible: change.history_visible.unwrap_or(current.history_visible),
            // Item ids must change with every publication, even two within a microsecond.
            updated_at: now.max(current.updated_at + 1),
        };
        // The information as it already is: nothing is published, stored or noted.
        let unchanged = Info {
            updated_at: current.updated_at,
            ..info.clone()
        };
        if &unchanged == current {
            return Ok((unchanged, Vec::new()));
        }
        let fact = Fact::InfoChanged {
            key: channel.key,
            info: info.clone(),
            by: actor.clone(),
        };
        Ok((info, self.apply_noted(vec![fact], now)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn owner_sets_info_member_cannot() {
        let mut g = coven();
        let change = InfoChange {
            name: Some("The Coven".into()),
            ..InfoChange::default()
        };
        let err = g
            .set_info("coven", &jid("bob@localhost"), change.clone(), 10)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
        let (info, _) = g
            .set_info("coven", &jid("alice@localhost"), change, 10)
            .unwrap();
        assert_eq!(info.name, "The Coven");
        let described = InfoChange {
            description: Some("witches".into()),
            ..InfoChange::default()
        };
        let (info, _) = g
            .set_info("coven", &jid("alice@localhost"), described, 10)
            .unwrap();
        assert_eq!(
            (info.name.as_str(), info.description.as_str()),
            ("The Coven", "witches")
        );
        assert_eq!(info.updated_at, 11);
    }

    #[test]
    fn the_same_information_again_makes_no_fact() {
        let mut g = coven();
        let change = InfoChange {
            name: Some("The Coven".into()),
            history_visible: Some(true),
            ..InfoChange::default()
        };
        let alice = jid("alice@localhost");
        let (first, facts) = g.set_info("coven", &alice, change.clone(), 10).unwrap();
        assert!(!facts.is_empty());
        let (again, facts) = g.set_info("coven", &alice, change, 20).unwrap();
        assert!(facts.is_empty(), "{facts:?}");
        assert_eq!(again, first, "the stamp stays the last change's");
        let (_, facts) = g
            .set_info("coven", &alice, InfoChange::default(), 30)
            .unwrap();
        assert!(facts.is_empty(), "an empty change changes nothing");
        // A member is still refused, change or not.
        let err = g
            .set_info("coven", &jid("bob@localhost"), InfoChange::default(), 40)
            .unwrap_err();
        assert_eq!(err.condition, Condition::Forbidden);
    }

    #[test]
    fn a_picture_comes_with_a_media_type() {
        let mut g = coven();
        let picture = InfoChange {
            avatar: Some("data:image/png;base64,iVBORw0KGgo=".into()),
            avatar_type: Some("image/png".into()),
            ..InfoChange::default()
        };
        let (info, _) = g
            .set_info("coven", &jid("alice@localhost"), picture, 10)
            .unwrap();
        assert_eq!(info.avatar_type, "image/png");
        for bad in ["png", "image/", "image/ png"] {
            let change = InfoChange {
                avatar_type: Some(bad.into()),
                ..InfoChange::default()
            };
            let err = g
                .set_info("coven", &jid("alice@localhost"), change, 11)
                .unwrap_err();
            assert_eq!(err.condition, Condition::BadRequest, "{bad}");
        }
    }

    #[test]
    fn overlong_name_is_refused() {
        let mut g = coven();
        let change = InfoChange {
            name: Some("n".repeat(MAX_NAME_BYTES + 1)),
            ..InfoChange::default()
        };
        let err = g
            .set_info("coven", &jid("alice@localhost"), change, 10)
            .unwrap_err();
        assert_eq!(err.condition, Condition::NotAcceptable);
    }
}
