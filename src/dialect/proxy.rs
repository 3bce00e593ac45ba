//! Proxy JIDs (XEP-0404, private messages): `<participant id>#<channel>@<service>` names one
//! participant of a channel without its real JID. Both dialects write them where a client
//! needs a JID for someone whose JID is hidden from it, and a message sent to one is relayed
//! to that participant (`mix::private`). Channel names never contain `#`
//! (`core::create`), so a localpart with one is a proxy JID and nothing else.

use crate::core::ParticipantId;

/// The proxy JID of participant `id` of the channel whose JID is `channel_jid`.
pub fn proxy_jid(channel_jid: &str, id: ParticipantId) -> String {
    format!("{id}#{channel_jid}")
}

/// A proxy JID's localpart split into the participant id and the channel's name; `None`
/// when the localpart is a channel's (it has no `#`). The id is `Err` with its text when it
/// is none mixd gives, which names nobody.
pub fn parse(localpart: &str) -> Option<(Result<ParticipantId, &str>, &str)> {
    let (id, channel) = localpart.split_once('#')?;
    let parsed = match id.parse() {
        Ok(parsed) if id.len() == 16 => Ok(parsed),
        _ => Err(id),
    };
    Some((parsed, channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_jid_reads_back_as_its_participant_and_channel() {
        let id = ParticipantId(0x0123_4567_89ab_cdef);
        let jid = proxy_jid("coven@mix.example.org", id);
        assert_eq!(jid, "0123456789abcdef#coven@mix.example.org");
        let localpart = jid.split_once('@').unwrap().0;
        assert_eq!(parse(localpart), Some((Ok(id), "coven")));
        assert_eq!(parse("coven"), None);
        assert_eq!(parse("nobody#coven"), Some((Err("nobody"), "coven")));
        assert_eq!(parse("+123#coven"), Some((Err("+123"), "coven")));
    }
}
