//! Bare elements of the names and namespaces the parser met last, cloned for each new
//! element of the same name and namespace.
//!
//! Why: `Element::bare` takes the namespace as a `String` and wraps it in a fresh `Arc`, so
//! every element cost two allocations (and, on the rules task that drops it, two frees) for
//! a namespace that nearly every stanza repeats (`jabber:component:accept` on the stanza and
//! its `<body/>`). minidom offers no constructor that takes a shared namespace, but a clone
//! of an element shares its namespace's `Arc`: cloning a bare element allocates only its
//! name. Cloning the empty attribute map and children allocates nothing.
//!
//! A reader keeps one per link, bounded: at most [`SLOTS`] prototypes, each of a name and
//! namespace of at most [`MAX_CACHED`] bytes, replaced in turn, so that a stanza of many
//! names costs a look-up each and holds no more memory.

use minidom::Element;

/// How many prototypes are kept: the names of a stanza and its usual payloads.
const SLOTS: usize = 16;

/// The longest name plus namespace kept as a prototype.
const MAX_CACHED: usize = 128;

#[derive(Debug, Default)]
pub struct Prototypes {
    elements: Vec<Element>,
    /// The slot replaced next once all are taken.
    next: usize,
}

impl Prototypes {
    /// A bare element of `name` in `namespace`.
    pub fn element(&mut self, name: &str, namespace: &str) -> Element {
        if let Some(prototype) = self.elements.iter().find(|p| p.is(name, namespace)) {
            return prototype.clone();
        }
        let element = Element::bare(name, namespace);
        if name.len() + namespace.len() <= MAX_CACHED {
            if self.elements.len() < SLOTS {
                self.elements.push(element.clone());
            } else {
                self.elements[self.next] = element.clone();
                self.next = (self.next + 1) % SLOTS;
            }
        }
        element
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_are_the_element_and_the_cache_stays_bounded() {
        let mut prototypes = Prototypes::default();
        for round in 0..3 {
            for i in 0..SLOTS * 2 {
                let name = format!("n{i}");
                let element = prototypes.element(&name, "urn:x");
                assert_eq!(element, Element::bare(name, "urn:x"), "round {round}");
            }
            let body = prototypes.element("body", "jabber:component:accept");
            assert!(body.is("body", "jabber:component:accept"));
            assert!(body.attrs().is_empty());
            assert_eq!(body.nodes().count(), 0);
            // The same name in another namespace is another element.
            assert!(prototypes.element("body", "").is("body", ""));
        }
        let long = "l".repeat(MAX_CACHED);
        assert!(prototypes
            .element(&long, "urn:x")
            .is(long.as_str(), "urn:x"));
        assert!(prototypes.elements.len() <= SLOTS);
        assert!(prototypes.elements.iter().all(|p| p.name() != long));
    }
}
