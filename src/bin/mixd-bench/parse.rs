//! The link's reading alone, in this process: what reading one stanza (framing, parsing,
//! building its tree) costs, without a mixd, a socket or a store. The stanzas are the
//! fan-out scenario's posts, read as the link reads them: in pieces of the link's read
//! buffer, whose edges fall inside stanzas.

use std::time::Instant;

use mixd::link::reader::{Item, Limits, Reader};

use crate::cpu_seconds_of;

/// The link's read buffer (`src/link/mod.rs`), so that stanzas are cut where they would be.
const READ_SIZE: usize = 64 * 1024;

pub fn parse(stanzas: usize) -> anyhow::Result<()> {
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' from='mix.bench' id='bench'>";
    let mut wire = Vec::new();
    for i in 0..stanzas {
        wire.extend_from_slice(
            format!(
                "<message type='groupchat' id='m{i}' from='u0@bench/r' to='c0@mix.bench'>\
                 <body>message {i}</body></message>"
            )
            .as_bytes(),
        );
    }
    let mut reader = Reader::new(Limits {
        max_bytes: 256 * 1024,
        max_depth: 32,
    });
    let mut out = Vec::new();
    reader.feed(header.as_bytes(), &mut out)?;
    out.clear();
    let cpu = cpu_seconds_of(std::process::id());
    let started = Instant::now();
    let mut read = 0;
    for piece in wire.chunks(READ_SIZE) {
        reader.feed(piece, &mut out)?;
        read += out
            .drain(..)
            .filter(|item| matches!(item, Item::Stanza { .. }))
            .count();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds_of(std::process::id()) - cpu;
    anyhow::ensure!(read == stanzas, "read {read} of {stanzas} stanzas");
    println!(
        "parse stanzas={stanzas} bytes={}: {:.0} ns of CPU per stanza ({:.0} ns wall), {:.0} stanzas per CPU-second",
        wire.len(),
        cpu * 1e9 / stanzas as f64,
        wall * 1e9 / stanzas as f64,
        stanzas as f64 / cpu.max(1e-9),
    );
    Ok(())
}
