//! The kit both dialects share, and nothing else: the owned [`Envelope`] of a stanza that
//! `router` has checked (addresses, kind, id), [`Handled`] (what became of a stanza: a change,
//! a reply, a read of the archive, or a look-up of an archived message to finish on), replies
//! and refusals, and the shapes both dialects send ([`shapes`]: `normal` messages to bare JIDs,
//! invitations and requests, member receipt states), and the requests both read into one
//! shape and apply alike ([`Decision`], [`AccessChange`]). Neither dialect imports the other;
//! what both need lives here or in `xml`.

mod commands;
pub mod ids;
#[cfg(test)]
pub mod pages;
pub mod payload;
pub mod proxy;
mod reply;
pub mod shapes;
mod siphash;

use std::sync::Arc;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use crate::core::{Fact, Groups, MessageRef, Micros, Refusal};
use crate::store::Reader;

pub use commands::{AccessChange, Decision};
pub use reply::{ErrorKind, IfNotStored, ReplyTo};

/// What requests may consult besides the core: the service's address, for routing and for
/// the `from` of what it sends, the archive, for the reads that run off the rules task, and
/// the keyed permutation that turns archive ids into the opaque ids clients see ([`ids`]).
pub struct Service {
    pub domain: String,
    pub archive: Arc<dyn Reader>,
    pub ids: ids::Ids,
}

impl Service {
    pub fn channel_jid(&self, name: &str) -> String {
        // Once per delivered fact: concatenated, without the formatting machinery.
        let mut jid = String::with_capacity(name.len() + 1 + self.domain.len());
        jid.push_str(name);
        jid.push('@');
        jid.push_str(&self.domain);
        jid
    }
}

/// What became of one stanza.
pub enum Handled {
    /// A command ran: store `facts`, then send `reply` and deliver the facts. If the commit
    /// fails, send `on_failure` instead.
    Changed {
        facts: Vec<Fact>,
        reply: Option<String>,
        on_failure: Option<IfNotStored>,
    },
    /// A read-only answer (or an error); sent in order after earlier changes are stored.
    Reply(String),
    /// A read of the store (archive pages, receipt states): run it on the reader threads and
    /// send what it writes.
    Read(Read),
    /// The request names an archived message (a retraction, a receipt, a member's states of
    /// a message, …). The archive is not in memory and reading it would stall every channel,
    /// so the look-up runs on the reader threads and the request finishes back on the rules
    /// task, against the state as it is then. (A read that needs nothing of that state after
    /// its look-up takes both in one read: [`Handled::lookup_then_read`].)
    Lookup(Lookup),
    /// Nothing to do or to say (results, errors, and stanzas that must not be answered).
    Nothing,
}

impl Handled {
    /// A change answered with an iq result carrying `payload`, or an error if not stored.
    pub fn iq_changed(env: &Envelope, facts: Vec<Fact>, payload: Option<String>) -> Handled {
        let reply_to = env.reply_to();
        Handled::Changed {
            facts,
            reply: Some(reply_to.iq_result(payload.as_deref())),
            on_failure: Some(reply_to.if_not_stored(ErrorKind::Iq)),
        }
    }

    /// Looks up `reference` in the archive of channel `key`, then finishes with `resume`.
    pub fn lookup(
        env: &Envelope,
        key: i64,
        reference: &str,
        resume: impl FnOnce(&mut Groups, &Service, Option<MessageRef>, Micros) -> Handled
            + Send
            + 'static,
    ) -> Handled {
        Handled::lookup_all(
            env,
            key,
            vec![reference.to_owned()],
            move |g, s, mut found, now| resume(g, s, found.pop().flatten(), now),
        )
    }

    /// Looks up each of `references` in the archive of channel `key`, then finishes with
    /// `resume`, which gets what each names, in order.
    pub fn lookup_all(
        env: &Envelope,
        key: i64,
        references: Vec<String>,
        resume: impl FnOnce(&mut Groups, &Service, Vec<Option<MessageRef>>, Micros) -> Handled
            + Send
            + 'static,
    ) -> Handled {
        Handled::Lookup(Lookup {
            asker: env.asker(),
            channel: key,
            references,
            resume: Box::new(resume),
        })
    }

    /// Looks up `reference` in the archive of channel `key`, then reads on with `run`, which
    /// gets what it names, on the same reader in the same read: one turn of the sender's in
    /// the readers' queue and no return to the rules task between the two, for a read whose
    /// every decision was taken before the look-up (a FlyChat media page keyed by a message:
    /// its scope and its viewer are fixed at `apply`). That return cost a SQLite page 0.02–0.05
    /// ms and 20–45 µs of mixd's CPU, a PostgreSQL page 10–30 µs of CPU (docs/benchmarks.md,
    /// branch `mediachain`). A look-up that fails answers as a read that fails.
    pub fn lookup_then_read(
        env: &Envelope,
        service: &Service,
        key: i64,
        reference: String,
        run: impl FnOnce(&dyn Reader, Option<MessageRef>) -> Vec<String> + Send + 'static,
    ) -> Handled {
        let id = service.ids.decode(&reference);
        let failed = env.asker().storage_failed();
        Handled::read(env, move |reader| {
            match reader.find_message(key, id, &reference) {
                Ok(found) => run(reader, found),
                Err(error) => {
                    tracing::error!(%error, "looking up a message failed");
                    vec![failed]
                }
            }
        })
    }

