//! Quotas: how much one user may make the service do, per unit of time. Six are kept, each
//! keyed by the acting user's bare JID (all its clients together) and each a token bucket
//! that holds up to `burst` tokens and refills continuously at `refill` tokens per `period`:
//!
//! | quota | what takes a token | refused with |
//! |---|---|---|
//! | messages | each post and each correction (MIX or FlyChat) | `policy-violation`: a rate, retry soon |
//! | signals | each chat state, receipt or marker, reaction and retraction (MIX or FlyChat) | `policy-violation` |
//! | channels | each channel or group created | `resource-constraint` |
//! | joins | each join that changes something, each join request | `resource-constraint` |
//! | adds | each user added to a group or invited (the acting user itself not counted) | `resource-constraint` |
//! | history | each read of the archive: a MAM query, a FlyChat history page, a message looked up for the SDK (`reply_message`), receipt states | `policy-violation`: a rate, retry soon |
//!
//! The message and history quotas have a burst and a sustained rate of their own
//! ([`Rules::message_burst`], [`Rules::messages_per_minute`]; [`Rules::history_burst`],
//! [`Rules::history_per_minute`]); the others allow their whole amount at once and refill
//! it over their period (an hour, a minute). A quota set to 0 is off. The refusal's text
//! says the limit and when a retry will pass.
//!
//! Why reads are counted: each one is a disk read on one of the archive's two reader
//! threads, which every user's history shares; the readers take reads in turns per user
//! (`readers.rs`), so a flood delays others little, but without a quota one user could
//! still keep both threads busy for everyone. The history quota is taken by the service as
//! it queues a read, for both dialects at once (`Groups::charge_read`). Look-ups of the
//! message a retraction, receipt, reaction or edit names are not counted here: they are
//! the signal or message quota's.
//!
//! A command takes its tokens when its other checks have passed, and all of them or none: a
//! request that adds 10 users when 5 tokens are left adds nobody. Posts, corrections and
//! signals are the exception: their token is taken first, before the sender is looked up,
//! so that a flood of them to channels the sender is not in, or naming messages that do not
//! exist, is limited too (one map look-up each: the cheapest check there is). A repeated MIX
//! chat state takes no token at all: it is dropped as no news before the quota (`typing.rs`).
//!
//! Why signals are counted: each one is told to every participant (chat states, reactions,
//! retractions) or stored (receipts, reactions, retractions), so a flood of them costs what a
//! flood of posts does; uncounted, one user's chat states filled the shared outbound queue
//! and the back-pressure then held every channel back. They have their own bucket, larger
//! than the posts' sustained rate, because a client sends several per message it writes
//! (composing, paused, active) and one per message it reads (receipts, markers).
//!
//! The core has no clock: the time is the command's `now`. A clock that steps back only
//! delays refills. Memory is bounded: a user whose buckets have all refilled is the same as
//! one never seen and is forgotten (swept at most once a minute of `now`), and at most
//! [`MAX_TRACKED`] users are tracked: beyond that, the ones closest to full are forgotten
//! first, which errs on the side of the user. Quotas live in memory only: a restart
//! refills every bucket (a failed commit's reload keeps them, see `service.rs`).

use std::collections::HashMap;

use jid::BareJid;

use super::{Condition, Groups, Micros, Outcome, Refusal, Rules};

/// The most users whose buckets are remembered at once (about 150 bytes each).
pub const MAX_TRACKED: usize = 100_000;

/// The most [`OutOfTokens`] kept until the rules task takes them (it does after each stanza).
const MAX_OUT_OF_TOKENS: usize = 1024;

/// How often, in `now`'s microseconds, idle buckets are swept away.
const SWEEP_EVERY: Micros = 60_000_000;

const SECOND: Micros = 1_000_000;
const MINUTE: Micros = 60 * SECOND;
const HOUR: Micros = 60 * MINUTE;

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Messages,
    Signals,
    Channels,
    Joins,
    Adds,
    Reads,
}

const KINDS: usize = 6;

impl Quota {
    fn index(self) -> usize {
        self as usize
    }

