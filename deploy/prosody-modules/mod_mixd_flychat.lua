-- mod_mixd_flychat: brings to mixd what the FlyChat SDK sends elsewhere than the group.
--
-- * History queries and message look-ups (status='reply_message') (<iq type='get'><query xmlns='jabber:iq:user_activities'/></iq>) go to
--   the user's own account: they are forwarded to mixd and its answer is returned as if from
--   the account, which is what the SDK expects.
-- * Receipts (<delivered/> or <seen/> in urn:xmpp:receipts, with a group_id) go to the
--   original sender's bare JID: they are redirected to the group, where mixd records them
--   and tells the sender once every member has the message.
-- * Typing (<composing/> or <gone/> with a group_id) comes from mixd, naming the typist in
--   <mix><jid>; the SDK reads who types from the message's `from`, which Prosody does not let
--   a component set to a user's JID (invalid-from). It is set here, on the way to the user.
--
-- Load it on the VirtualHost of the SDK's users, with
--   mixd_component = "mix.example.org"   -- mixd's component JID (default: "mix." .. host)

local st = require "util.stanza";

local component = module:get_option_string("mixd_component", "mix." .. module.host);

module:hook("iq-get/self/jabber:iq:user_activities:query", function(event)
	local origin, stanza = event.origin, event.stanza;
	local forwarded = st.clone(stanza);
	forwarded.attr.to = component;
	module:send_iq(forwarded, nil, 30):next(function(response)
		local reply = st.clone(response.stanza);
		reply.attr.from = stanza.attr.to;
		reply.attr.to = stanza.attr.from;
		origin.send(reply);
	end, function(failure)
		-- An error reply from mixd comes as a util.error whose context holds the stanza.
		local answer = failure and failure.context and failure.context.stanza;
		if answer then
			local reply = st.clone(answer);
			reply.attr.from = stanza.attr.to;
			reply.attr.to = stanza.attr.from;
			origin.send(reply);
		else
			origin.send(st.error_reply(stanza, "wait", "remote-server-timeout", "the group service did not answer"));
		end
	end);
	return true;
end);

local function receipt_of(stanza)
	for _, name in ipairs({ "delivered", "seen" }) do
		local receipt = stanza:get_child(name, "urn:xmpp:receipts");
		if receipt and receipt.attr.group_id and receipt.attr.group_id ~= "" then
			return receipt;
		end
	end
end

module:hook("message/bare", function(event)
	-- Only what users send: mixd's own aggregated receipts to the sender pass untouched.
	if event.origin.type ~= "c2s" then return; end
	local receipt = receipt_of(event.stanza);
	if not receipt then return; end
	local redirected = st.clone(event.stanza);
	redirected.attr.to = receipt.attr.group_id .. "@" .. component;
	module:send(redirected);
	return true;
end, 10);

local CHATSTATES = "http://jabber.org/protocol/chatstates";
local MIX_CORE = "urn:xmpp:mix:core:1";

local function typist_of(stanza)
	for _, name in ipairs({ "composing", "gone" }) do
		local state = stanza:get_child(name, CHATSTATES);
		if state and state.attr.group_id then
			local mix = stanza:get_child("mix", MIX_CORE);
			return mix and mix:get_child_text("jid");
		end
	end
end

module:hook("message/bare", function(event)
	local origin, stanza = event.origin, event.stanza;
	-- Only from mixd itself: nobody else may make a message look like a user's.
	if origin.type ~= "component" or origin.host ~= component then return; end
	local typist = typist_of(stanza);
	if typist and typist ~= "" then
		stanza.attr.from = typist;
	end
end, 20);
