//! Turns between users: one queue per user (a bare JID), served one item per user in turn,
//! each user's items in their order. Shared by the service's intake (`intake.rs`: stanzas)
//! and the archive's readers (`readers.rs`: reads), so that one user's backlog delays another
//! user's next item by at most one item of each other busy user, never by the whole backlog.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Queues per user, taken in turns. At most `per_user` items of one user wait; how many
/// may wait in all is the owner's bound (`len`).
///
/// Every stanza the service handles passes through here, nearly always into a queue of its
/// own that it leaves empty (one stanza of a sender waiting at a time). With a map from each
/// user's name to its queue, that was three hashes of the name, two copies of it and a new
/// queue an item, all freed again when the queue emptied (docs/benchmarks.md, branch
/// `rules4`). Here the queues live in slots that are used again: a user's name is hashed once
/// as its item comes in, its turn names its slot, and an emptied slot keeps its buffers for
/// the next user, up to [`KEPT_SLOTS`] slots once nothing waits.
pub struct Turns<T> {
    /// The users with items waiting, each found by the hash of its name: its slot.
    by_user: HashTable<usize>,
    /// Client-chosen names, so a keyed hasher.
    hasher: RandomState,
    slots: Vec<Slot<T>>,
    /// Slots that hold no user.
    free: Vec<usize>,
    /// The slots of the users with items waiting, in the order of their turns.
    order: VecDeque<usize>,
    waiting: usize,
    per_user: usize,
}

/// One user's queue, or an empty one kept for the next user.
struct Slot<T> {
    user: String,
    /// The hash `user` is found by in `by_user`.
    hash: u64,
    items: VecDeque<T>,
}

/// How many slots, with their buffers, are kept once nothing waits: a burst from many users
/// at once does not stay in memory.
const KEPT_SLOTS: usize = 64;
/// The largest buffers an emptied slot keeps: a queue of a few items (one waits at a time,
/// nearly always) and a name of a usual length.
const KEPT_ITEMS: usize = 4;
const KEPT_NAME: usize = 128;

impl<T> Turns<T> {
    pub fn new(per_user: usize) -> Self {
        Turns {
            by_user: HashTable::new(),
            hasher: RandomState::new(),
            slots: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
            waiting: 0,
            per_user,
        }
    }

    /// How many items wait, of all users.
    pub fn len(&self) -> usize {
        self.waiting
    }

    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// Queues `item` behind the earlier items of its user (`user_of` it), or gives it back
    /// when `per_user` of theirs wait.
    pub fn push(&mut self, item: T, user_of: impl Fn(&T) -> &str) -> Result<(), T> {
        let user = user_of(&item);
        let hash = self.hasher.hash_one(user);
        let slots = &self.slots;
        let slot = match self.by_user.find(hash, |&slot| slots[slot].user == user) {
            Some(&slot) if slots[slot].items.len() >= self.per_user => return Err(item),
            Some(&slot) => slot,
            None => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.slots.push(Slot {
                        user: String::new(),
                        hash: 0,
                        items: VecDeque::new(),
                    });
                    self.slots.len() - 1
                });
                let Slot {
                    user: name,
                    hash: kept,
                    ..
                } = &mut self.slots[slot];
                name.clear();
                name.push_str(user);
                *kept = hash;
                let slots = &self.slots;
                self.by_user
                    .insert_unique(hash, slot, |&slot| slots[slot].hash);
                self.order.push_back(slot);
                slot
            }
        };
        self.slots[slot].items.push_back(item);
        self.waiting += 1;
        Ok(())
    }

    /// The next user's oldest item; that user goes to the back of the turns.
    pub fn take_turn(&mut self) -> Option<T> {
        let slot = self.order.pop_front()?;
        let queue = &mut self.slots[slot];
        let item = queue.items.pop_front();
        if queue.items.is_empty() {
            if let Ok(entry) = self.by_user.find_entry(queue.hash, |&found| found == slot) {
                entry.remove();
            }
            // A queue a flood grew, or a long name, is not kept for the next user.
            if queue.items.capacity() > KEPT_ITEMS {
                queue.items = VecDeque::new();
            }
            if queue.user.capacity() > KEPT_NAME {
                queue.user = String::new();
            }
            self.free.push(slot);
        } else {
            self.order.push_back(slot);
        }
        self.waiting -= usize::from(item.is_some());
        if self.waiting == 0 && self.slots.len() > KEPT_SLOTS {
            self.slots.truncate(KEPT_SLOTS);
            self.free = (0..KEPT_SLOTS).collect();
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An item's user is its first letter.
    fn push(turns: &mut Turns<&'static str>, item: &'static str) -> Result<(), &'static str> {
        turns.push(item, |item| &item[..1])
    }

    #[test]
    fn users_take_turns_each_in_order_within_their_share() {
        let mut turns = Turns::new(3);
        for item in ["f0", "f1", "f2"] {
            push(&mut turns, item).unwrap();
        }
        assert_eq!(push(&mut turns, "f3"), Err("f3"));
        push(&mut turns, "q0").unwrap();
        push(&mut turns, "q1").unwrap();
        push(&mut turns, "o0").unwrap();
        assert_eq!(turns.len(), 6);
        let mut order = Vec::new();
        while let Some(item) = turns.take_turn() {
            order.push(item);
            // A user whose queue emptied comes back at the end of the turns.
            if item == "o0" {
                push(&mut turns, "o1").unwrap();
            }
        }
        assert_eq!(order, ["f0", "q0", "o0", "f1", "q1", "o1", "f2"]);
        assert!(turns.is_empty());
        assert!(turns.by_user.is_empty() && turns.order.is_empty());
    }

    /// Slots are used again, by other users, and a burst from many users leaves
    /// [`KEPT_SLOTS`] once it is served; the turns stay in order throughout.
    #[test]
    fn slots_are_used_again_and_a_burst_is_not_kept() {
        let mut turns = Turns::new(2);
        let users: Vec<String> = (0..3 * KEPT_SLOTS).map(|n| format!("user{n}")).collect();
        for round in 0..3 {
            let mut items = Vec::new();
            for (n, user) in users.iter().enumerate().skip(round).step_by(round + 1) {
                for item in 0..2 {
                    turns
                        .push((user.clone(), n, item), |(user, ..)| user)
                        .unwrap();
                    items.push((n, item));
                }
                assert!(turns.push((user.clone(), n, 9), |(user, ..)| user).is_err());
            }
            // Each user's first item, in the order they came, then each one's second.
            items.sort_by_key(|&(n, item)| (item, n));
            let mut taken = Vec::new();
            while let Some((user, n, item)) = turns.take_turn() {
                assert_eq!(user, users[n]);
                taken.push((n, item));
            }
            assert_eq!(taken, items, "round {round}");
            assert_eq!(turns.slots.len(), KEPT_SLOTS);
            assert!(turns
                .slots
                .iter()
                .all(|slot| slot.items.capacity() <= KEPT_ITEMS));
            assert!(turns.by_user.is_empty() && turns.order.is_empty());
        }
    }

    /// A queue a flood grew is not kept for the next user.
    #[test]
    fn a_flooded_queue_is_not_kept() {
        let mut turns = Turns::new(1000);
        for item in 0..1000 {
            turns.push(item, |_| "flood").unwrap();
        }
        while turns.take_turn().is_some() {}
        assert!(turns.slots[0].items.capacity() <= KEPT_ITEMS);
    }
}