    /// Whether the link's gate is told who is out of this quota's tokens (`src/gate.rs`):
    /// the quotas of what a flood is made of.
    fn told_to_the_gate(self) -> bool {
        match self {
            Quota::Messages | Quota::Signals | Quota::Reads => true,
            Quota::Channels | Quota::Joins | Quota::Adds => false,
        }
    }

    /// The bucket's size and refill, as the rules set them; `None` when off.
    fn rate(self, rules: &Rules) -> Option<Rate> {
        let (burst, refill, period) = match self {
            Quota::Messages => (rules.message_burst, rules.messages_per_minute, MINUTE),
            Quota::Signals => (rules.signals_per_minute, rules.signals_per_minute, MINUTE),
            Quota::Channels => (rules.channels_per_hour, rules.channels_per_hour, HOUR),
            Quota::Joins => (rules.joins_per_minute, rules.joins_per_minute, MINUTE),
            Quota::Adds => (rules.adds_per_hour, rules.adds_per_hour, HOUR),
            Quota::Reads => (rules.history_burst, rules.history_per_minute, MINUTE),
        };
        (burst > 0 && refill > 0).then_some(Rate {
            burst: burst as u64,
            refill: refill as u64,
            period: period as u64,
        })
    }

    /// The refusal for a bucket that lacks tokens: when it has them again is `wait` away.
    fn refusal(self, rate: Rate, wait: Micros) -> Refusal {
        let (condition, what, limit) = match self {
            Quota::Messages => (
                Condition::PolicyViolation,
                "are sending messages",
                format!("{} at once, then {} a minute", rate.burst, rate.refill),
            ),
            Quota::Signals => (
                Condition::PolicyViolation,
                "are sending chat states, receipts, reactions and retractions",
                format!("{} a minute", rate.burst),
            ),
            Quota::Channels => (
                Condition::ResourceConstraint,
                "have created channels",
                format!("{} an hour", rate.burst),
            ),
            Quota::Joins => (
                Condition::ResourceConstraint,
                "are joining channels",
                format!("{} a minute", rate.burst),
            ),
            Quota::Adds => (
                Condition::ResourceConstraint,
                "have added or invited users",
                format!("{} an hour", rate.burst),
            ),
            Quota::Reads => (
                Condition::PolicyViolation,
                "are reading history",
                format!(
                    "{} reads at once, then {} a minute",
                    rate.burst, rate.refill
                ),
            ),
        };
        let when = duration_text(wait);
        Refusal::new(
            condition,
            format!("you {what} too fast: at most {limit}; try again in {when}"),
        )
    }
}

/// A bucket's shape: `burst` tokens at most, `refill` more every `period` microseconds.
/// Levels are counted in token-microseconds (a token is `period` of them), so that refills
/// are exact integers.
#[derive(Debug, Clone, Copy)]
struct Rate {
    burst: u64,
    refill: u64,
    period: u64,
}

impl Rate {
    fn capacity(self) -> u64 {
        self.burst.saturating_mul(self.period)
    }

    /// Microseconds until a bucket at `level` holds `need`.
    fn wait(self, level: u64, need: u64) -> Micros {
        let missing = need.saturating_sub(level);
        missing.div_ceil(self.refill).min(i64::MAX as u64) as Micros
    }
}

/// One bucket: its level when last touched, and when that was.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Token-microseconds; `u64::MAX` for a bucket never used (full, whatever the rate).
    level: u64,
    at: Micros,
}

impl Bucket {
    const FULL: Bucket = Bucket {
        level: u64::MAX,
        at: 0,
    };

    /// The level at `now`, refilled since it was last touched and capped.
    fn level(self, rate: Rate, now: Micros) -> u64 {
        let elapsed = now.saturating_sub(self.at).max(0) as u64;
        self.level
            .saturating_add(elapsed.saturating_mul(rate.refill))
            .min(rate.capacity())
    }
}

/// One user's buckets, and when all of them will be full again (then it can be forgotten).
#[derive(Debug, Clone)]
struct Account {
    buckets: [Bucket; KINDS],
    full_at: Micros,
}

/// The buckets of every user who used some lately.
#[derive(Debug, Default)]
pub struct Quotas {
    users: HashMap<BareJid, Account>,
    swept_at: Micros,
    /// Users refused for a quota the gate is told of since [`Groups::take_out_of_tokens`]
    /// last asked.
    out_of_tokens: Vec<OutOfTokens>,
}

