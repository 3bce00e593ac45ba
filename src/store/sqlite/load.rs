//! The state the core starts from: every channel with its participants, owners and
//! administration, read in a handful of whole-table scans rather than per channel.

use rusqlite::{Connection, OptionalExtension};

use super::bare;
use crate::core::{Departure, Dialect, Pending, PendingKind, Snapshot};
use crate::store::columns::{channel, CHANNEL_COLUMNS};
use crate::store::load::{Loading, PARTICIPANTS};

/// Everything the core holds in memory, and the last keys the sequences handed out (kept
/// past deletions, so a destroyed channel's key or message id is never reused).
pub(super) fn snapshot(conn: &Connection) -> anyhow::Result<Snapshot> {
    let mut channels = Vec::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY key"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        channels.push(Box::new(channel(row)?));
    }
    let mut loading = Loading::new(channels);
    let mut stmt = conn.prepare("SELECT channel, jid FROM channel_owners")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        loading.owner(row.get(0)?, row.get_ref(1)?.as_str()?)?;
    }
    let mut stmt = conn
        .prepare("SELECT channel, list, entry FROM channel_access ORDER BY channel, list, entry")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Some(channel) = loading.channel_mut(row.get(0)?) {
            let entry = bare(row.get(2)?)?;
            let access = &mut channel.administration_mut().access;
            match row.get::<_, i64>(1)? {
                0 => access.allowed.push(entry),
                _ => access.banned.push(entry),
            }
        }
    }
    let mut stmt =
        conn.prepare("SELECT channel, jid, kind, by, at, dialect FROM pending ORDER BY at")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Some(channel) = loading.channel_mut(row.get(0)?) {
            channel.administration_mut().pending.push(Pending {
                jid: bare(row.get(1)?)?,
                kind: PendingKind::from_i64(row.get(2)?),
                by: bare(row.get(3)?)?,
                at: row.get(4)?,
                dialect: Dialect::from_i64(row.get(5)?),
            });
        }
    }
    let mut stmt = conn
        .prepare("SELECT channel, jid, resource FROM presence ORDER BY channel, jid, resource")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let resource = row.get_ref(2)?.as_str()?;
        loading.online(row.get(0)?, row.get(1)?, resource);
    }
    let mut stmt = conn.prepare(PARTICIPANTS)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        loading.participant(row)?;
    }
    let sequence = |table: &str| -> anyhow::Result<i64> {
        Ok(conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    };
    let mut stmt = conn.prepare("SELECT channel, name, jid, at FROM departed_owners")?;
    let mut rows = stmt.query([])?;
    let mut departures = Vec::new();
    while let Some(row) = rows.next()? {
        departures.push(Departure {
            key: row.get(0)?,
            name: row.get(1)?,
            owner: bare(row.get(2)?)?,
            at: row.get(3)?,
        });
    }
    Ok(loading.finish(sequence("channels")?, sequence("messages")?, departures))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::core::testing::{administered, alices_group, jid};
    use crate::core::Dialect;
    use crate::store::Reader;

    #[test]
    fn how_a_participant_is_reached_survives_a_restart() {
        use crate::core::model::Reach;
        let (_dir, mut w, r, mut g) = coven();
        let carol: jid::Jid = "carol@localhost".parse().unwrap();
        let (_, facts) = g
            .join_from("coven", &carol, None, crate::core::Nodes::ALL, 5)
            .unwrap();
        commit(&mut w, facts);
        let dave: jid::Jid = "dave@localhost/phone".parse().unwrap();
        let (_, facts) = g
            .join_from("coven", &dave, None, crate::core::Nodes::ALL, 6)
            .unwrap();
        commit(&mut w, facts);
        let snap = r.snapshot().unwrap();
        let reach = |who: &str| {
            let p = snap.channels[0]
                .participants
                .iter()
                .find(|p| p.jid == jid(who))
                .unwrap();
            (p.dialect, p.reach, p.online.len())
        };
        assert_eq!(reach("carol@localhost"), (Dialect::Mix, Reach::Server, 0));
        // A client that joined directly is online from its join on, restarts included.
        assert_eq!(reach("dave@localhost"), (Dialect::Mix, Reach::Direct, 1));
        assert_eq!(reach("bob@localhost"), (Dialect::Mix, Reach::Direct, 0));
        assert_eq!(
            crate::store::columns::mode(1),
            (Dialect::FlyChat, Reach::Direct)
        );
        // What an older mixd wrote reads as it did.
        assert_eq!(
            crate::store::columns::mode(0),
            (Dialect::Mix, Reach::Direct)
        );
    }

    #[test]
    fn a_users_memberships_share_one_jid_after_a_restart() {
        let (_dir, mut w, r, mut g) = coven();
        let alice = jid("alice@localhost");
        let (_, mut facts) = g.create(&alice, Some("tower"), 5).unwrap();
        facts.extend(
            g.join("tower", &alice, None, crate::core::Nodes::ALL, 6)
                .unwrap()
                .1,
        );
        commit(&mut w, facts);
        let snap = r.snapshot().unwrap();
        let in_each: Vec<&jid::BareJid> = snap
            .channels
            .iter()
            .map(|c| &*c.participant(&alice).unwrap().jid)
            .collect();
        assert_eq!(in_each.len(), 2);
        assert!(std::ptr::eq(in_each[0], in_each[1]), "one allocation");
        assert_eq!(*in_each[0], alice);
    }

    #[test]
    fn snapshot_round_trips_channels_and_participants() {
        let (_dir, _w, r, _g) = coven();
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.channels.len(), 1);
        let names: Vec<_> = snap.channels[0]
            .participants
            .iter()
            .map(|p| p.nick.as_str())
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(snap.channels[0].owners, vec![jid("alice@localhost")]);
        assert_eq!(snap.last_channel_key, 1);
    }

    #[test]
    fn participants_come_back_in_order_of_joining_not_of_their_jids() {
        let (_dir, mut w, r, mut g) = coven();
        // Read by JID, put in order of joining: aaron joined after alice and bob; zed and
        // abe at the same moment, which orders them by JID (as the store's order did before).
        for (who, at) in [("aaron", 7), ("zed", 8), ("abe", 8)] {
            let user = jid(&format!("{who}@localhost"));
            let (_, facts) = g
                .join("coven", &user, None, crate::core::Nodes::ALL, at)
                .unwrap();
            commit(&mut w, facts);
        }
        let snap = r.snapshot().unwrap();
        let order: Vec<_> = snap.channels[0]
            .participants
            .iter()
            .map(|p| p.jid.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "alice@localhost",
                "bob@localhost",
                "aaron@localhost",
                "abe@localhost",
                "zed@localhost"
            ]
        );
    }

    #[test]
    fn administration_survives_a_restart() {
        let (_dir, mut w, r, mut g) = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        let mut facts = administered(&mut g, 10);
        facts.extend(g.transfer("coven", &alice, &bob, 15).unwrap());
        commit(&mut w, facts);
        let snap = r.snapshot().unwrap();
        let (stored, live) = (&snap.channels[0], g.channel("coven").unwrap());
        assert_eq!(stored.participants, live.participants);
        assert_eq!(stored.owners, vec![bob.clone()]);
        assert_eq!(stored.administration, live.administration);
        assert_eq!(stored.muted_until(&bob), 1_000);
    }

    #[test]
    fn listed_or_not_survives_a_restart() {
        let (_dir, mut w, r, mut g) = coven();
        let alice = jid("alice@localhost");
        let (ad_hoc, facts) = g.create(&alice, None, 5).unwrap();
        commit(&mut w, facts);
        let (trip, facts) = alices_group(&mut g, Some("trip"), &[], 6).unwrap();
        commit(&mut w, facts);
        let snap = r.snapshot().unwrap();
        let listed = |name: &str| {
            snap.channels
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .listed
        };
        assert!(listed("coven"));
        assert!(!listed(&ad_hoc));
        assert!(!listed(&trip));
    }

    #[test]
    fn keys_are_never_reused_even_when_the_newest_channel_was_deleted() {
        let (_dir, mut w, r, mut g) = coven();
        let alice = jid("alice@localhost");
        let (_, facts) = g.create(&alice, Some("tower"), 5).unwrap();
        commit(&mut w, facts);
        let tower = g.channel("tower").unwrap().key;
        commit(&mut w, g.destroy(&alice, "tower", 6).unwrap());
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.last_channel_key, tower);
        let mut after = crate::core::Groups::new(g.rules.clone(), snap);
        let (_, facts) = after.create(&alice, Some("tower"), 7).unwrap();
        assert_eq!(facts[0].channel_key(), tower + 1);
    }

    #[test]
    fn an_owner_who_left_keeps_its_right_to_delete_across_a_restart() {
        let (_dir, mut w, r, mut g) = coven();
        let (alice, bob) = (jid("alice@localhost"), jid("bob@localhost"));
        // Alice leaves coven (ownership passes to bob); in a second channel she was the last
        // one in, so her exit deleted it.
        commit(&mut w, g.leave("coven", &alice, 10).unwrap());
        let (_, mut facts) = g.create(&alice, Some("tower"), 11).unwrap();
        facts.extend(
            g.join("tower", &alice, None, crate::core::Nodes::ALL, 11)
                .unwrap()
                .1,
        );
        commit(&mut w, facts);
        let tower = g.channel("tower").unwrap().key;
        commit(&mut w, g.leave("tower", &alice, 12).unwrap());
        let snap = r.snapshot().unwrap();
        let mut departures: Vec<_> = snap
            .departures
            .iter()
            .map(|d| (d.key, d.name.as_str(), d.owner.as_str()))
            .collect();
        departures.sort();
        assert_eq!(
            departures,
            [
                (1, "coven", "alice@localhost"),
                (tower, "tower", "alice@localhost")
            ]
        );
        let now = snap.departures[0].at;
        let mut after = crate::core::Groups::new(g.rules.clone(), snap);
        assert!(after.channel("coven").unwrap().is_owner(&bob));
        assert!(after.destroy(&alice, "tower", now + 1).unwrap().is_empty());
        assert!(!after.destroy(&alice, "coven", now + 1).unwrap().is_empty());
    }
}
