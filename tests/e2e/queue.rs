//! The durable queue end to end: a 10,000-member fan-out survives a SIGKILL of the
//! gateway, and read receipts and recall flow through the worker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{JWT_SECRET, admin_token, user_token};
use courier_store::sql::Sql;

use crate::harness::{Gateway, call};

const MEMBERS: usize = 10_000;

fn env(chunk: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET.to_string()),
        (
            "SPIN_VARIABLE_INTERNAL_SECRET",
            "e2e-internal-secret-0123456789".to_string(),
        ),
        ("SPIN_VARIABLE_FANOUT_CHUNK", chunk.to_string()),
    ]
}

fn request(gw: &Gateway, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    request_at(&gw.base, method, path, token, body)
}

fn request_at(base: &str, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let bytes = body.to_string();
    let reply = call(
        method,
        &format!("{base}{path}"),
        &[("authorization", &auth)],
        (!body.is_null()).then_some(bytes.as_bytes()),
    );
    let json = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    (reply.status, json)
}

fn uid(i: usize) -> String {
    format!("m{i:05}")
}

fn holders(db: &dyn Sql, msg_id: &str) -> i64 {
    db.query_i64(
        "SELECT count(*) FROM entries WHERE msg_id = ? AND kind = 'message'",
        &[msg_id.into()],
    )
    .unwrap()
    .unwrap()
}

