//! mixd: a MIX group-chat service attached to an XMPP server as an external component.
//!
//! Layers, from the outside in (dependencies point inward, to `core`):
//! - [`link`]: the XEP-0114 connection (the wire);
//! - [`router`]: checks every stanza's envelope and hands it to its dialect;
//! - [`mix`]: the standard MIX dialect, stanza ⇄ core command;
//! - [`flychat`]: the FlyChat SDK's dialect, on the same core;
//! - [`dialect`]: what both dialects share (envelope, replies, shapes), and nothing else;
//! - [`delivery`]: facts → stanzas for each recipient;
//! - [`store`]: SQLite behind a narrow interface, with group commit;
//! - [`core`]: channels, participants and their rules, with no I/O.
//!
//! Beside them, [`bootstrap`] serves the FlyChat SDK's REST calls before it speaks XMPP.
//!
//! [`service`] ties them together, taking what the link read from each sender in turn
//! ([`intake`]), with [`control`] (the operator's socket) and [`reload`] (SIGHUP);
//! `docs/ARCHITECTURE.md` follows one stanza through.

pub mod admin;
pub mod bootstrap;
pub mod config;
pub mod control;
pub mod core;
pub mod delivery;
pub mod dialect;
pub mod flychat;
pub mod gate;
pub mod host;
pub mod intake;
pub mod link;
pub mod metrics;
pub mod mix;
pub mod read_gate;
pub mod readers;
pub mod reload;
pub mod router;
pub mod service;
pub mod store;
pub mod turns;
pub mod xml;
