"""A slixmpp client as a MIX user: the standard xep_0369 / xep_0313 plugins, plus queues of
what arrives so that tests can wait for exactly what a participant receives."""

import asyncio
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from .servers import MIX_DOMAIN, PASSWORD, USER_DOMAIN

TIMEOUT = 10
ADMIN = "urn:mixd:admin:0"
MISC = "urn:xmpp:mix:misc:0"
FLYCHAT = "jabber:iq:mixgroupchat"
NOTICE = "urn:mixd:notice:0"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def fields(element):
    """A FlyChat reply item as the SDK reads it: each child element's name → its text (the
    SDK ignores attributes)."""
    return {child.tag.split("}")[-1]: child.text or "" for child in element}


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, resource="test"):
        super().__init__(f"{user}@{USER_DOMAIN}/{resource}", PASSWORD)
        self.user = user
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_plain = True
        for plugin in ("xep_0030", "xep_0059", "xep_0060", "xep_0066", "xep_0082", "xep_0085",
                       "xep_0184", "xep_0199", "xep_0308", "xep_0313", "xep_0333", "xep_0334",
                       "xep_0359", "xep_0369", "xep_0372", "xep_0405", "xep_0424", "xep_0425",
                       "xep_0444", "xep_0461"):
            self.register_plugin(plugin)
        # Tests answer receipts themselves, to the channel.
        self.plugin["xep_0184"].auto_ack = False
        self.plugin["xep_0184"].auto_request = False
        self.mix_messages = asyncio.Queue()
        # What else arrives, by slixmpp event name: chatstate, message_retract, …
        self.received = {}
        for event in ("chatstate", "message_retract", "message_correction", "reactions",
                      "receipt_received", "marker_displayed"):
            self.received[event] = asyncio.Queue()
            self.add_event_handler(event, self.received[event].put_nowait)
        self.errors = asyncio.Queue()
        self.events = asyncio.Queue()
        self.add_event_handler("mix_message", self._mix_message)
        # Membership notifications (invitations, join requests, decisions). Read off every
        # message: slixmpp's "message" event only fires for messages with a body.
        self.notices = asyncio.Queue()
        self.live_notices = asyncio.Queue()
        self.register_handler(Callback("mixd notices", MatchXPath("{jabber:client}message"), self._notice))
        self.add_event_handler("message_error", self.errors.put_nowait)
        for event in ("pubsub_publish", "pubsub_retract", "pubsub_delete"):
            self.add_event_handler(event, lambda msg, kind=event: self.events.put_nowait((kind, msg)))
        self._ready = None

    def _mix_message(self, msg):
        """New messages only: relays of chat states, retractions, corrections and
        reactions carry <mix/> too, and go to their own queues."""
        for child in ("{urn:xmpp:message-retract:1}retract", "{urn:xmpp:message-correct:0}replace",
                      "{urn:xmpp:reactions:0}reactions"):
            if msg.xml.find(child) is not None:
                return
        if msg.xml.find("{jabber:client}body") is None:
            return
        self.mix_messages.put_nowait(msg)

    def _notice(self, msg):
        for child in msg.xml:
            if child.tag in (f"{{{MISC}}}invitation", f"{{{ADMIN}}}join-request", f"{{{ADMIN}}}decision"):
                self.notices.put_nowait(child)
            elif child.tag == f"{{{NOTICE}}}notice":
                self.live_notices.put_nowait(child)

    async def next_notice(self, timeout=TIMEOUT):
        return await asyncio.wait_for(self.notices.get(), timeout)

    async def next_live_notice(self, kind, timeout=TIMEOUT):
        """The next group event of `kind` as configuration-node subscribers see it live."""
        while True:
            notice = await asyncio.wait_for(self.live_notices.get(), timeout)
            if notice.get("kind") == kind:
                return notice

    async def admin(self, name, element, get=False, **attrs):
        """An iq to channel `name` carrying `<element xmlns='urn:mixd:admin:0' attrs/>`."""
        return await self.request(self.channel(name), ET.Element(f"{{{ADMIN}}}{element}", **attrs), get)

    async def flychat(self, name, status, participants=(), get=False, **attrs):
        """A FlyChat-dialect group operation, as the SDK would send it."""
        query = ET.Element(f"{{{FLYCHAT}}}query", status=status, **attrs)
        for jid in participants:
            ET.SubElement(query, f"{{{FLYCHAT}}}participant").text = jid
        return await self.request(self.channel(name), query, get)

    async def request(self, to, payload, get=False):
        iq = self.make_iq_get(ito=to) if get else self.make_iq_set(ito=to)
        iq.xml.append(payload)
        return await iq.send(timeout=TIMEOUT)

    async def invite(self, name, invitee):
        """XEP-0407: returns the <invitation/> of the result."""
        invite = ET.Element(f"{{{MISC}}}invite")
        ET.SubElement(invite, f"{{{MISC}}}invitee").text = invitee
        result = await self.request(self.channel(name), invite)
        return result.xml.find(f"{{{MISC}}}invite/{{{MISC}}}invitation")

    async def ban(self, name, entry, node="urn:xmpp:mix:nodes:banned", retract=False):
        """Publishes (or retracts) `entry` on the banned (or allowed) node."""
        pubsub = ET.Element("{http://jabber.org/protocol/pubsub}pubsub")
        op = ET.SubElement(pubsub, "{http://jabber.org/protocol/pubsub}" + ("retract" if retract else "publish"), node=node)
        ET.SubElement(op, "{http://jabber.org/protocol/pubsub}item", id=entry)
        return await self.request(self.channel(name), pubsub)

    async def items(self, name, node):
        """The items of a channel node, as XML elements."""
        pubsub = ET.Element("{http://jabber.org/protocol/pubsub}pubsub")
        ET.SubElement(pubsub, "{http://jabber.org/protocol/pubsub}items", node=node)
        result = await self.request(self.channel(name), pubsub, get=True)
        return result.xml.findall(".//{http://jabber.org/protocol/pubsub}item")

    async def config(self, name):
        """The configuration node's form (XEP-0406) as {var: [values]}."""
        (item,) = await self.items(name, "urn:xmpp:mix:nodes:config")
        return form_values(item)

    async def next(self, event, timeout=TIMEOUT):
        return await asyncio.wait_for(self.received[event].get(), timeout)

    def groupchat(self, name, body=None):
        """A groupchat message to channel `name`, to fill in and send."""
        return self.make_message(mto=self.channel(name), mbody=body, mtype="groupchat")

    async def start(self, port):
        self._ready = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _: self._ready.done() or self._ready.set_result(True))
        self.add_event_handler("failed_auth", lambda _: self._ready.done() or self._ready.set_exception(RuntimeError("auth failed")))
        self.connect("127.0.0.1", port)
        await asyncio.wait_for(self._ready, TIMEOUT)
        self.send_presence()
        return self

    async def stop(self):
        self.disconnect()
        await asyncio.sleep(0.05)

    @property
    def bare(self):
        return f"{self.user}@{USER_DOMAIN}"

    @staticmethod
    def channel(name):
        return slixmpp.JID(f"{name}@{MIX_DOMAIN}")

    async def create_live(self, name, *others, nodes=None):
        """Creates channel `name`; this client, then each of `others`, joins it (its user
        name for a nick, subscribed to `nodes`) and is online in it."""
        await self.plugin["xep_0369"].create_channel(self.channel("x"), name, timeout=TIMEOUT)
        for client in (self, *others):
            await client.join_live(name, client.user, nodes)

    async def join_live(self, name, nick, nodes=None):
        """Joins (subscribed to `nodes`, by default those slixmpp picks) and announces
        presence to the channel (XEP-0403) so deliveries reach us."""
        await self.plugin["xep_0369"].join_channel(self.channel(name), nick, nodes, timeout=TIMEOUT)
        await self.online_in(name)

    async def destroy(self, name):
        """slixmpp 1.17's destroy_channel sends an iq without its <destroy/> (the stanza
        class is not registered on Iq): build the element here."""
        iq = self.make_iq_set(ito=MIX_DOMAIN)
        iq.xml.append(ET.Element("{urn:xmpp:mix:core:1}destroy", channel=name))
        return await iq.send(timeout=TIMEOUT)

    async def mam(self, channel, flip=False, start=None, end=None, with_jid=None, fields=None, **rsm):
        """One MAM query with any RSM paging, in xep_0313's stanzas. Unlike retrieve(), it
        can send an empty <before/> (the last page) and <flip-page/>. Returns the result iq
        with the results in ["mam"]["results"], as retrieve() does."""
        iq = self.make_iq_set(ito=channel)
        query_id = iq["id"]
        iq["mam"]["queryid"] = query_id
        iq["mam"]["start"] = start
        iq["mam"]["end"] = end
        iq["mam"]["with"] = with_jid
        for var, value in (fields or {}).items():
            iq["mam"]["form"].add_field(var=var, value=value)
        for key, value in rsm.items():
            iq["mam"]["rsm"][key] = True if (key == "before" and value == "") else str(value)
        if flip:
            iq["mam"].xml.append(ET.Element("{urn:xmpp:mam:2}flip-page"))
        results = []

        def collect(msg):
            if msg["mam_result"]["queryid"] == query_id:
                results.append(msg)

        name = f"mam-{query_id}"
        self.register_handler(Callback(name, MatchXPath("{jabber:client}message/{urn:xmpp:mam:2}result"), collect))
        try:
            fin = await iq.send(timeout=TIMEOUT)
        finally:
            self.remove_handler(name)
        fin["mam"]["results"] = results
        return fin

    async def mam_at_once(self, channel, count):
        """`count` MAM queries (xep_0313's stanzas) sent at once, each answered either
        ("result", [bodies]) or ("error", condition, text, type), in the order sent. Sent past
        slixmpp's iq futures, which fail on conditions slixmpp does not know (RFC 3920 had no
        policy-violation)."""
        iqs = [self.make_iq_set(ito=channel) for _ in range(count)]
        ids = [iq["id"] for iq in iqs]
        bodies = {query_id: [] for query_id in ids}
        answers = {query_id: asyncio.get_running_loop().create_future() for query_id in ids}

        def result(msg):
            if msg["mam_result"]["queryid"] in bodies:
                bodies[msg["mam_result"]["queryid"]].append(msg["mam_result"]["forwarded"]["stanza"]["body"])

        def answered(stanza):
            answer = answers.get(stanza.xml.get("id"))
            if answer is None or answer.done():
                return
            if stanza.xml.get("type") == "result":
                answer.set_result(("result", bodies[stanza.xml.get("id")]))
            elif stanza.xml.get("type") == "error":
                error = stanza.xml.find("{jabber:client}error")
                stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
                conditions = [c.tag.split("}")[1] for c in error if c.tag != f"{{{stanzas}}}text"]
                answer.set_result(("error", conditions[0], error.findtext(f"{{{stanzas}}}text"), error.get("type")))

        name = f"mam-at-once-{ids[0]}"
        self.register_handler(Callback(f"{name}-results", MatchXPath("{jabber:client}message/{urn:xmpp:mam:2}result"),
                                       result))
        self.register_handler(Callback(f"{name}-answers", MatchXPath("{jabber:client}iq"), answered))
        try:
            for iq in iqs:
                iq["mam"]["queryid"] = iq["id"]
                self.send(iq)
            return [await asyncio.wait_for(answers[query_id], TIMEOUT) for query_id in ids]
        finally:
            self.remove_handler(f"{name}-results")
            self.remove_handler(f"{name}-answers")

    async def participant_jid(self, name, jid):
        """`<channel>/<stable participant id>` of the user `jid` in channel `name`, which is
        where the channel's copies of its messages come from (XEP-0369 §7.1.6)."""
        channel = self.channel(name)
        participants = await self.plugin["xep_0369"].list_participants(channel, timeout=TIMEOUT)
        (stable_id,) = [pid for pid, _, who in participants if str(who) == str(jid)]
        return slixmpp.JID(f"{channel}/{stable_id}")

    async def online_in(self, name):
        self.send_presence(pto=self.channel(name))
        # Presence has no reply; a ping round trip proves the channel has processed it.
        await self.plugin["xep_0199"].ping(self.channel(name), timeout=TIMEOUT)

    def post(self, name, body, origin_id=None):
        msg = self.make_message(mto=self.channel(name), mbody=body, mtype="groupchat")
        if origin_id:
            msg["origin_id"]["id"] = origin_id
        msg.send()
        return msg

    async def next_message(self, timeout=TIMEOUT):
        return await asyncio.wait_for(self.mix_messages.get(), timeout)

    async def next_event(self, node=None, timeout=TIMEOUT):
        """The next pubsub event, skipping those of other nodes when `node` is given."""
        while True:
            kind, msg = await asyncio.wait_for(self.events.get(), timeout)
            if node is None or _event_node(msg) == node:
                return kind, msg

    async def next_error(self, timeout=TIMEOUT):
        return await asyncio.wait_for(self.errors.get(), timeout)

    async def iq_error(self, coroutine):
        """Awaits a request that must fail; returns (condition, text)."""
        try:
            await coroutine
        except IqError as e:
            return e.iq["error"]["condition"], e.iq["error"]["text"]
        raise AssertionError("the request succeeded but should have failed")

    async def nothing_more(self, queue, wait=0.5):
        await asyncio.sleep(wait)
        assert queue.empty(), f"unexpected: {queue.get_nowait()}"


def _event_node(msg):
    event = msg.xml.find("{http://jabber.org/protocol/pubsub#event}event")
    child = event[0] if event is not None and len(event) else None
    return child.get("node") if child is not None else None


def error_of(stanza):
    """(condition, text, type) of an error stanza, read from the XML (slixmpp knows only RFC
    3920's conditions, not policy-violation)."""
    error = stanza.xml.find("{jabber:client}error")
    condition = text = None
    for child in error if error is not None else ():
        if child.tag == f"{{{STANZAS}}}text":
            text = child.text
        elif child.tag.startswith(f"{{{STANZAS}}}"):
            condition = child.tag.split("}")[1]
    return condition, text, None if error is None else error.get("type")


def form_values(element):
    """{var: [values]} of the data form inside `element`."""
    form = element.find(".//{jabber:x:data}x")
    return {f.get("var"): [v.text or "" for v in f.findall("{jabber:x:data}value")]
            for f in form.findall("{jabber:x:data}field")}
