-- mod_mix_pam: MIX through the user's own server (XEP-0405, MIX-PAM) for Prosody 0.12, which
-- has none. Load it on the VirtualHost of the users (docs/operations.md).
--
-- * The account advertises urn:xmpp:mix:pam:2 (and urn:xmpp:mix:pam:2#archive with mod_mam).
-- * <client-join/> and <client-leave/> to the account are sent on to the channel as
--   <join/> and <leave/> from the user's bare JID (XEP-0405 §6.1, §6.2) with the client's
--   id; the channel's answer goes back to the client wrapped in <client-join/> or
--   <client-leave/>, from the account. An error goes back as the channel gave it.
-- * After a join the channel is in the user's roster (subscription 'none': the user's
--   presence is not shared with the channel) and it is remembered with the participant id
--   the channel gave; a leave takes both away. A roster get with
--   <annotate xmlns='urn:xmpp:mix:roster:0'/> marks the channels (XEP-0405 §6.4).
-- * A groupchat message to the user's bare JID from a channel the user joined this way is
--   archived in the user's MAM archive (when mod_mam is loaded and the message is worth
--   keeping, as mod_mam judges chat messages: a body, a retraction, a reaction, a receipt or
--   marker, unless a no-store hint says otherwise), then sent to every online resource (each
--   with available presence, whatever its priority or status), and kept in offline storage
--   (mod_offline) when none is online.
--
-- "Every online resource" rather than "every resource that uses MIX": XEP-0405 §5.1 wants
-- only MIX-capable clients, found through entity capabilities, which Prosody 0.12 does not
-- track; withholding messages from a client that did not announce MIX would lose them for
-- it, while a client that does not know MIX sees a groupchat message from a JID it knows from
-- the roster. The user's MAM archive holds every message either way.

local st = require "util.stanza";
local jid_util = require "util.jid";
local rostermanager = require "core.rostermanager";

local jid_bare, jid_split, jid_prep = jid_util.bare, jid_util.split, jid_util.prep;

local NS_PAM = "urn:xmpp:mix:pam:2";
local NS_MIX = "urn:xmpp:mix:core:1";
local NS_ROSTER_MIX = "urn:xmpp:mix:roster:0";

local host = module.host;
local bare_sessions = prosody.bare_sessions;

-- The channels each user joined through this module: { [channel JID] = participant id },
-- stored per user and cached, since every message from a channel asks.
local store = module:open_store("mix_pam");
local cache = {};

local function channels_of(username)
	local channels = cache[username];
	if not channels then
		channels = store:get(username) or {};
		cache[username] = channels;
	end
	return channels;
end

local function remember(username, channel, participant_id)
	local channels = channels_of(username);
	channels[channel] = participant_id;
	store:set(username, next(channels) and channels or nil);
end

local function archiving()
	local this_host = prosody.hosts[host];
	return this_host and this_host.modules and this_host.modules.mam ~= nil;
end

module:hook("account-disco-info", function(event)
	local reply = event.reply or event.stanza;
	reply:tag("feature", { var = NS_PAM }):up();
	if archiving() then
		reply:tag("feature", { var = NS_PAM .. "#archive" }):up();
	end
end);

-- The answer of the channel to a request sent on for `stanza`, as the client expects it:
-- from the account, to the client, with the client's id.
local function answer_to(stanza, answer)
	local reply = st.clone(answer);
	reply.attr.from = jid_bare(stanza.attr.from);
	reply.attr.to = stanza.attr.from;
	reply.attr.id = stanza.attr.id;
	return reply;
end

-- Sends `request` (<join/> or <leave/>) to `channel` from the user's bare JID; calls
-- `done(result)` with the channel's result, or answers the client with the error.
local function send_on(event, channel, request, done)
	local origin, stanza = event.origin, event.stanza;
	local iq = st.iq({ type = "set", from = jid_bare(stanza.attr.from), to = channel, id = stanza.attr.id })
		:add_child(st.clone(request));
	module:send_iq(iq, nil, 30):next(function(response)
		done(response.stanza);
	end, function(failure)
		local answer = failure and failure.context and failure.context.stanza;
		if answer then
			origin.send(answer_to(stanza, answer));
		else
			origin.send(st.error_reply(stanza, "wait", "remote-server-timeout", "the channel did not answer"));
		end
	end);
end

local function roster_push(username, channel)
	rostermanager.roster_push(username, host, channel);
end

module:hook("iq-set/self/" .. NS_PAM .. ":client-join", function(event)
	local origin, stanza = event.origin, event.stanza;
	local client_join = stanza.tags[1];
	local channel = jid_prep(client_join.attr.channel);
	local join = client_join:get_child("join", NS_MIX);
	if not channel or not join or jid_split(channel) == nil then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "a client-join needs a channel and a <join/>"));
		return true;
	end
	local username = origin.username;
	send_on(event, channel, join, function(result)
		local answer = result:get_child("join", NS_MIX);
		remember(username, channel, answer and answer.attr.id or "");
		local roster = rostermanager.load_roster(username, host);
		if roster and not roster[channel] then
			roster[channel] = { subscription = "none", groups = {} };
			if rostermanager.save_roster(username, host, roster, channel) then
				roster_push(username, channel);
			end
		end
		local reply = st.reply(stanza):tag("client-join", { xmlns = NS_PAM });
		if answer then reply:add_child(st.clone(answer)); end
		origin.send(reply);
	end);
	return true;
