//! The service's channels, found by name (what clients address) and by key (what facts and
//! the store name). Each name is held once, in its channel: kept also as a map's key and in a
//! key-to-name map, it cost two more strings a channel (a million channels' worth at start).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::{HashMap, HashTable};

use super::Channel;

#[derive(Default)]
pub struct Channels {
    /// Keys are the service's own numbers, which no client chooses: the fast default hasher.
    by_key: HashMap<i64, Box<Channel>>,
    /// Each channel's key, found by the channel's name, hashed with a keyed hasher (clients
    /// choose names).
    by_name: HashTable<i64>,
    names: RandomState,
}

impl Channels {
    // The snapshot's boxes, taken over as they are (a million channels are not copied).
    #[allow(clippy::vec_box)]
    pub fn new(list: Vec<Box<Channel>>) -> Self {
        let mut channels = Channels {
            by_key: HashMap::with_capacity(list.len()),
            by_name: HashTable::with_capacity(list.len()),
            names: RandomState::new(),
        };
        for channel in list {
            channels.insert(channel);
        }
        channels
    }

    fn key_of(&self, name: &str) -> Option<i64> {
        let hash = self.names.hash_one(name);
        let by_key = &self.by_key;
        self.by_name
            .find(hash, |key| by_key[key].name == name)
            .copied()
    }

    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.key_of(name).map(|key| &*self.by_key[&key])
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Channel> {
        let key = self.key_of(name)?;
        self.by_key.get_mut(&key).map(|channel| &mut **channel)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.key_of(name).is_some()
    }

    pub fn by_key(&self, key: i64) -> Option<&Channel> {
        self.by_key.get(&key).map(|channel| &**channel)
    }

    pub fn by_key_mut(&mut self, key: i64) -> Option<&mut Channel> {
        self.by_key.get_mut(&key).map(|channel| &mut **channel)
    }

    /// Adds `channel`, in place of any channel with its name or its key.
    pub fn insert(&mut self, channel: Box<Channel>) {
        if let Some(key) = self.key_of(&channel.name) {
            self.remove(key);
        }
        self.remove(channel.key);
        let Channels {
            by_key,
            by_name,
            names,
        } = self;
        let hash = names.hash_one(channel.name.as_str());
        by_name.insert_unique(hash, channel.key, |key| {
            names.hash_one(by_key[key].name.as_str())
        });
        by_key.insert(channel.key, channel);
    }

    /// Takes the channel `key` out.
    pub fn remove(&mut self, key: i64) -> Option<Box<Channel>> {
        let channel = self.by_key.remove(&key)?;
        let hash = self.names.hash_one(channel.name.as_str());
        if let Ok(entry) = self.by_name.find_entry(hash, |&found| found == key) {
            entry.remove();
        }
        Some(channel)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.by_key.values().map(|channel| &**channel)
    }
}

impl IntoIterator for Channels {
    type Item = Box<Channel>;
    type IntoIter = hashbrown::hash_map::IntoValues<i64, Box<Channel>>;

    fn into_iter(self) -> Self::IntoIter {
        self.by_key.into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::jid;

    fn channel(key: i64, name: &str) -> Box<Channel> {
        Box::new(Channel::new(key, name.into(), jid("alice@localhost"), 1))
    }

    #[test]
    fn found_by_name_and_by_key_until_removed_and_replaced_whole() {
        let mut channels = Channels::new(vec![channel(1, "coven"), channel(2, "tower")]);
        assert_eq!(channels.get("tower").unwrap().key, 2);
        assert_eq!(channels.by_key(1).unwrap().name, "coven");
        assert!(channels.get("Coven").is_none());
        assert_eq!(channels.remove(1).unwrap().name, "coven");
        assert!(!channels.contains("coven"));
        assert!(channels.by_key(1).is_none());
        // A channel of a name in use, or of a key in use, takes the other's place.
        channels.insert(channel(3, "tower"));
        assert!(channels.by_key(2).is_none());
        channels.insert(channel(3, "keep"));
        assert!(!channels.contains("tower"));
        assert_eq!(channels.get_mut("keep").unwrap().key, 3);
        assert_eq!(channels.iter().count(), 1);
        // Many, so that the tables grow and move their entries.
        let mut many = Channels::new(Vec::new());
        for key in 0..1000 {
            many.insert(channel(key, &format!("c{key}")));
        }
        assert!((0..1000).all(|key| many.get(&format!("c{key}")).unwrap().key == key));
    }
}
