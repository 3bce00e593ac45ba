%% mod_mixd_pam: what ejabberd 23.01's mod_mix_pam (XEP-0405, MIX-PAM) lacks when the MIX
%% service is an external component such as mixd. Load it beside mod_mix_pam, which keeps
%% doing the rest (client-join, the roster, disco).
%%
%% * Delivery. mod_mix_pam only delivers the groupchat messages of ejabberd's own mod_mix;
%%   one from the component to a user's bare JID is bounced ("User session not found"). This
%%   module takes them on the bounce_sm_packet hook (before mod_mix_pam and ejabberd_sm):
%%   each is archived in the user's MAM archive (with mod_mam, when it is worth keeping: a
%%   body, a retraction, reactions, a receipt or marker, unless a no-store hint says
%%   otherwise), and its delivered copies carry the archive's <stanza-id by='user'/>; then it
%%   goes to every online resource of the user (each with available presence, whatever its
%%   priority, as XEP-0405 §5.2 says), or, when none is, to offline storage through
%%   offline_message_hook (mod_offline needs store_groupchat: true to keep it). A message
%%   neither delivered nor kept is dropped, never bounced back to the channel.
%% * Leaving. mod_mix_pam waits for the channel's answer to a <leave/> but matches it only
%%   decoded, and the answer of an external component reaches it undecoded, so the client's
%%   <client-leave/> is never answered. On filter_packet (before the answer is dispatched to
%%   the waiting request) this module decodes the <leave/> of such an answer.
%% * Answers. mod_mix_pam wraps the channel's answer in <client-join/> or <client-leave/> of
%%   the channel's namespace (urn:xmpp:mix:core:1) instead of urn:xmpp:mix:pam:2, which
%%   clients do not recognise; on its way to the client the wrapper gets the PAM namespace.
%%
%% Build: erlc -I <ejabberd>/include -I <p1_xmpp>/include -pa <ejabberd>/ebin mod_mixd_pam.erl
%% Load: put the .beam on ejabberd's code path (ERL_OPTIONS="-pa DIR" in ejabberdctl.cfg) and
%%   modules:
%%     mod_mix_pam: {}
%%     mod_mixd_pam: {component: "mix.example.org"}
%%     mod_offline: {store_groupchat: true}
%%     mod_mam: {}

-module(mod_mixd_pam).
-behaviour(gen_mod).

-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0,
         bounce_sm_packet/1, filter_packet/1]).

-include("xmpp.hrl").
-include("logger.hrl").

-define(NS_MIX_CORE, <<"urn:xmpp:mix:core:1">>).
-define(NS_MIX_PAM, <<"urn:xmpp:mix:pam:2">>).
%% The meta key marking a message this module has handled: if offline storage refuses it,
%% ejabberd bounces it again through bounce_sm_packet, where it is then dropped.
-define(HANDLED, mixd_pam).

start(Host, _Opts) ->
    ejabberd_hooks:add(bounce_sm_packet, Host, ?MODULE, bounce_sm_packet, 40),
    %% filter_packet is global: it checks that the answer is for a host that loads this module.
    ejabberd_hooks:add(filter_packet, ?MODULE, filter_packet, 40),
    ok.

stop(Host) ->
    ejabberd_hooks:delete(bounce_sm_packet, Host, ?MODULE, bounce_sm_packet, 40),
    ejabberd_hooks:delete(filter_packet, ?MODULE, filter_packet, 40),
    ok.

reload(_Host, _NewOpts, _OldOpts) -> ok.

depends(_Host, _Opts) -> [{mod_mix_pam, hard}].

mod_opt_type(component) -> econf:binary().

mod_options(Host) -> [{component, <<"mix.", Host/binary>>}].

mod_doc() ->
    #{desc => <<"Delivers an external MIX component's groupchat to bare JIDs (resources, "
                "offline storage, MAM) and lets mod_mix_pam answer client-leave.">>}.

component(Host) -> gen_mod:get_module_opt(Host, ?MODULE, component).

%% The component's groupchat to a user's bare JID.
bounce_sm_packet({bounce, #message{type = groupchat, from = #jid{lserver = FromHost},
                                   to = #jid{luser = LUser, lserver = LServer,
                                             lresource = <<>>} = To} = Msg} = Acc)
  when LUser /= <<>> ->
    case FromHost == component(LServer) of
        false ->
            Acc;
        true ->
            case xmpp:get_meta(Msg, ?HANDLED, false) of
                true ->
                    ?DEBUG("Dropping a MIX message no resource or store took: ~ts",
                           [xmpp:pp(Msg)]),
                    {stop, {pass, Msg}};
                false ->
                    case ejabberd_auth:user_exists(LUser, LServer) of
                        true ->
                            deliver(xmpp:put_meta(Msg, ?HANDLED, true), LUser, LServer, To),
                            {stop, {pass, Msg}};
                        false ->
                            Acc
                    end
            end
    end;