/// A user whose bucket of `quota` (messages, signals or reads) has no token until `until`:
/// every request of one token of it before then is refused. The rules task publishes it so
/// that the link can refuse the user's posts, signals or history queries before it builds
/// them (`src/gate.rs`); the refusal is the one the quota gives.
#[derive(Debug, Clone)]
pub struct OutOfTokens {
    pub user: BareJid,
    pub quota: Quota,
    pub until: Micros,
    rate: Rate,
}

impl OutOfTokens {
    /// What a request at `now` (before `until`) is refused with: the quota's own refusal.
    pub fn refusal(&self, now: Micros) -> Refusal {
        self.quota
            .refusal(self.rate, self.until.saturating_sub(now).max(1))
    }
}

impl Quotas {
    /// Refuses unless `user` has `n` tokens of `quota` at `now`; changes nothing.
    pub fn check(
        &self,
        rules: &Rules,
        user: &BareJid,
        quota: Quota,
        n: usize,
        now: Micros,
    ) -> Outcome<()> {
        let Some(rate) = quota.rate(rules) else {
            return Ok(());
        };
        if n == 0 {
            return Ok(());
        }
        let need = too_many(quota, rate, n)?;
        let bucket = self
            .users
            .get(user)
            .map_or(Bucket::FULL, |a| a.buckets[quota.index()]);
        let level = bucket.level(rate, now);
        if level < need {
            return Err(quota.refusal(rate, rate.wait(level, need)));
        }
        Ok(())
    }

    /// `user` was refused `n` tokens of `quota` at `now`: the gate is told until when, for
    /// a quota it is told of and a request of one token (what one stanza asks).
    fn refused(&mut self, rules: &Rules, user: &BareJid, quota: Quota, n: usize, now: Micros) {
        let rate = quota
            .rate(rules)
            .filter(|_| quota.told_to_the_gate() && n == 1);
        if let (Some(rate), true) = (rate, self.out_of_tokens.len() < MAX_OUT_OF_TOKENS) {
            let bucket = self
                .users
                .get(user)
                .map_or(Bucket::FULL, |a| a.buckets[quota.index()]);
            let wait = rate.wait(bucket.level(rate, now), rate.period);
            self.out_of_tokens.push(OutOfTokens {
                user: user.clone(),
                quota,
                until: now.saturating_add(wait),
                rate,
            });
        }
    }

    /// Takes `n` tokens of `quota` from `user`'s bucket at `now`, or refuses and takes none.
    pub fn take(
        &mut self,
        rules: &Rules,
        user: &BareJid,
        quota: Quota,
        n: usize,
        now: Micros,
    ) -> Outcome<()> {
        if let Err(refusal) = self.check(rules, user, quota, n, now) {
            self.refused(rules, user, quota, n, now);
            return Err(refusal);
        }
        let Some(rate) = quota.rate(rules) else {
            return Ok(());
        };
        if n == 0 {
            return Ok(());
        }
        let need = n as u64 * rate.period;
        self.sweep(now);
        if !self.users.contains_key(user) && self.users.len() >= MAX_TRACKED {
            self.make_room(now);
        }
        let account = self.users.entry(user.clone()).or_insert(Account {
            buckets: [Bucket::FULL; KINDS],
            full_at: now,
        });
        let bucket = &mut account.buckets[quota.index()];
        let level = bucket.level(rate, now) - need;
        *bucket = Bucket { level, at: now };
        let full_at = now.saturating_add(rate.wait(level, rate.capacity()));
        account.full_at = account.full_at.max(full_at);
        Ok(())
    }

    /// How many users are tracked (for tests and the operator's curiosity).
    pub fn tracked(&self) -> usize {
        self.users.len()
    }

    /// Forgets every user whose buckets are all full again, at most once per
    /// [`SWEEP_EVERY`].
    fn sweep(&mut self, now: Micros) {
        if now.saturating_sub(self.swept_at) < SWEEP_EVERY && now >= self.swept_at {
            return;
        }
        self.swept_at = now;
        self.users.retain(|_, account| account.full_at > now);
    }

