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
use courier_spin::http::{reply, serve};
use courier_spin::route::{Route, resolve};
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

/// What a directory request asks for.
#[derive(Clone, Copy)]
enum Op {
    PutUser,
    PutGroup,
    ChangeMembers,
    PutRelation,
    DeleteRelation,
}

const ROUTES: &[Route<Op>] = &[
    Route::new(Method::Put, "/v1/users/{uid}", Op::PutUser),
    Route::new(Method::Put, "/v1/groups/{gid}", Op::PutGroup),
    Route::new(Method::Post, "/v1/groups/{gid}/members", Op::ChangeMembers),
    Route::new(Method::Put, "/v1/relations/{a}/{b}", Op::PutRelation),
    Route::new(Method::Delete, "/v1/relations/{a}/{b}", Op::DeleteRelation),
];

fn handle(req: &Request) -> Result<Response, Error> {
    // Resolved before authenticating, so unknown paths are 404 for everyone.
    let (op, at) = match resolve(ROUTES, req.method(), req.path()) {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    let body = req.body();
    let result = match op {
        Op::PutUser => service::put_user(&db, &config, &caller, at.get("uid"), body, now),
        Op::PutGroup => service::put_group(&db, &config, &caller, at.get("gid"), body, now),
        Op::ChangeMembers => {
            service::change_members(&db, &config, &caller, at.get("gid"), body, now)
        }
        Op::PutRelation => {
            service::put_relation(&db, &config, &caller, at.get("a"), at.get("b"), body)
        }
        Op::DeleteRelation => service::delete_relation(&db, &caller, at.get("a"), at.get("b")),
    }?;
    Ok(reply(result))
}
