//! A user's bare JID as the core holds it: one allocation per user, shared by every
//! membership and by the directory, instead of a `BareJid` (32 bytes and a heap string of
//! its own) in each. At ten million memberships of a million users that is 500 MB less, and
//! loading parses each user's JID once instead of once per membership.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use jid::BareJid;

/// A participant's bare JID, cheap to clone (a reference count). Reads as a `BareJid`
/// (`Deref`), compares with one, and finds entries keyed by it (`Borrow`): it hashes as the
/// `BareJid` it holds, which hashes its text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserJid(Arc<BareJid>);

impl UserJid {
    /// The plain `BareJid`, for what outlives the core's state (facts' texts, the wire).
    pub fn to_bare(&self) -> BareJid {
        (*self.0).clone()
    }
}

impl Deref for UserJid {
    type Target = BareJid;

    fn deref(&self) -> &BareJid {
        &self.0
    }
}

impl Borrow<BareJid> for UserJid {
    fn borrow(&self) -> &BareJid {
        &self.0
    }
}

/// Lets the loader find a user by the text of a stored row without parsing it: a `BareJid`
/// compares and hashes as its normalized text.
impl Borrow<str> for UserJid {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl Hash for UserJid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0).hash(state)
    }
}

impl From<BareJid> for UserJid {
    fn from(jid: BareJid) -> Self {
        UserJid(Arc::new(jid))
    }
}

impl PartialEq<BareJid> for UserJid {
    fn eq(&self, other: &BareJid) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<UserJid> for BareJid {
    fn eq(&self, other: &UserJid) -> bool {
        *self == *other.0
    }
}

impl fmt::Display for UserJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for UserJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The users met while loading, so that each user's memberships share its one [`UserJid`].
#[derive(Default)]
pub struct UserJids(HashSet<UserJid>);

impl UserJids {
    /// The shared JID whose text is `text`: found without parsing when it was met before in
    /// its normalized form (as the store writes it), else parsed once.
    pub fn get(&mut self, text: &str) -> Result<UserJid, jid::Error> {
        if let Some(known) = self.0.get(text) {
            return Ok(known.clone());
        }
        Ok(self.intern(BareJid::new(text)?))
    }

    /// The shared JID equal to `jid`, which becomes the shared one if it is new.
    pub fn intern(&mut self, jid: BareJid) -> UserJid {
        if let Some(known) = self.0.get(&jid) {
            return known.clone();
        }
        let user = UserJid::from(jid);
        self.0.insert(user.clone());
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_met_twice_is_one_allocation_and_reads_as_its_bare_jid() {
        let mut users = UserJids::default();
        let first = users.get("alice@localhost").unwrap();
        let again = users.get("alice@localhost").unwrap();
        assert!(Arc::ptr_eq(&first.0, &again.0));
        // Unnormalized text finds the same user once parsed.
        let upper = users.get("alice@LOCALHOST").unwrap();
        assert!(Arc::ptr_eq(&first.0, &upper.0));
        let bare: BareJid = "alice@localhost".parse().unwrap();
        assert_eq!(first, bare);
        assert_eq!(first.to_string(), "alice@localhost");
        assert!(users.get("not a jid@").is_err());
        let keyed: HashSet<UserJid> = [first].into();
        assert!(keyed.contains(&bare));
    }
}