    /// At the cap: forgets the idle, then, if that freed less than a tenth, the tenth of users
    /// whose buckets will be full soonest (they have used the least lately). Linear, but only
    /// once per tenth of [`MAX_TRACKED`] new users.
    fn make_room(&mut self, now: Micros) {
        self.users.retain(|_, account| account.full_at > now);
        let keep = MAX_TRACKED - MAX_TRACKED / 10;
        if self.users.len() <= keep {
            return;
        }
        let mut full_at: Vec<Micros> = self.users.values().map(|a| a.full_at).collect();
        let drop = full_at.len() - keep;
        let (_, threshold, _) = full_at.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        self.users.retain(|_, account| account.full_at > threshold);
    }
}

/// The token-microseconds `n` tokens are, refusing a request that no bucket of this rate can
/// ever hold.
fn too_many(quota: Quota, rate: Rate, n: usize) -> Outcome<u64> {
    if n as u64 > rate.burst {
        let what = match quota {
            Quota::Messages => "messages at once",
            Quota::Signals => "chat states, receipts, reactions and retractions a minute",
            Quota::Channels => "channels an hour",
            Quota::Joins => "joins a minute",
            Quota::Adds => "users added or invited an hour",
            Quota::Reads => "reads at once",
        };
        return Err(Refusal::new(
            Condition::ResourceConstraint,
            format!(
                "this request needs {n} of the {} {what} a user may have; split it",
                rate.burst
            ),
        ));
    }
    Ok(n as u64 * rate.period)
}

/// A wait for people: tenths of a second under 10 s, then seconds, then minutes (rounded
/// up, so that a retry after it passes).
fn duration_text(wait: Micros) -> String {
    if wait < 10 * SECOND {
        let tenths = (wait + SECOND / 10 - 1) / (SECOND / 10);
        format!("{}.{} s", tenths.max(1) / 10, tenths.max(1) % 10)
    } else if wait < 2 * MINUTE {
        format!("{} s", (wait + SECOND - 1) / SECOND)
    } else {
        format!("{} minutes", (wait + MINUTE - 1) / MINUTE)
    }
}

impl Groups {
    /// Takes `n` tokens of `quota` from `actor`, or refuses (see the module's doc).
    pub(super) fn charge(
        &mut self,
        actor: &BareJid,
        quota: Quota,
        n: usize,
        now: Micros,
    ) -> Outcome<()> {
        self.quotas.take(&self.rules, actor, quota, n, now)
    }

    /// Takes a token of the history quota from `reader`, who asked for a read of the
    /// archive, or refuses (see the module's doc): the service charges every read it queues,
    /// whichever dialect asked.
    pub fn charge_read(&mut self, reader: &BareJid, now: Micros) -> Outcome<()> {
        self.charge(reader, Quota::Reads, 1, now)
    }

    /// Refuses unless `actor` has `n` tokens of `quota`, taking none: for a dialect to refuse
    /// before it reads the archive for a request the command would refuse anyway, and for a
    /// request of several commands to be refused whole.
    /// A refusal is told to the gate as [`Quotas::take`]'s are.
    pub fn afford(&mut self, actor: &BareJid, quota: Quota, n: usize, now: Micros) -> Outcome<()> {
        let checked = self.quotas.check(&self.rules, actor, quota, n, now);
        if checked.is_err() {
            self.quotas.refused(&self.rules, actor, quota, n, now);
        }
        checked
    }

    /// The users refused for a quota the gate is told of since the last call (see
    /// [`OutOfTokens`]).
    pub fn take_out_of_tokens(&mut self) -> Vec<OutOfTokens> {
        std::mem::take(&mut self.quotas.out_of_tokens)
    }

    /// Takes over the quotas `before` kept (a reload after a failed commit must not refill
    /// every bucket).
    pub fn keep_quotas_of(&mut self, before: &mut Groups) {
        self.quotas = std::mem::take(&mut before.quotas);
    }

    /// The quotas' state, for tests.
    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::core::{
        ChatState, Dialect, JoinPolicy, MessageRef, Nodes, ReceiptKind, Repeats, SettingsChange,
    };

    /// A service where the quotas are small enough to reach.
    fn limited() -> Groups {
        let mut g = groups();
        g.rules.message_burst = 3;
        g.rules.messages_per_minute = 60;
        g.rules.signals_per_minute = 4;
        g.rules.channels_per_hour = 2;
        g.rules.joins_per_minute = 2;
        g.rules.adds_per_hour = 3;
        g
    }