end);

module:hook("iq-set/self/" .. NS_PAM .. ":client-leave", function(event)
	local origin, stanza = event.origin, event.stanza;
	local client_leave = stanza.tags[1];
	local channel = jid_prep(client_leave.attr.channel);
	local leave = client_leave:get_child("leave", NS_MIX) or st.stanza("leave", { xmlns = NS_MIX });
	if not channel then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "a client-leave needs a channel"));
		return true;
	end
	local username = origin.username;
	send_on(event, channel, leave, function(result)
		remember(username, channel, nil);
		local roster = rostermanager.load_roster(username, host);
		if roster and roster[channel] then
			roster[channel] = nil;
			if rostermanager.save_roster(username, host, roster, channel) then
				roster_push(username, channel);
			end
		end
		local reply = st.reply(stanza):tag("client-leave", { xmlns = NS_PAM });
		reply:add_child(st.clone(result:get_child("leave", NS_MIX) or leave));
		origin.send(reply);
	end);
	return true;
end);

-- XEP-0405 §6.4: a roster get asking for annotations marks each channel joined through this
-- module with its participant id. mod_roster answers it (on the same event, after this
-- handler); its result is annotated on the way out.
module:hook("iq/self/jabber:iq:roster:query", function(event)
	local origin, stanza = event.origin, event.stanza;
	if stanza.attr.type ~= "get" or not stanza.tags[1]:get_child("annotate", NS_ROSTER_MIX) then return; end
	local channels = channels_of(origin.username);
	local send = origin.send;
	event.origin = setmetatable({
		send = function(reply)
			if reply.attr.id == stanza.attr.id and reply.attr.type == "result" then
				local query = reply:get_child("query", "jabber:iq:roster");
				for item in (query and query:childtags("item") or function() end) do
					local id = channels[item.attr.jid];
					if id then
						item:tag("channel", { xmlns = NS_ROSTER_MIX, ["participant-id"] = id }):up();
					end
				end
			end
			return send(reply);
		end;
	}, { __index = origin, __newindex = origin });
end, 10);

-- Whether `stanza` (groupchat to `username`'s bare JID) comes from a channel the user joined
-- through this module.
local function from_joined_channel(username, stanza)
	if stanza.attr.type ~= "groupchat" or not username then return false; end
	local from = jid_bare(stanza.attr.from);
	return from ~= nil and channels_of(username)[from] ~= nil;
end

-- Worth keeping (archive, offline storage), as mod_mam judges a chat message.
local function worth_keeping(stanza)
	if stanza:get_child("no-store", "urn:xmpp:hints")
	or stanza:get_child("no-permanent-store", "urn:xmpp:hints") then
		return false;
	end
	return stanza:get_child("body") ~= nil
		or stanza:get_child("store", "urn:xmpp:hints") ~= nil
		or stanza:get_child("retract", "urn:xmpp:message-retract:1") ~= nil
		or stanza:get_child("reactions", "urn:xmpp:reactions:0") ~= nil
		or stanza:get_child(nil, "urn:xmpp:receipts") ~= nil
		or stanza:get_child(nil, "urn:xmpp:chat-markers:0") ~= nil;
end

-- mod_mam keeps no groupchat (it expects MUC to archive it); MIX-PAM wants the channel's
-- messages in the user's archive. mod_mam asks this before archiving a message to a bare JID.
module:hook("archive-should-store", function(event)
	local stanza = event.stanza;
	local to = stanza.attr.to;
	if to and not select(3, jid_split(to)) and from_joined_channel((jid_split(to)), stanza) then
		event.reason = "mix";
		return worth_keeping(stanza);
	end
end, 10);

-- mod_message refuses groupchat to a bare JID unless a module takes it: this is that module.
module:hook("message/bare/groupchat", function(event)
	local stanza = event.stanza;
	local username = jid_split(stanza.attr.to);
	if not from_joined_channel(username, stanza) then return; end
	local user = bare_sessions[jid_bare(stanza.attr.to)];
	local sent = false;
	if user then
		for _, session in pairs(user.sessions) do
			if session.presence and session.full_jid then
				local copy = st.clone(stanza);
				copy.attr.to = session.full_jid;
				session.send(copy);
				sent = true;
			end
		end
	end
	if not sent and worth_keeping(stanza) then
		module:fire_event("message/offline/handle", {
			username = username,
			origin = event.origin,
			stanza = stanza,
		});
	end
	return true;
end);