#[test]
fn ten_thousand_member_fan_out_survives_sigkill_and_completes_exactly_once() {
    let data = tempfile::tempdir().unwrap();
    let vars = env("10");
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start_in("spin.toml", data, &vars, &[]);
    let admin = admin_token();
    let uids: Vec<String> = (0..MEMBERS).map(uid).collect();
    std::thread::scope(|scope| {
        for part in uids.chunks(MEMBERS / 8) {
            let base = gw.base.as_str();
            let admin = &admin;
            scope.spawn(move || {
                for u in part {
                    let (status, _) = request_at(
                        base,
                        "PUT",
                        &format!("/v1/users/{u}"),
                        admin,
                        &json!({ "name": u, "org": "big" }),
                    );
                    assert_eq!(status, 200);
                }
            });
        }
    });
    let (status, group) = request(
        &gw,
        "PUT",
        "/v1/groups/huge",
        &admin,
        &json!({ "name": "Huge", "owner": uid(0), "members": uids }),
    );
    assert_eq!(
        (status, group["members"].as_i64()),
        (200, Some(MEMBERS as i64)),
        "{group}"
    );
    let (status, sent) = request(
        &gw,
        "POST",
        "/v1/messages",
        &user_token(&uid(0)),
        &json!({ "client_msg_id": "to-all", "to": { "group": "huge" }, "content": { "type": "text", "text": "hello" } }),
    );
    assert_eq!(
        (status, sent["status"].as_str()),
        (201, Some("accepted")),
        "{sent}"
    );
    let msg_id = sent["msg_id"].as_str().unwrap().to_string();

    // Kill the gateway while the fan-out is part-way through.
    let db = gw.db();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut gw = gw;
    loop {
        let n = holders(&*db, &msg_id);
        if n > 200 {
            gw.sigkill();
            break;
        }
        assert!(Instant::now() < deadline, "the fan-out did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
    let at_kill = holders(&*db, &msg_id);
    assert!(
        at_kill < MEMBERS as i64,
        "killed mid-way ({at_kill} of {MEMBERS} streams)"
    );

    // Restart on the same data: the job's lease expires and the worker resumes.
    let data = gw.take_data();
    drop(gw);
    let gw = Gateway::start_in("spin.toml", data, &vars, &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while holders(&*db, &msg_id) < MEMBERS as i64 {
        assert!(
            Instant::now() < deadline,
            "fan-out did not complete after restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every member exactly once; every stream dense.
    let per_user: BTreeMap<String, (i64, i64, i64, i64)> = db
        .query(
            "SELECT uid, count(*), min(seq), max(seq),
                    sum(CASE WHEN msg_id = ? AND kind = 'message' THEN 1 ELSE 0 END)
             FROM entries GROUP BY uid",
            &[msg_id.as_str().into()],
        )
        .unwrap()
        .into_iter()
        .map(|r| {
            let n = |i: usize| r[i].as_i64().unwrap();
            (r[0].as_str().unwrap().to_string(), (n(1), n(2), n(3), n(4)))
        })
        .collect();
    for u in &uids {
        let (count, min, max, copies) = per_user[u];
        assert_eq!(copies, 1, "{u} holds the message exactly once");
        assert_eq!((min, max), (1, count), "{u}: dense seqs");
    }
    // And the API agrees, for a sample.
    for u in [uid(1), uid(4_999), uid(MEMBERS - 1)] {
        let (status, page) = request(
            &gw,
            "GET",
            "/v1/sync?after=0",
            &user_token(&u),
            &Value::Null,
        );
        assert_eq!(status, 200);
        let ids: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["msg_id"].as_str())
            .collect();
        assert_eq!(ids, [msg_id.as_str()], "{u}");
    }
}

#[test]
fn receipts_and_recall_flow_through_the_worker() {
    let data = tempfile::tempdir().unwrap();
    let vars = env("2000");
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start_in("spin.toml", data, &vars, &[]);
    let admin = admin_token();
    for u in ["ra", "rb", "rc"] {
        request(
            &gw,
            "PUT",
            &format!("/v1/users/{u}"),
            &admin,
            &json!({ "name": u, "org": "r" }),
        );
    }
    request(
        &gw,
        "PUT",
        "/v1/groups/rg",
        &admin,
        &json!({ "name": "R", "owner": "ra", "members": ["rb", "rc"] }),
    );
    let (_, sent) = request(
        &gw,
        "POST",
        "/v1/messages",
        &user_token("ra"),
        &json!({ "client_msg_id": "r1", "to": { "group": "rg" }, "content": { "type": "text", "text": "read me" } }),
    );
    let msg_id = sent["msg_id"].as_str().unwrap();
    let (status, read) = request(
        &gw,
        "POST",
        "/v1/receipts",
        &user_token("rb"),
        &json!({ "msg_ids": [msg_id] }),
    );
    assert_eq!((status, read), (200, json!({ "read": [msg_id] })));
    let (_, again) = request(
        &gw,
        "POST",
        "/v1/receipts",
        &user_token("rb"),
        &json!({ "msg_ids": [msg_id] }),
    );
    assert_eq!(again, json!({ "read": [] }), "a repeat marks nothing");
    // The sender's receipt entry arrives through the queue (the gateway drains at once).
    let deadline = Instant::now() + Duration::from_secs(10);
    let receipt = loop {
        let (_, page) = request(
            &gw,
            "GET",
            "/v1/sync?after=0",
            &user_token("ra"),
            &Value::Null,
        );
        if let Some(r) = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "receipt")
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no receipt entry");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        (
            receipt["read_count"].as_i64(),
            receipt["unread_count"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(receipt["msg_id"], msg_id);
    let (status, view) = request(
        &gw,
        "GET",
        &format!("/v1/messages/{msg_id}/receipts"),
        &user_token("ra"),
        &Value::Null,
    );
    assert_eq!(
        (status, view),
        (
            200,
            json!({ "msg_id": msg_id, "read": ["rb"], "unread": ["rc"] })
        )
    );
    let (status, _) = request(
        &gw,
        "GET",
        &format!("/v1/messages/{msg_id}/receipts"),
        &user_token("rb"),
        &Value::Null,
    );
    assert_eq!(status, 403, "only the sender sees the lists");
    let (status, body) = request(
        &gw,
        "POST",
        &format!("/v1/messages/{msg_id}/recall"),
        &user_token("rb"),
        &Value::Null,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = request(
        &gw,
        "POST",
        &format!("/v1/messages/{msg_id}/recall"),
        &user_token("ra"),
        &Value::Null,
    );
    assert_eq!(
        (status, body),
        (200, json!({ "msg_id": msg_id, "recalled": true }))
    );
    let (_, page) = request(
        &gw,
        "GET",
        "/v1/sync?after=0",
        &user_token("rc"),
        &Value::Null,
    );
    let entries = page["entries"].as_array().unwrap();
    let original = entries.iter().find(|e| e["kind"] == "message").unwrap();
    assert_eq!(
        (original["content"].clone(), original["recalled"].clone()),
        (Value::Null, json!(true))
    );
    let recall = entries
        .iter()
        .find(|e| e["kind"] == "recall")
        .expect("recall entry");
    assert_eq!(
        (recall["msg_id"].as_str(), recall["client_msg_id"].as_str()),
        (Some(msg_id), Some("r1"))
    );
    let (status, _) = request(&gw, "POST", "/internal/drain", "not-a-secret", &Value::Null);
    assert_eq!(status, 401, "the drain route needs the internal secret");
}
