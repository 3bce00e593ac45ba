//! Turns between users: one queue per user (a bare JID), served one item per user in turn,
//! each user's items in their order. Shared by the service's intake (`intake.rs`: stanzas)
//! and the archive's readers (`readers.rs`: reads), so that one user's backlog delays another
//! user's next item by at most one item of each other busy user, never by the whole backlog.

use std::collections::{HashMap, VecDeque};

/// Queues per user, taken in turns. At most `per_user` items of one user wait; how many
/// may wait in all is the owner's bound (`len`). A queue that empties is dropped, so idle
/// users cost nothing.
pub struct Turns<T> {
    queues: HashMap<String, VecDeque<T>>,
    /// Users with items waiting, in the order of their turns.
    order: VecDeque<String>,
    waiting: usize,
    per_user: usize,
}

impl<T> Turns<T> {
    pub fn new(per_user: usize) -> Self {
        Turns {
            queues: HashMap::new(),
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
        match self.queues.get_mut(user_of(&item)) {
            Some(queue) if queue.len() >= self.per_user => return Err(item),
            Some(queue) => queue.push_back(item),
            None => {
                let user = user_of(&item).to_owned();
                self.queues.insert(user.clone(), VecDeque::from([item]));
                self.order.push_back(user);
            }
        }
        self.waiting += 1;
        Ok(())
    }

    /// The next user's oldest item; that user goes to the back of the turns.
    pub fn take_turn(&mut self) -> Option<T> {
        let user = self.order.pop_front()?;
        let queue = self.queues.get_mut(&user)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&user);
        } else {
            self.order.push_back(user);
        }
        self.waiting -= usize::from(item.is_some());
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
        assert!(turns.queues.is_empty() && turns.order.is_empty());
    }
}