    /// `coven` with alice (owner) and bob in it, on `limited` rules that then start afresh.
    fn limited_coven() -> Groups {
        let mut g = coven();
        let rules = limited().rules;
        g.rules = rules;
        g.quotas = Quotas::default();
        g
    }

    fn post(g: &mut Groups, who: &str, at: Micros) -> Outcome {
        g.post("coven", &jid(who), text("x"), at)
    }

    /// A refused post tells who is out of tokens and until when: the link refuses that
    /// user's posts until then, with the refusal the rules would give at each moment.
    #[test]
    fn a_refused_post_says_until_when_its_sender_is_out_of_posts() {
        let mut g = limited_coven();
        let t = 10 * SECOND;
        for _ in 0..3 {
            post(&mut g, "bob@localhost", t).unwrap();
        }
        assert!(g.take_out_of_tokens().is_empty());
        let later = t + SECOND / 4;
        let err = post(&mut g, "bob@localhost", later).unwrap_err();
        let out = g.take_out_of_tokens();
        assert!(g.take_out_of_tokens().is_empty());
        let [entry] = &out[..] else {
            panic!("one entry: {out:?}")
        };
        assert_eq!(entry.user, jid("bob@localhost"));
        assert_eq!(entry.until, t + SECOND);
        assert_eq!(entry.refusal(later), err);
        // Later on, the same as the rules' own refusal then.
        let then = t + SECOND / 2;
        assert_eq!(
            entry.refusal(then),
            post(&mut g, "bob@localhost", then).unwrap_err()
        );
        post(&mut g, "bob@localhost", entry.until).unwrap();
        g.take_out_of_tokens();
        // Signals over their rate are told of too, whether refused charging or checking.
        let alice = jid("alice@localhost");
        // One a second: slow enough for the chat states' pace, too fast for the quota.
        let mut refusals = Vec::new();
        for n in 0..6 {
            let at = t + n * SECOND;
            if let Err(refusal) =
                g.chat_state("coven", &alice, ChatState::Composing, Repeats::Relayed, at)
            {
                refusals.push((at, refusal));
            }
        }
        assert_eq!(refusals.len(), 2);
        let out = g.take_out_of_tokens();
        assert_eq!(out.len(), 2);
        for (entry, (at, refusal)) in out.iter().zip(&refusals) {
            assert_eq!((&entry.user, entry.quota), (&alice, Quota::Signals));
            assert_eq!(&entry.refusal(*at), refusal);
        }
        let (at, refusal) = &refusals[1];
        assert_eq!(
            &g.afford(&alice, Quota::Signals, 1, *at).unwrap_err(),
            refusal
        );
        assert_eq!(g.take_out_of_tokens()[0].until, out[1].until);
        // Several tokens asked at once are not told of: one stanza's signal asks for one.
        g.afford(&alice, Quota::Signals, 2, *at).unwrap_err();
        assert!(g.take_out_of_tokens().is_empty());
    }

    #[test]
    fn messages_come_in_bursts_then_at_the_sustained_rate() {
        let mut g = limited_coven();
        let t = 10 * SECOND;
        for _ in 0..3 {
            post(&mut g, "bob@localhost", t).unwrap();
        }
        let err = post(&mut g, "bob@localhost", t).unwrap_err();
        assert_eq!(err.condition, Condition::PolicyViolation);
        assert_eq!(
            err.text,
            "you are sending messages too fast: at most 3 at once, then 60 a minute; try again in 1.0 s"
        );
        // Another user, and the same user's other clients (the key is the bare JID), are
        // apart: alice still has her burst, bob has nothing.
        post(&mut g, "alice@localhost", t).unwrap();
        // A refused post took no id.
        let last = g.last_message_id();
        // One token a second: a little later, not yet; a second later, one and only one.
        let err = post(&mut g, "bob@localhost", t + SECOND / 4).unwrap_err();
        assert!(err.text.ends_with("try again in 0.8 s"), "{}", err.text);
        post(&mut g, "bob@localhost", t + SECOND).unwrap();
        assert_eq!(g.last_message_id(), last + 1);
        assert!(post(&mut g, "bob@localhost", t + SECOND).is_err());
        // Sustained: one a second passes for as long as it goes on.
        for s in 2..20 {
            post(&mut g, "bob@localhost", t + s * SECOND).unwrap();
            assert!(post(&mut g, "bob@localhost", t + s * SECOND).is_err());
        }
        // After a long pause the whole burst is back, and no more than it.
        let later = t + 10 * MINUTE;
        for _ in 0..3 {
            post(&mut g, "bob@localhost", later).unwrap();
        }
        assert!(post(&mut g, "bob@localhost", later).is_err());
    }

