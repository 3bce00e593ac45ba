//! Chat states (XEP-0085; FlyChat's composing/gone): relayed to the other participants as
//! they happen, never stored, so history never shows them.
//!
//! A repeat is no news: XEP-0085 §5 says a client MUST NOT send the same standalone
//! notification twice in a row (a `<composing/>` is followed by another state, not by a
//! second `<composing/>`), and a content message stands for `<active/>`. So a MIX chat state
//! that repeats the last one its sender's stanzas told the channel, within
//! [`REPEAT_WINDOW`], is dropped: not relayed, not charged to the signal quota, not
//! answered (a relayed chat state is not answered either). Without it, a client repeating
//! `<composing/>` had each one told to every participant (a 50-member channel: 50 stanzas
//! each), and a flood of them had the signal quota's whole burst relayed at once: 60,000
//! deliveries that held every other channel's messages back in the outbound queue
//! (docs/benchmarks.md, "Fairness"). FlyChat's typing is relayed every time: the SDK
//! repeats `composing` while its user types, each one keeping the indicator alive.
//!
//! Changes are paced too, in both dialects: each user's states in each channel are relayed
//! at most [`STATE_BURST`] at once, then one per [`STATE_INTERVAL`]; one beyond that is
//! dropped like a repeat (XEP-0085 §5.4 lets a service drop or coalesce chat states), and the
//! user's next state once the pace allows it is relayed. Alternating states (`composing`,
//! `paused`, `composing`, …) were each news, so a flood of them still had the signal quota's
//! whole burst relayed at once; paced, a flood costs each channel one state a second per
//! flooder. People change state at typing speed, a few times in a few seconds, and the
//! SDK's repeats come seconds apart: both stay within the pace.

use std::collections::HashMap;

use jid::BareJid;

use super::{Fact, Groups, Micros, Outcome};

/// How long a relayed chat state makes the same one again no news. A client tells a change
/// within this (XEP-0085 suggests `paused` after 30 s without typing); after it, a repeat is
/// relayed, for the participants who came online since.
pub const REPEAT_WINDOW: Micros = 30_000_000;

/// How many chat states of one user in one channel are relayed at once, before the pace.
pub const STATE_BURST: i64 = 4;
/// The pace of a user's chat states in one channel beyond the burst: one per this.
pub const STATE_INTERVAL: Micros = 1_000_000;

/// Whether a repeat of the last chat state is relayed (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    /// XEP-0085: a repeat is no news, and is dropped.
    Dropped,
    /// FlyChat: a repeat keeps the indicator alive, and is relayed.
    Relayed,
}

/// The last chat state each user told each channel lately, and when. Memory is bounded by
/// the users who sent one within the last [`REPEAT_WINDOW`]: older ones are swept away at
/// most once per window.
#[derive(Debug, Default)]
pub struct LastStates {
    users: HashMap<BareJid, Vec<LastState>>,
    swept_at: Micros,
    /// What the link's gate is told since it last asked ([`Groups::take_quiet_states`]).
    news: QuietNews,
}

/// The most [`Quiet`]s kept until the rules task takes them (it does after each stanza).
const MAX_QUIET_NEWS: usize = 64;

/// A user whose chat states in a channel the rules drop, untold and unanswered, until a
/// time: the one repeating `last` until `repeats_until`, any until `paced_until`. The rules
/// task publishes it when it drops one, so that the link can drop the next ones before it
/// builds them (`src/gate.rs`), as long as the user sent the channel nothing else since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiet {
    pub user: BareJid,
    pub channel: String,
    pub last: ChatState,
    /// Until when a MIX `last` is a repeat (FlyChat's typing is relayed again).
    pub repeats_until: Micros,
    pub paced_until: Micros,
}

/// What the gate is told after a stanza: the users whose states were dropped, and whether
/// a membership ended (a participant left or was removed, a channel was destroyed), after
/// which what the gate was told before may no longer hold: a non-participant's chat state
/// is refused, not dropped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuietNews {
    pub quiet: Vec<Quiet>,
    pub membership_ended: bool,
}

#[derive(Debug, Clone, Copy)]
struct LastState {
    channel: i64,
    state: ChatState,
    at: Micros,
    /// The pace (a virtual schedule): when the next state would be due if every relayed one
    /// took [`STATE_INTERVAL`]; a state is relayed while this is less than the burst ahead.
    due: Micros,
}

impl LastStates {
    /// Whether `state` from `user` in `channel` at `now` repeats the last one told.
    fn repeats(&self, channel: i64, user: &BareJid, state: ChatState, now: Micros) -> bool {
        self.users.get(user).is_some_and(|states| {
            states.iter().any(|last| {
                last.channel == channel
                    && last.state == state
                    && now.saturating_sub(last.at) < REPEAT_WINDOW
            })
        })
    }

    /// Whether a state from `user` in `channel` at `now` is beyond the pace.
    fn too_soon(&self, channel: i64, user: &BareJid, now: Micros) -> bool {
        self.users.get(user).is_some_and(|states| {
            states.iter().any(|last| {
                last.channel == channel && last.due > now + (STATE_BURST - 1) * STATE_INTERVAL
            })
        })
    }

