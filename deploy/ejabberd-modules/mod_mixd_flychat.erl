%% mod_mixd_flychat: brings to mixd what the FlyChat SDK sends elsewhere than the group; the
%% ejabberd counterpart of deploy/prosody-modules/mod_mixd_flychat.lua.
%%
%% * History queries and message look-ups (status='reply_message') (<iq type='get'><query xmlns='jabber:iq:user_activities'/></iq>) go to
%%   the user's own account: they are sent on to mixd, and its answer comes back as if from
%%   the account, which is what the SDK expects.
%% * Receipts (<delivered/> or <seen/> in urn:xmpp:receipts, with a group_id) go to the
%%   original sender's bare JID: they are redirected to the group, where mixd records them
%%   and tells the sender once every member has the message.
%% * Typing (<composing/> or <gone/> with a group_id) comes from mixd, naming the typist in
%%   <mix><jid>; the SDK reads who types from the message's `from`, which is set here to the
%%   typist, on the way to the user.
%%
%% Build: erlc -I <ejabberd>/include -I <p1_xmpp>/include -pa <ejabberd>/ebin mod_mixd_flychat.erl
%% Load: put the .beam on ejabberd's code path (ERL_OPTIONS="-pa DIR" in ejabberdctl.cfg) and
%%   modules:
%%     mod_mixd_flychat: {component: "mix.example.org"}

-module(mod_mixd_flychat).
-behaviour(gen_mod).

-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0,
         user_send_packet/1, user_receive_packet/1]).

-include("xmpp.hrl").

-define(HISTORY_NS, <<"jabber:iq:user_activities">>).
-define(RECEIPTS_NS, <<"urn:xmpp:receipts">>).
-define(CHATSTATES_NS, <<"http://jabber.org/protocol/chatstates">>).
-define(MIX_CORE_NS, <<"urn:xmpp:mix:core:1">>).
%% The history queries sent on, by requester and id, to return their answers as the account's.
-define(FORWARDED, mod_mixd_flychat_forwarded).

start(Host, _Opts) ->
    catch ets:new(?FORWARDED, [named_table, public, set]),
    ejabberd_hooks:add(user_send_packet, Host, ?MODULE, user_send_packet, 40),
    ejabberd_hooks:add(user_receive_packet, Host, ?MODULE, user_receive_packet, 40),
    ok.

stop(Host) ->
    ejabberd_hooks:delete(user_send_packet, Host, ?MODULE, user_send_packet, 40),
    ejabberd_hooks:delete(user_receive_packet, Host, ?MODULE, user_receive_packet, 40),
    ok.

reload(_Host, _NewOpts, _OldOpts) -> ok.

depends(_Host, _Opts) -> [].

mod_opt_type(component) -> econf:binary().

mod_options(Host) -> [{component, <<"mix.", Host/binary>>}].

mod_doc() -> #{desc => <<"Brings the FlyChat SDK's history queries and receipts to mixd.">>}.

component(Host) -> gen_mod:get_module_opt(Host, ?MODULE, component).

user_send_packet({#iq{type = get, from = From, to = To, id = Id, sub_els = [Query]} = IQ, State} = Acc) ->
    ToSelf = To == undefined orelse jid:tolower(To) == jid:tolower(jid:remove_resource(From)),
    case ToSelf andalso xmlns(Query) == ?HISTORY_NS of
        true ->
            ets:insert(?FORWARDED, {{jid:tolower(From), Id}, true}),
            {IQ#iq{to = jid:make(component(From#jid.lserver))}, State};
        false ->
            Acc
    end;
user_send_packet({#message{from = From, sub_els = Els} = Msg, State} = Acc) ->
    case group_of(Els) of
        undefined -> Acc;
        Group -> {Msg#message{to = jid:make(Group, component(From#jid.lserver), <<>>)}, State}
    end;
user_send_packet(Acc) ->
    Acc.

user_receive_packet({#iq{type = Type, id = Id, to = To} = IQ, State} = Acc)
  when Type == result; Type == error ->
    case ets:take(?FORWARDED, {jid:tolower(To), Id}) of
        [_] -> {IQ#iq{from = jid:remove_resource(To)}, State};
        [] -> Acc
    end;
user_receive_packet({#message{from = #jid{lserver = Server}, to = To, sub_els = Els} = Msg, State} = Acc) ->
    %% Only from mixd itself: nobody else may make a message look like a user's.
    case Server == component(To#jid.lserver) andalso typist_of(Els) of
        Typist when is_binary(Typist), Typist /= <<>> ->
            try jid:decode(Typist) of
                From -> {Msg#message{from = From}, State}
            catch _:_ -> Acc
            end;
        _ -> Acc
    end;
user_receive_packet(Acc) ->
    Acc.

%% The typist <mix><jid> names, if the message is typing in a group.
typist_of(Els) ->
    Typing = [El || #xmlel{name = Name, attrs = Attrs} = El <- Els,
                    Name == <<"composing">> orelse Name == <<"gone">>,
                    fxml:get_attr_s(<<"xmlns">>, Attrs) == ?CHATSTATES_NS,
                    fxml:get_attr_s(<<"group_id">>, Attrs) /= <<>>],
    Mix = [El || #xmlel{name = <<"mix">>, attrs = Attrs} = El <- Els,
                 fxml:get_attr_s(<<"xmlns">>, Attrs) == ?MIX_CORE_NS],
    case {Typing, Mix} of
        {[_ | _], [MixEl | _]} -> fxml:get_path_s(MixEl, [{elem, <<"jid">>}, cdata]);
        _ -> undefined
    end.

xmlns(#xmlel{attrs = Attrs}) -> fxml:get_attr_s(<<"xmlns">>, Attrs);
xmlns(_) -> <<>>.

%% The group a <delivered/> or <seen/> receipt names, if the message carries one.
group_of([#xmlel{name = Name, attrs = Attrs} | Rest]) when Name == <<"delivered">>; Name == <<"seen">> ->
    case {fxml:get_attr_s(<<"xmlns">>, Attrs), fxml:get_attr_s(<<"group_id">>, Attrs)} of
        {?RECEIPTS_NS, Group} when Group /= <<>> -> Group;
        _ -> group_of(Rest)
    end;
group_of([_ | Rest]) -> group_of(Rest);
group_of([]) -> undefined.