    /// Reads the archive for `env`'s sender with `run`, which writes the answer.
    pub fn read(
        env: &Envelope,
        run: impl FnOnce(&dyn Reader) -> Vec<String> + Send + 'static,
    ) -> Handled {
        Handled::Read(Read {
            asker: env.asker(),
            run: Box::new(run),
        })
    }
}

/// Who asked for a read or a look-up of the archive: reads wait for their user's turn and
/// are counted against its quota, and a read that cannot be done (the queue full, the quota
/// spent, the store failing) is answered with an error instead.
#[derive(Debug, Clone)]
pub struct Asker {
    pub user: BareJid,
    pub reply_to: ReplyTo,
    pub kind: ErrorKind,
}

impl Asker {
    pub fn error(&self, refusal: &Refusal) -> String {
        self.reply_to.error(self.kind, refusal)
    }

    /// The answer when the archive could not be read.
    pub fn storage_failed(&self) -> String {
        self.reply_to.storage_failed(self.kind)
    }
}

/// A read of the archive and the stanzas it answers with.
pub struct Read {
    pub asker: Asker,
    pub run: Reading,
}

/// What a read runs on a reader thread: the stanzas it answers with.
pub type Reading = Box<dyn FnOnce(&dyn Reader) -> Vec<String> + Send>;

/// A message to find in a channel's archive, and what to do with what was found.
pub struct Lookup {
    pub asker: Asker,
    pub channel: i64,
    /// As the client sent them: opaque archive ids (decoded by the service before the
    /// look-up, `ids`), or a sender's origin-ids or stanza ids (`Reader::find_message`).
    pub references: Vec<String>,
    pub resume: Resume,
}

pub type Resume =
    Box<dyn FnOnce(&mut Groups, &Service, Vec<Option<MessageRef>>, Micros) -> Handled + Send>;

/// The envelope of a stanza addressed to the service or one of its channels, owned, so that
/// a request can outlive the stanza (a [`Lookup`] finishes it later).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub kind: ErrorKind,
    pub from: Jid,
    pub to: Jid,
    pub id: Option<String>,
    /// The channel's localpart when addressed to a channel.
    pub channel: Option<String>,
}

impl Envelope {
    pub fn sender(&self) -> BareJid {
        // A copy of `from` cut at its resource: `Jid::to_bare` wrote the node and the domain
        // again through `format!`, 760 instructions of every post (docs/benchmarks.md,
        // branch `fanout5`).
        self.from.clone().into_bare()
    }

    pub fn full_sender(&self) -> Option<&FullJid> {
        self.from.try_as_full().ok()
    }

    /// The channel the stanza is addressed to; empty when it is addressed to the service
    /// (requests that need a channel are only routed when there is one).
    pub fn channel_name(&self) -> &str {
        self.channel.as_deref().unwrap_or_default()
    }

    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            from: self.to.as_str().to_owned(),
            to: self.from.as_str().to_owned(),
            id: self.id.clone(),
        }
    }

    pub fn asker(&self) -> Asker {
        Asker {
            user: self.sender(),
            reply_to: self.reply_to(),
            kind: self.kind,
        }
    }

    /// An error reply to this stanza.
    pub fn error(&self, refusal: &Refusal) -> String {
        self.reply_to().error(self.kind, refusal)
    }

    /// An iq result to this stanza carrying `payload`.
    pub fn iq_result(&self, payload: Option<&str>) -> Handled {
        Handled::Reply(self.reply_to().iq_result(payload))
    }
}

/// A `bad-request` refusal with its text; shared by both dialects.
pub fn bad_request(text: impl Into<String>) -> Refusal {
    Refusal::new(crate::core::Condition::BadRequest, text)
}

/// The bare JID that `payload`'s attribute `name` gives.
pub fn jid_attr(payload: &Element, name: &str) -> crate::core::Outcome<BareJid> {
    let value = payload
        .attr(name)
        .ok_or_else(|| bad_request(format!("<{}/> needs the {name} attribute", payload.name())))?;
    BareJid::new(value.trim()).map_err(|_| bad_request(format!("'{value}' is not a bare JID")))
}

/// `true`/`1` or `false`/`0` (XEP-0004 booleans) in `payload`'s attribute `name`, if any.
pub fn bool_attr(payload: &Element, name: &str) -> crate::core::Outcome<Option<bool>> {
    payload
        .attr(name)
        .map(|value| boolean(&format!("{name}="), value))
        .transpose()
}

/// `value` as an XEP-0004 boolean; the text of a refusal starts with `what` (`muted=`).
pub fn boolean(what: &str, value: &str) -> crate::core::Outcome<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(bad_request(format!(
            "{what}'{other}' is not a boolean (true or false)"
        ))),
    }
}