    /// `user` told `channel` `state` at `now`: one more on the pace.
    fn told(&mut self, channel: i64, user: &BareJid, state: ChatState, now: Micros) {
        self.sweep(now);
        let states = self.users.entry(user.clone()).or_default();
        let due = take(states, channel).map_or(now, |last| last.due.max(now)) + STATE_INTERVAL;
        states.push(LastState {
            channel,
            state,
            at: now,
            due,
        });
    }

    /// A state of `user` in `channel` (named `name`) was dropped: the gate is told until when
    /// the next ones will be.
    fn dropped(&mut self, channel: i64, name: &str, user: &BareJid) {
        let Some(last) = self
            .users
            .get(user)
            .and_then(|states| states.iter().find(|last| last.channel == channel))
        else {
            return;
        };
        if self.news.quiet.len() < MAX_QUIET_NEWS {
            self.news.quiet.push(Quiet {
                user: user.clone(),
                channel: name.to_owned(),
                last: last.state,
                repeats_until: last.at.saturating_add(REPEAT_WINDOW),
                paced_until: last.due - (STATE_BURST - 1) * STATE_INTERVAL,
            });
        }
    }

    /// A membership ended: see [`QuietNews`].
    pub(super) fn membership_ended(&mut self) {
        self.news.membership_ended = true;
    }

    /// `user` posted to `channel` at `now`: a content message stands for `<active/>` (and
    /// was not a chat state: the pace stays as it was). Only a user with states kept is
    /// touched, so that a post costs one look-up at most.
    pub(super) fn posted(&mut self, channel: i64, user: &BareJid, now: Micros) {
        if let Some(states) = self.users.get_mut(user) {
            let due = take(states, channel).map_or(now, |last| last.due);
            states.push(LastState {
                channel,
                state: ChatState::Active,
                at: now,
                due,
            });
        }
    }

    fn sweep(&mut self, now: Micros) {
        if now.saturating_sub(self.swept_at) < REPEAT_WINDOW && now >= self.swept_at {
            return;
        }
        self.swept_at = now;
        self.users.retain(|_, states| {
            states.retain(|last| now.saturating_sub(last.at) < REPEAT_WINDOW);
            !states.is_empty()
        });
    }

    /// How many users have states kept (for tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.users.len()
    }
}

/// Takes `channel`'s state out of one user's `states`.
fn take(states: &mut Vec<LastState>, channel: i64) -> Option<LastState> {
    let at = states.iter().position(|last| last.channel == channel)?;
    Some(states.swap_remove(at))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    Active,
    Composing,
    Paused,
    Inactive,
    Gone,
}

impl ChatState {
    pub const ALL: [ChatState; 5] = [
        ChatState::Active,
        ChatState::Composing,
        ChatState::Paused,
        ChatState::Inactive,
        ChatState::Gone,
    ];

    /// The XEP-0085 element name.
    pub fn name(self) -> &'static str {
        match self {
            ChatState::Active => "active",
            ChatState::Composing => "composing",
            ChatState::Paused => "paused",
            ChatState::Inactive => "inactive",
            ChatState::Gone => "gone",
        }
    }
}

impl Groups {
    /// `actor`'s chat state for the channel's other participants; no fact for a repeat
    /// that `repeats` drops (see the module's doc).
    pub fn chat_state(
        &mut self,
        name: &str,
        actor: &BareJid,
        state: ChatState,
        repeats: Repeats,
        now: Micros,
    ) -> Outcome {
        // Before the quota: a repeat, or a state beyond the pace, costs nothing, so it takes
        // no token. Only a participant's: anyone else is refused below as before.
        if let Some(channel) = self.channels.get(name) {
            if channel.participant(actor).is_some()
                && ((repeats == Repeats::Dropped
                    && self.chat_states.repeats(channel.key, actor, state, now))
                    || self.chat_states.too_soon(channel.key, actor, now))
            {
                self.chat_states.dropped(channel.key, name, actor);
                return Ok(Vec::new());
            }
        }
        self.charge(actor, super::Quota::Signals, 1, now)?;
        let (channel, participant) = self.participant_of(name, actor)?;
        let fact = Fact::ChatState {
            key: channel.key,
            sender: actor.clone(),
            nick: participant.nick.to_string(),
            state,
        };
        let key = channel.key;
        self.chat_states.told(key, actor, state, now);
        Ok(vec![fact])
    }