bounce_sm_packet(Acc) ->
    Acc.

%% A message mod_offline brings back at login comes this way again (it routes it to the bare
%% JID): it was archived when it first came, so it only goes to the resources.
deliver(Msg0, LUser, LServer, To) ->
    Again = xmpp:get_meta(Msg0, from_offline, false),
    Msg = case Again of
              true -> Msg0;
              false -> archive(Msg0, LUser, LServer, To)
          end,
    case ejabberd_sm:get_user_present_resources(LUser, LServer) of
        [] ->
            case worth_keeping(Msg) andalso not Again of
                true ->
                    ejabberd_hooks:run_fold(offline_message_hook, LServer, {bounce, Msg}, []);
                false ->
                    ok
            end;
        Resources ->
            lists:foreach(
              fun({_Priority, Resource}) ->
                      ejabberd_router:route(xmpp:set_to(Msg, jid:replace_resource(To, Resource)))
              end, Resources)
    end.

%% Into the user's MAM archive, with the channel as the peer; returns the message as its
%% resources get it, carrying the archive id.
archive(Msg, LUser, LServer, To) ->
    case gen_mod:is_loaded(LServer, mod_mam) andalso worth_keeping(Msg) of
        false ->
            Msg;
        true ->
            Msg1 = case xmpp:get_meta(Msg, stanza_id, undefined) of
                       undefined -> xmpp:put_meta(Msg, stanza_id, mod_mam:make_id());
                       _ -> Msg
                   end,
            Id = xmpp:get_meta(Msg1, stanza_id),
            Channel = jid:remove_resource(xmpp:get_from(Msg1)),
            ejabberd_hooks:run_fold(store_mam_message, LServer, Msg1,
                                    [LUser, LServer, Channel, <<"">>, chat, recv]),
            xmpp:append_subtags(
              Msg1, [#stanza_id{by = jid:remove_resource(To), id = integer_to_binary(Id)}])
    end.

%% What is worth keeping, as mod_mam judges a chat message.
worth_keeping(#message{body = Body, sub_els = Els}) ->
    Children = [{fxml:get_tag_attr_s(<<"xmlns">>, El), Name} || #xmlel{name = Name} = El <- Els],
    Hint = fun(Name) -> lists:member({<<"urn:xmpp:hints">>, Name}, Children) end,
    Kept = [<<"urn:xmpp:message-retract:1">>, <<"urn:xmpp:reactions:0">>,
            <<"urn:xmpp:receipts">>, <<"urn:xmpp:chat-markers:0">>],
    Worth = Body /= [] orelse Hint(<<"store">>)
        orelse lists:any(fun({NS, _}) -> lists:member(NS, Kept) end, Children),
    Worth andalso not (Hint(<<"no-store">>) orelse Hint(<<"no-permanent-store">>)).

%% The component's answer to a <leave/> sent for a user: its <leave/> decoded, as
%% mod_mix_pam's waiting request expects it.
filter_packet(#iq{type = result, from = #jid{lserver = FromHost},
                  to = #jid{lserver = LServer, lresource = <<>>},
                  sub_els = [#xmlel{name = <<"leave">>} = El]} = IQ) ->
    case fxml:get_tag_attr_s(<<"xmlns">>, El) == ?NS_MIX_CORE
        andalso gen_mod:is_loaded(LServer, ?MODULE)
        andalso FromHost == component(LServer) of
        true ->
            try IQ#iq{sub_els = [xmpp:decode(El)]}
            catch _:_ -> IQ
            end;
        false ->
            IQ
    end;
%% mod_mix_pam's answer to the client: wrapped in the PAM namespace (core:0 → pam:0).
filter_packet(#iq{type = result, to = #jid{lserver = LServer, lresource = R},
                  sub_els = [Wrapper]} = IQ)
  when R /= <<>>, (is_record(Wrapper, mix_client_join) orelse
                   is_record(Wrapper, mix_client_leave)) ->
    case gen_mod:is_loaded(LServer, ?MODULE) of
        true -> IQ#iq{sub_els = [pam_namespace(Wrapper)]};
        false -> IQ
    end;
filter_packet(Pkt) ->
    Pkt.

pam_namespace(#mix_client_join{xmlns = NS} = Join) -> Join#mix_client_join{xmlns = pam_ns(NS)};
pam_namespace(#mix_client_leave{xmlns = NS} = Leave) -> Leave#mix_client_leave{xmlns = pam_ns(NS)}.

pam_ns(<<"urn:xmpp:mix:core:0">>) -> <<"urn:xmpp:mix:pam:0">>;
pam_ns(?NS_MIX_CORE) -> ?NS_MIX_PAM;
pam_ns(NS) -> NS.