/// What the dialects' parsing tests build requests from, without a server.
#[cfg(test)]
pub mod testing {
    use super::{Envelope, ErrorKind};

    /// The envelope of a stanza of `kind` from `from` to `to` (a channel or the service).
    pub fn envelope(kind: ErrorKind, from: &str, to: &str) -> Envelope {
        let to = jid::Jid::new(to).unwrap();
        Envelope {
            kind,
            from: jid::Jid::new(from).unwrap(),
            channel: to.node().map(|n| n.to_string()),
            to,
            id: Some("req-1".into()),
        }
    }

    /// An element parsed from `xml`, which must declare its namespace.
    pub fn element(xml: &str) -> minidom::Element {
        xml.parse().unwrap()
    }

    /// A service `mix.example.org` whose ids have a fixed key (`ids::testing::ids(6)`) and
    /// whose archive must not be read.
    pub fn service() -> super::Service {
        service_at("mix.example.org")
    }

    /// The same at `domain`.
    pub fn service_at(domain: &str) -> super::Service {
        super::Service {
            domain: domain.into(),
            archive: std::sync::Arc::new(NoArchive),
            ids: super::ids::testing::ids(6),
        }
    }

    /// An archive that fails the test if anything reads it.
    pub struct NoArchive;

    impl crate::store::Reader for NoArchive {
        fn snapshot(&self) -> anyhow::Result<crate::core::Snapshot> {
            unreachable!("the archive was read")
        }
        fn history(
            &self,
            _: &crate::store::HistoryQuery,
        ) -> Result<crate::store::HistoryPage, crate::store::HistoryError> {
            unreachable!("the archive was read")
        }
        fn find_message(
            &self,
            _: i64,
            _: Option<i64>,
            _: &str,
        ) -> anyhow::Result<Option<crate::core::MessageRef>> {
            unreachable!("the archive was read")
        }
        fn receipts_of(
            &self,
            _: &[i64],
        ) -> anyhow::Result<std::collections::HashMap<i64, Vec<crate::store::MemberReceipt>>>
        {
            unreachable!("the archive was read")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::testing::{envelope, service};
    use super::*;

    /// An archive whose look-ups are recorded and answered with `found`, or fail.
    struct Lookups {
        asked: Mutex<Vec<(i64, Option<i64>, String)>>,
        found: Option<Option<MessageRef>>,
    }

    impl Reader for Lookups {
        fn snapshot(&self) -> anyhow::Result<crate::core::Snapshot> {
            unreachable!("a look-up reads no snapshot")
        }
        fn history(
            &self,
            _: &crate::store::HistoryQuery,
        ) -> Result<crate::store::HistoryPage, crate::store::HistoryError> {
            unreachable!("only `run` reads pages")
        }
        fn find_message(
            &self,
            channel: i64,
            id: Option<i64>,
            sent: &str,
        ) -> anyhow::Result<Option<MessageRef>> {
            self.asked.lock().unwrap().push((channel, id, sent.into()));
            self.found
                .clone()
                .ok_or_else(|| anyhow::anyhow!("disk on fire"))
        }
        fn receipts_of(
            &self,
            _: &[i64],
        ) -> anyhow::Result<std::collections::HashMap<i64, Vec<crate::store::MemberReceipt>>>
        {
            unreachable!("a look-up reads no receipts")
        }
    }

    /// The look-up and what follows it run in one read: the reference decoded as the
    /// service's `Lookup` decodes it, what it names handed to `run` on the same reader; a
    /// look-up that fails answers that the archive could not be read, and `run` never runs.
    #[test]
    fn a_lookup_then_read_is_one_read() {
        let service = service();
        let env = envelope(ErrorKind::Iq, "bob@localhost/r", "coven@mix.example.org");
        let message = MessageRef {
            id: 41,
            channel: 7,
            sender: BareJid::new("alice@localhost").unwrap(),
            client_id: Some("msg-9".into()),
            retracted: false,
        };
        for (reference, id) in [(service.ids.encode(41), Some(41)), ("msg-9".into(), None)] {
            let archive = Lookups {
                asked: Mutex::default(),
                found: Some(Some(message.clone())),
            };
            let handled =
                Handled::lookup_then_read(&env, &service, 7, reference.clone(), |_, found| {
                    vec![format!("{:?}", found.map(|m| m.id))]
                });
            let Handled::Read(read) = handled else {
                panic!("not one read")
            };
            assert_eq!((read.run)(&archive), ["Some(41)"]);
            assert_eq!(*archive.asked.lock().unwrap(), [(7, id, reference)]);
        }
        let failing = Lookups {
            asked: Mutex::default(),
            found: None,
        };
        let handled = Handled::lookup_then_read(&env, &service, 7, "msg-9".into(), |_, _| {
            unreachable!("ran after a failed look-up")
        });
        let Handled::Read(read) = handled else {
            panic!("not one read")
        };
        assert_eq!((read.run)(&failing), [env.asker().storage_failed()]);
    }
}
