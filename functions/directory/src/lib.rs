//! The `directory` component: users, groups, members and relations (admin token).
//!
//! # Layout
//! One handler, [`directory`], that routes by method and path to the services in
//! `courier_messaging::directory`.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_messaging::directory as service;
use courier_spin::env::{Ctx, context};
use courier_spin::http::{decoded, method_not_allowed, no_route, reply, segments, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `PUT /v1/users/{uid}`
/// Creates or updates a user (`{"name", "org"}`) → 200 `{"uid"}`; idempotent.
///
/// # `PUT /v1/groups/{gid}`
/// Creates or replaces a group (`{"name", "owner", "members"}`) → 200
/// `{"gid", "version", "members"}`; every member must exist (404), at most
/// `max_group_members`; members get a `control` entry (not in groups over
/// `control_fanout_max_members`).
///
/// # `POST /v1/groups/{gid}/members`
/// `{"add", "remove"}` → 200 `{"version", "members"}`; unknown group or user → 404.
///
/// # `PUT /v1/relations/{a}/{b}` and `DELETE /v1/relations/{a}/{b}`
/// A symmetric `friend` relation → 200; `DELETE` → 204.
///
/// All routes: no/invalid token → 401; not an admin → 403; wrong method → 405.
#[http_component]
fn directory(req: Request) -> Response {
    serve(req, handle)
}

fn handle(req: &Request) -> Result<Response, Error> {
    let path = req.path();
    let method = req.method().clone();
    let route = if let Some(rest) = segments(path, "/v1/users") {
        Route::User(rest)
    } else if let Some(rest) = segments(path, "/v1/groups") {
        Route::Group(rest)
    } else if let Some(rest) = segments(path, "/v1/relations") {
        Route::Relation(rest)
    } else {
        return Err(no_route(path));
    };
    // Resolve the route before authenticating, so unknown paths are 404 for everyone.
    let allowed: &[Method] = match &route {
        Route::User(rest) if rest.len() == 1 => &[Method::Put],
        Route::Group(rest) if rest.len() == 1 => &[Method::Put],
        Route::Group(rest) if rest.len() == 2 && rest[1] == "members" => &[Method::Post],
        Route::Relation(rest) if rest.len() == 2 => &[Method::Put, Method::Delete],
        _ => return Err(no_route(path)),
    };
    if !allowed.contains(&method) {
        return Ok(method_not_allowed(allowed));
    }
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    let body = req.body();
    let result = match (route, method) {
        (Route::User(rest), _) => {
            service::put_user(&db, &config, &caller, &decoded(rest[0]), body, now)
        }
        (Route::Group(rest), _) if rest.len() == 1 => {
            service::put_group(&db, &config, &caller, &decoded(rest[0]), body, now)
        }
        (Route::Group(rest), _) => {
            service::change_members(&db, &config, &caller, &decoded(rest[0]), body, now)
        }
        (Route::Relation(rest), Method::Delete) => {
            service::delete_relation(&db, &caller, &decoded(rest[0]), &decoded(rest[1]))
        }
        (Route::Relation(rest), _) => service::put_relation(
            &db,
            &config,
            &caller,
            &decoded(rest[0]),
            &decoded(rest[1]),
            body,
        ),
    }?;
    Ok(reply(result))
}

enum Route<'a> {
    User(Vec<&'a str>),
    Group(Vec<&'a str>),
    Relation(Vec<&'a str>),
}