    #[test]
    fn chat_states_receipts_reactions_and_retractions_share_the_signal_quota() {
        let mut g = limited_coven();
        let bob = jid("bob@localhost");
        let alices = MessageRef {
            id: 1,
            channel: g.channel("coven").unwrap().key,
            sender: jid("alice@localhost"),
            client_id: None,
            retracted: false,
        };
        let bobs = MessageRef {
            sender: bob.clone(),
            ..alices.clone()
        };
        let t = 10 * SECOND;
        g.chat_state("coven", &bob, ChatState::Composing, Repeats::Dropped, t)
            .unwrap();
        g.receipt("coven", &bob, Some(&alices), ReceiptKind::Displayed, t)
            .unwrap();
        g.react("coven", &bob, Some(&alices), vec!["👍".into()], t)
            .unwrap();
        g.retract("coven", &bob, Some(&bobs), None, t).unwrap();
        // Four a minute, all at once: the fifth signal of any kind is refused.
        let err = g
            .chat_state("coven", &bob, ChatState::Paused, Repeats::Dropped, t)
            .unwrap_err();
        assert_eq!(err.condition, Condition::PolicyViolation);
        assert_eq!(
            err.text,
            "you are sending chat states, receipts, reactions and retractions too fast: \
             at most 4 a minute; try again in 15 s"
        );
        // Posts are apart, and a refused signal to a channel bob is not in is counted too
        // (taken before the look-up).
        post(&mut g, "bob@localhost", t).unwrap();
        assert!(g
            .chat_state(
                "nowhere",
                &bob,
                ChatState::Composing,
                Repeats::Dropped,
                t + 15 * SECOND
            )
            .is_err());
        let err = g
            .chat_state(
                "coven",
                &bob,
                ChatState::Paused,
                Repeats::Dropped,
                t + 15 * SECOND,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::PolicyViolation);
        // A correction is a post again: it takes from the message quota.
        let edit = |g: &mut Groups| g.correct("coven", &bob, Some(&bobs), text("y"), t);
        edit(&mut g).unwrap();
        edit(&mut g).unwrap();
        let err = edit(&mut g).unwrap_err();
        assert!(
            err.text.starts_with("you are sending messages too fast"),
            "{}",
            err.text
        );
    }

    #[test]
    fn reads_come_in_bursts_then_at_the_sustained_rate_per_user() {
        let mut g = limited();
        g.rules.history_burst = 2;
        g.rules.history_per_minute = 30;
        let (bob, alice) = (jid("bob@localhost"), jid("alice@localhost"));
        let t = 10 * SECOND;
        g.charge_read(&bob, t).unwrap();
        g.charge_read(&bob, t).unwrap();
        let err = g.charge_read(&bob, t).unwrap_err();
        assert_eq!(err.condition, Condition::PolicyViolation);
        assert_eq!(
            err.text,
            "you are reading history too fast: at most 2 reads at once, then 30 a minute; \
             try again in 2.0 s"
        );
        // Another user is apart.
        g.charge_read(&alice, t).unwrap();
        // One every two seconds, sustained.
        g.charge_read(&bob, t + 2 * SECOND).unwrap();
        assert!(g.charge_read(&bob, t + 3 * SECOND).is_err());
        g.charge_read(&bob, t + 4 * SECOND).unwrap();
        // 0 turns it off.
        g.rules.history_burst = 0;
        for _ in 0..10 {
            g.charge_read(&bob, t + 4 * SECOND).unwrap();
        }
    }

