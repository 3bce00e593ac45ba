//! SDK edits (`editTextMessage`, `editMediaCaption`): the SDK sends the edited message again
//! as a group message whose stanza `id` is the id of the message it edits and whose
//! `<chatcontent/>` carries `edit_msg_id`, a new id of its own for the edit (a new message
//! carries its own id there, or nothing). It is kept as an edit, not as a second message with the first one's
//! id: the archived message takes the new payload (the core's correction), FlyChat members
//! get it as the SDK's edit, MIX members as an XEP-0308 correction.

use minidom::Element;

use super::message::Post;
use super::wire::CONTENT;
use crate::core::{Groups, MessageRef, Micros, Outcome, Submission};
use crate::dialect::{Envelope, ErrorKind, Handled};

/// An edit of an earlier message of the group, by its sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// The edited message, by the id the SDK gave it (or its archive id).
    pub target: String,
    /// The new payload, screened as a post's is.
    pub submission: Submission,
}

impl Edit {
    /// The message `stanza` edits, if it is an edit: its `id`, when its `<chatcontent/>`
    /// carries an `edit_msg_id` other than that id.
    pub fn target(env: &Envelope, stanza: &Element) -> Option<String> {
        let id = env.id.as_deref()?;
        let edit = stanza
            .get_child("chatcontent", CONTENT)?
            .attr("edit_msg_id")?;
        (!edit.is_empty() && edit != id).then(|| id.to_owned())
    }

    pub fn parse(env: &Envelope, stanza: &Element, target: String) -> Outcome<Self> {
        let Post { submission } = Post::parse(env, stanza)?;
        Ok(Edit { target, submission })
    }

    /// Only a participant's edit is looked up; the core then decides on the message found
    /// (its sender alone edits it, and not once it is recalled). Like a post, success is
    /// silent and a refusal an error message.
    pub fn apply(self, groups: &Groups, env: &Envelope) -> Handled {
        let reply_to = env.reply_to();
        let Some(name) = env.channel.clone() else {
            return Handled::Reply(
                reply_to.service_unavailable(ErrorKind::Message, "group messages go to a group"),
            );
        };
        let key = match groups.participant_of(&name, &env.sender()) {
            Ok((channel, _)) => channel.key,
            Err(refusal) => return Handled::Reply(env.error(&refusal)),
        };
        let env = env.clone();
        Handled::lookup(
            &env.clone(),
            key,
            &self.target.clone(),
            move |groups, _, found, now| self.edit(groups, &env, &name, found, now),
        )
    }

    fn edit(
        self,
        groups: &mut Groups,
        env: &Envelope,
        name: &str,
        found: Option<MessageRef>,
        now: Micros,
    ) -> Handled {
        match groups.correct(name, &env.sender(), found.as_ref(), self.submission, now) {
            Ok(facts) => Handled::Changed {
                facts,
                reply: None,
                on_failure: Some(env.reply_to().if_not_stored(ErrorKind::Message)),
            },
            Err(refusal) => Handled::Reply(env.error(&refusal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::flychat::testing::{parse_message, GROUP};
    use crate::flychat::Request;

    /// The SDK's group message with id `id` and `edit_msg_id` `edit`.
    fn message(id: &str, edit: &str) -> String {
        format!(
            "<message xmlns='jabber:client' to='coven@mix.localhost' type='normal' id='{id}'>\
             <chatcontent xmlns='urn:xmpp:content' message_type='text' edit_msg_id='{edit}' \
             meta_data='{{}}'/><subject>text</subject><body>U2FsdGVkX1+new==</body></message>"
        )
    }

    #[test]
    fn an_edit_msg_id_other_than_the_id_makes_an_edit_of_that_id() {
        // parse_message's envelope has the id `req-1`.
        let request = parse_message(GROUP, &message("req-1", "BAedit2"));
        let Ok(Request::Edit(edit)) = request else {
            panic!("{request:?}")
        };
        assert_eq!(edit.target, "req-1");
        assert!(edit.submission.content.contains("U2FsdGVkX1+new=="));
        assert!(edit.submission.content.contains("BAedit2"));
    }

    #[test]
    fn a_new_message_is_a_post() {
        for edit in ["", "req-1"] {
            let request = parse_message(GROUP, &message("req-1", edit));
            assert!(
                matches!(request, Ok(Request::Post(_))),
                "{edit}: {request:?}"
            );
        }
        let without = "<message xmlns='jabber:client' type='normal' id='req-1'>\
                       <chatcontent xmlns='urn:xmpp:content' message_type='text'/>\
                       <body>x</body></message>";
        assert!(matches!(
            parse_message(GROUP, without),
            Ok(Request::Post(_))
        ));
    }

    #[test]
    fn an_edit_is_screened_as_a_post_is() {
        let forged =
            message("req-1", "BAedit2").replace("</body>", "</body><jid>mallory@localhost</jid>");
        let refusal = parse_message(GROUP, &forged).unwrap_err();
        assert_eq!(refusal.condition, crate::core::Condition::NotAcceptable);
    }
}
