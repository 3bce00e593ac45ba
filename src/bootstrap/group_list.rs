//! `GET /group/groupList`: the caller's groups, from mixd's directory, the only source of the
//! SDK's `getGroupsList()`. Each as the SDK maps it: its id (the group JID's local part),
//! name, pictures, creation date, the caller's affiliation (`o` owner or admin, `n` member)
//! and whether history is shown to new members.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jid::BareJid;
use serde_json::{json, Value};

use super::{failure, success, State as Shared};
use crate::core::Groups;
use crate::flychat::render::affiliation;

pub async fn group_list(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let user = match state.caller(&headers) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let mix_domain = state.mix_domain.clone();
    match state
        .ask(move |groups| list(groups, &user, &mix_domain))
        .await
    {
        // The SDK reads the list from `data.groupsList` (measured in Chromium: a bare array
        // in `data` reaches the app as no groups at all).
        Some(list) => success(json!({ "groupsList": list })),
        None => failure(StatusCode::SERVICE_UNAVAILABLE, "mixd is shutting down"),
    }
}

/// The groups `user` takes part in, by name.
fn list(groups: &Groups, user: &BareJid, mix_domain: &str) -> Value {
    let mut mine: Vec<_> = groups
        .groups_of(user)
        .filter(|c| c.participant(user).is_some())
        .collect();
    mine.sort_by(|a, b| a.info.name.cmp(&b.info.name).then(a.key.cmp(&b.key)));
    mine.iter()
        .map(|channel| {
            json!({
                "groupId": channel.name,
                "groupJid": format!("{}@{mix_domain}", channel.name),
                "groupName": channel.info.name,
                "groupProfileImage": channel.info.avatar,
                "thumbImage": channel.info.thumbnail,
                "groupCreateDate": crate::core::iso_time(channel.created_at),
                // Compared with the string "1" by the SDK.
                "isAdminBlocked": "0",
                "affiliation": affiliation(channel.role_of(user)),
                "role": channel.role_of(user).name(),
                "itemId": channel.info.updated_at.to_string(),
                "historyEnabled": u8::from(channel.info.history_visible),
            })
        })
        .collect()
}