    #[test]
    fn a_refused_read_says_until_when_its_reader_is_out_of_reads() {
        let mut g = limited();
        g.rules.history_burst = 2;
        g.rules.history_per_minute = 30;
        let bob = jid("bob@localhost");
        let t = 10 * SECOND;
        g.charge_read(&bob, t).unwrap();
        g.charge_read(&bob, t).unwrap();
        assert!(g.take_out_of_tokens().is_empty());
        let later = t + SECOND / 2;
        let err = g.charge_read(&bob, later).unwrap_err();
        let out = g.take_out_of_tokens();
        assert!(g.take_out_of_tokens().is_empty());
        let [entry] = &out[..] else {
            panic!("one entry: {out:?}")
        };
        assert_eq!((&entry.user, entry.quota), (&bob, Quota::Reads));
        assert_eq!(entry.until, t + 2 * SECOND);
        assert_eq!(entry.refusal(later), err);
        let then = t + SECOND;
        assert_eq!(entry.refusal(then), g.charge_read(&bob, then).unwrap_err());
        g.take_out_of_tokens();
        g.charge_read(&bob, entry.until).unwrap();
        assert!(g.take_out_of_tokens().is_empty());
    }

    #[test]
    fn channel_creation_is_limited_per_hour() {
        let mut g = limited();
        let alice = jid("alice@localhost");
        g.create(&alice, Some("a"), 0).unwrap();
        // A refused creation (a name taken) takes nothing.
        g.create(&alice, Some("a"), 0).unwrap_err();
        g.create(&alice, None, 0).unwrap();
        let err = g.create(&alice, Some("c"), 60 * SECOND).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert_eq!(
            err.text,
            "you have created channels too fast: at most 2 an hour; try again in 29 minutes"
        );
        assert!(g.channel("c").is_none());
        g.create(&jid("bob@localhost"), Some("c"), 60 * SECOND)
            .unwrap();
        // Two an hour: one every half hour.
        g.create(&alice, Some("d"), 30 * MINUTE).unwrap();
        assert!(g.create(&alice, Some("e"), 30 * MINUTE).is_err());
        // create_group counts too, and refuses before anything exists.
        let err = alices_group(&mut g, Some("f"), &[], 31 * MINUTE).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert!(g.channel("f").is_none());
    }

    #[test]
    fn joins_are_limited_per_minute_and_changing_nothing_is_free() {
        let mut g = limited();
        g.rules.channels_per_hour = 0;
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        for name in ["a", "b", "c"] {
            g.create(&alice, Some(name), 0).unwrap();
        }
        g.join("a", &bob, None, Nodes::ALL, 0).unwrap();
        // Joining again as one is makes no fact and costs nothing.
        for _ in 0..5 {
            g.join("a", &bob, None, Nodes::ALL, 0).unwrap();
        }
        g.join("b", &bob, None, Nodes::ALL, 0).unwrap();
        let err = g.join("c", &bob, None, Nodes::ALL, 0).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert_eq!(
            err.text,
            "you are joining channels too fast: at most 2 a minute; try again in 30 s"
        );
        assert!(g.channel("c").unwrap().participant(&bob).is_none());
        g.join("c", &bob, None, Nodes::ALL, 30 * SECOND).unwrap();
        // A join request counts as a join.
        let change = SettingsChange {
            policy: Some(JoinPolicy::Request),
            ..SettingsChange::default()
        };
        g.create(&jid("carol@localhost"), Some("d"), 0).unwrap();
        g.change_settings("d", &jid("carol@localhost"), change, 0)
            .unwrap();
        let err = g
            .request_join("d", &bob, Dialect::Mix, 30 * SECOND)
            .unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        g.request_join("d", &bob, Dialect::Mix, 60 * SECOND)
            .unwrap();
    }