    /// What the link's gate is told since the last call (see [`QuietNews`]).
    pub fn take_quiet_states(&mut self) -> QuietNews {
        std::mem::take(&mut self.chat_states.news)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn only_participants_type() {
        let mut g = coven();
        let facts = chat_state(&mut g, "bob@localhost", ChatState::Composing);
        assert!(
            matches!(&facts[0], Fact::ChatState { nick, state: ChatState::Composing, .. } if nick == "bob")
        );
        for repeats in [Repeats::Dropped, Repeats::Relayed] {
            assert!(g
                .chat_state(
                    "coven",
                    &jid("eve@localhost"),
                    ChatState::Composing,
                    repeats,
                    0
                )
                .is_err());
        }
    }

    /// The states relayed of `sends`, each a second after the one before.
    fn relayed(g: &mut Groups, sends: &[(&str, ChatState)], repeats: Repeats) -> Vec<ChatState> {
        let mut told = Vec::new();
        for (n, (who, state)) in sends.iter().enumerate() {
            let facts = g
                .chat_state("coven", &jid(who), *state, repeats, n as Micros * 1_000_000)
                .unwrap();
            for fact in facts {
                let Fact::ChatState { state, .. } = fact else {
                    panic!("{fact:?}")
                };
                told.push(state);
            }
        }
        told
    }

    #[test]
    fn a_repeated_chat_state_is_no_news_but_a_change_is() {
        use ChatState::*;
        let mut g = with_carol();
        let (bob, carol) = ("bob@localhost", "carol@localhost");
        let sends = [
            (bob, Composing),
            (bob, Composing),
            // Another user's state is its own.
            (carol, Composing),
            (bob, Composing),
            (bob, Paused),
            (bob, Composing),
            (bob, Composing),
        ];
        assert_eq!(
            relayed(&mut g, &sends, Repeats::Dropped),
            [Composing, Composing, Paused, Composing]
        );
        // FlyChat's repeats keep the indicator alive: each is relayed.
        let mut g = with_carol();
        assert_eq!(
            relayed(&mut g, &sends[..2], Repeats::Relayed),
            [Composing, Composing]
        );
    }

    #[test]
    fn a_repeat_after_a_post_or_after_the_window_is_relayed() {
        let mut g = coven();
        let bob = jid("bob@localhost");
        let typing = |g: &mut Groups, now| {
            g.chat_state("coven", &bob, ChatState::Composing, Repeats::Dropped, now)
                .unwrap()
                .len()
        };
        assert_eq!(typing(&mut g, 0), 1);
        // A post stands for `<active/>`: typing again is news.
        g.post("coven", &bob, text("hi"), 1).unwrap();
        assert_eq!(typing(&mut g, 2), 1);
        assert_eq!(typing(&mut g, 3), 0);
        // So is the same state once the window has passed.
        assert_eq!(typing(&mut g, 2 + REPEAT_WINDOW), 1);
    }

    #[test]
    fn a_repeat_takes_no_token_of_the_signal_quota() {
        let mut g = coven();
        g.rules.signals_per_minute = 2;
        let bob = jid("bob@localhost");
        let mut send = |state| g.chat_state("coven", &bob, state, Repeats::Dropped, 0);
        assert_eq!(send(ChatState::Composing).unwrap().len(), 1);
        for _ in 0..10 {
            assert_eq!(send(ChatState::Composing).unwrap().len(), 0);
        }
        assert_eq!(send(ChatState::Paused).unwrap().len(), 1);
        // The third change is the quota's third signal: refused.
        assert!(send(ChatState::Composing).is_err());
    }

    #[test]
    fn changes_are_paced_per_user_and_channel_in_both_dialects() {
        use ChatState::*;
        for repeats in [Repeats::Dropped, Repeats::Relayed] {
            let mut g = with_carol();
            let (bob, carol) = (jid("bob@localhost"), jid("carol@localhost"));
            let mut send = |who: &BareJid, state, now| {
                g.chat_state("coven", who, state, repeats, now)
                    .unwrap()
                    .len()
            };
            // Alternating states, all at once: the burst is relayed, the rest dropped.
            let relayed: usize = (0..20)
                .map(|i| send(&bob, [Composing, Paused][i % 2], 0))
                .sum();
            assert_eq!(relayed, STATE_BURST as usize, "{repeats:?}");
            // Another user is apart.
            assert_eq!(send(&carol, Composing, 0), 1);
            // Then one a second.
            assert_eq!(send(&bob, Composing, STATE_INTERVAL), 1);
            assert_eq!(send(&bob, Paused, STATE_INTERVAL + 1), 0);
            assert_eq!(send(&bob, Paused, 2 * STATE_INTERVAL), 1);
            // A post is not a chat state: it takes nothing of the pace.
            let mut g2 = with_carol();
            for i in 0..STATE_BURST {
                g2.post("coven", &bob, text("hi"), i).unwrap();
                assert_eq!(
                    g2.chat_state("coven", &bob, Composing, repeats, i)
                        .unwrap()
                        .len(),
                    1
                );
            }
        }
    }

    #[test]
    fn states_older_than_the_window_are_forgotten() {
        let mut g = coven();
        let bob = jid("bob@localhost");
        g.chat_state("coven", &bob, ChatState::Composing, Repeats::Dropped, 0)
            .unwrap();
        assert_eq!(g.chat_states.kept(), 1);
        let alice = jid("alice@localhost");
        g.chat_state(
            "coven",
            &alice,
            ChatState::Paused,
            Repeats::Dropped,
            2 * REPEAT_WINDOW,
        )
        .unwrap();
        assert_eq!(g.chat_states.kept(), 1);
    }
}