    #[test]
    fn added_and_invited_users_are_counted_all_or_none() {
        let mut g = limited_coven();
        let alice = jid("alice@localhost");
        let users = |names: &[&str]| -> Vec<BareJid> {
            names
                .iter()
                .map(|n| jid(&format!("{n}@localhost")))
                .collect()
        };
        // bob is in already: only carol and dave are added, two tokens.
        g.add_participants(
            "coven",
            &alice,
            &users(&["bob", "carol", "dave"]),
            Dialect::FlyChat,
            0,
        )
        .unwrap();
        // Two more do not fit in the one token left: nobody is added.
        let err = g
            .add_participants(
                "coven",
                &alice,
                &users(&["eve", "frank"]),
                Dialect::FlyChat,
                0,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert_eq!(
            err.text,
            "you have added or invited users too fast: at most 3 an hour; try again in 20 minutes"
        );
        assert!(g
            .channel("coven")
            .unwrap()
            .participant(&jid("eve@localhost"))
            .is_none());
        // Invitations take from the same bucket.
        g.invite("coven", &alice, &users(&["eve"]), 0).unwrap();
        let err = g
            .invite("coven", &alice, &users(&["frank"]), 0)
            .unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        // Twenty minutes bring one back.
        g.invite("coven", &alice, &users(&["frank"]), 20 * MINUTE)
            .unwrap();
        // A request larger than the whole quota can never pass, and says so.
        let err = g
            .add_participants(
                "coven",
                &alice,
                &users(&["g1", "g2", "g3", "g4"]),
                Dialect::FlyChat,
                10 * HOUR,
            )
            .unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert!(err.text.contains("needs 4 of the 3"), "{}", err.text);
    }

    #[test]
    fn a_group_created_with_more_members_than_the_quota_is_not_created() {
        let mut g = limited();
        let members: Vec<BareJid> = ["alice", "bob", "carol", "dave", "eve"]
            .iter()
            .map(|n| jid(&format!("{n}@localhost")))
            .collect();
        let err = alices_group(&mut g, Some("trip"), &members, 0).unwrap_err();
        assert_eq!(err.condition, Condition::ResourceConstraint);
        assert!(g.channel("trip").is_none());
        // The creator is not counted: herself and three others fit.
        alices_group(&mut g, Some("trip"), &members[..4], 0).unwrap();
        assert_eq!(g.channel("trip").unwrap().participants.len(), 4);
    }

    #[test]
    fn zero_turns_a_quota_off() {
        let mut g = limited_coven();
        g.rules.message_burst = 0;
        g.rules.channels_per_hour = 0;
        for _ in 0..50 {
            post(&mut g, "bob@localhost", 0).unwrap();
        }
        for i in 0..10 {
            g.create(&jid("bob@localhost"), Some(&format!("c{i}")), 0)
                .unwrap();
        }
        assert_eq!(g.quotas().tracked(), 0, "nothing off is tracked");
    }

    #[test]
    fn idle_users_are_forgotten_and_the_tracked_are_capped() {
        let mut g = limited_coven();
        post(&mut g, "bob@localhost", 0).unwrap();
        post(&mut g, "alice@localhost", 0).unwrap();
        assert_eq!(g.quotas().tracked(), 2);
        // Refilled a minute later and swept: as if never seen.
        post(&mut g, "alice@localhost", 2 * MINUTE).unwrap();
        assert_eq!(g.quotas().tracked(), 1);

        let rules = limited().rules;
        let mut quotas = Quotas::default();
        let user = |i: usize| jid(&format!("u{i}@localhost"));
        for i in 0..MAX_TRACKED {
            // Each later user is further from full: the early ones go first.
            quotas
                .take(&rules, &user(i), Quota::Messages, 1, i as Micros)
                .unwrap();
        }
        assert_eq!(quotas.tracked(), MAX_TRACKED);
        quotas
            .take(
                &rules,
                &user(MAX_TRACKED),
                Quota::Messages,
                1,
                MAX_TRACKED as Micros,
            )
            .unwrap();
        assert!(quotas.tracked() <= MAX_TRACKED - MAX_TRACKED / 10 + 1);
        assert!(quotas.users.contains_key(&user(MAX_TRACKED)));
        assert!(quotas.users.contains_key(&user(MAX_TRACKED - 1)));
        assert!(!quotas.users.contains_key(&user(0)));
    }

    #[test]
    fn waits_are_rounded_up_for_people() {
        assert_eq!(duration_text(1), "0.1 s");
        assert_eq!(duration_text(SECOND), "1.0 s");
        assert_eq!(duration_text(SECOND + 1), "1.1 s");
        assert_eq!(duration_text(45 * SECOND + 1), "46 s");
        assert_eq!(duration_text(30 * MINUTE), "30 minutes");
    }
}
