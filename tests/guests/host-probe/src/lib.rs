//! Test-only guest: calls every function of the Spin interfaces the gateway provides
//! (sqlite, key-value, variables) and outbound HTTP, and reports what it observed as
//! JSON, so the end-to-end tests can assert the host's behaviour from the outside.
//!
//! # Layout
//! - [`probe`]: dispatches on the path below `/probe`.
//! - `sqlite_probe`, `kv_probe`, `variables_probe`, `outbound_probe`: one interface each.
//! - [`postgres_probe`]: `spin:postgres@4.0.0` (the database `database_url` names).
//!
//! Observations are plain strings (`"ok"`, `"access-denied"`, a value read back…);
//! the tests, not this guest, decide what is right.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

mod postgres_probe;

use serde_json::{Map, Value as Json, json};
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::{self, Store};
use spin_sdk::sqlite::{self, Connection, Value};
use spin_sdk::variables;

/// # `GET /probe/{sqlite|postgres|kv|variables|outbound|sleep}`
/// Runs one interface's probe and answers 200 with the observations.
#[http_component]
async fn probe(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.path().to_string();
    let query = req.query().to_string();
    let observed = match path.trim_end_matches('/') {
        "/probe/sqlite" => sqlite_probe(),
        "/probe/postgres" => postgres_probe::postgres_probe(&query),
        "/probe/kv" => kv_probe(),
        "/probe/variables" => variables_probe(),
        "/probe/outbound" => outbound_probe(&query).await,
        "/probe/spin-headers" => headers_probe(&req),
        "/probe/spin" => spin_probe(),
        "/probe/echo-body" => json!({ "len": req.body().len() }),
        other => {
            return Ok(Response::builder()
                .status(404)
                .body(format!("no probe {other}"))
                .build());
        }
    };
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(observed.to_string())
        .build())
}

fn sqlite_error(e: &sqlite::Error) -> String {
    match e {
        sqlite::Error::NoSuchDatabase => "no-such-database".into(),
        sqlite::Error::AccessDenied => "access-denied".into(),
        sqlite::Error::InvalidConnection => "invalid-connection".into(),
        sqlite::Error::DatabaseFull => "database-full".into(),
        sqlite::Error::Io(text) => format!("io: {text}"),
    }
}

fn observe<T>(result: Result<T, sqlite::Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => sqlite_error(&e),
    }
}

fn count(db: &Connection, table: &str) -> Json {
    match db.execute(&format!("SELECT count(*) FROM {table}"), &[]) {
        Ok(r) => match r.rows.first().and_then(|row| row.values.first()) {
            Some(Value::Integer(n)) => json!(n),
            other => json!(format!("unexpected {other:?}")),
        },
        Err(e) => json!(sqlite_error(&e)),
    }
}

fn sqlite_probe() -> Json {
    let mut out = Map::new();
    out.insert(
        "open_ungranted".into(),
        json!(observe(Connection::open("audit"))),
    );
    let db = match Connection::open_default() {
        Ok(db) => db,
        Err(e) => return json!({ "open_default": sqlite_error(&e) }),
    };
    out.insert("open_default".into(), json!("ok"));
    let setup = db.execute("DROP TABLE IF EXISTS probe", &[]).and_then(|_| {
        db.execute(
            "CREATE TABLE probe (i INTEGER, r REAL, t TEXT, b BLOB, n)",
            &[],
        )
    });
    out.insert("create".into(), json!(observe(setup)));
    let params = [
        Value::Integer(i64::MIN),
        Value::Real(1.5),
        Value::Text("héllo ✓".into()),
        Value::Blob(vec![0, 255, 7]),
        Value::Null,
    ];
    out.insert(
        "insert".into(),
        json!(observe(
            db.execute("INSERT INTO probe VALUES (?, ?, ?, ?, ?)", &params)
        )),
    );
    match db.execute("SELECT i, r, t, b, n FROM probe", &[]) {
        Ok(result) => {
            out.insert("columns".into(), json!(result.columns));
            let row = result
                .rows
                .first()
                .map(|r| r.values.clone())
                .unwrap_or_default();
            out.insert(
                "round_trip".into(),
                json!(format!("{row:?}") == format!("{params:?}")),
            );
        }
        Err(e) => {
            out.insert("select".into(), json!(sqlite_error(&e)));
        }
    }
    // A transaction spans several execute calls on one connection.
    let rolled_back = db
        .execute("BEGIN", &[])
        .and_then(|_| db.execute("INSERT INTO probe (i) VALUES (2)", &[]))
        .and_then(|_| db.execute("ROLLBACK", &[]));
    out.insert("rollback".into(), json!(observe(rolled_back)));
    out.insert("count_after_rollback".into(), count(&db, "probe"));
    let committed = db
        .execute("BEGIN IMMEDIATE", &[])
        .and_then(|_| db.execute("INSERT INTO probe (i) VALUES (3)", &[]))
        .and_then(|_| db.execute("COMMIT", &[]));
    out.insert("commit".into(), json!(observe(committed)));
    out.insert("count_after_commit".into(), count(&db, "probe"));
    // A second connection sees only committed rows.
    if let Ok(other) = Connection::open_default() {
        let _ = db.execute("BEGIN IMMEDIATE", &[]);
        let _ = db.execute("INSERT INTO probe (i) VALUES (4)", &[]);
        out.insert("other_sees_uncommitted".into(), count(&other, "probe"));
        let _ = db.execute("COMMIT", &[]);
        out.insert("other_sees_committed".into(), count(&other, "probe"));
    }
    out.insert(
        "syntax_error".into(),
        json!(observe(db.execute("SELEKT nonsense", &[]))),
    );
    out.insert(
        "constraint_error".into(),
        json!(observe(
            db.execute("CREATE TABLE IF NOT EXISTS uniq (k TEXT PRIMARY KEY)", &[])
                .and_then(|_| db.execute("INSERT OR IGNORE INTO uniq VALUES ('a')", &[]))
                .and_then(|_| db.execute("INSERT INTO uniq VALUES ('a')", &[]))
        )),
    );
    // Left open on purpose: the host must roll it back when the instance ends.
    let _ = db.execute("BEGIN IMMEDIATE", &[]);
    let _ = db.execute("INSERT INTO probe (i) VALUES (99)", &[]);
    Json::Object(out)
}

fn kv_error(e: &key_value::Error) -> String {
    match e {
        key_value::Error::StoreTableFull => "store-table-full".into(),
        key_value::Error::NoSuchStore => "no-such-store".into(),
        key_value::Error::AccessDenied => "access-denied".into(),
        key_value::Error::Other(text) => format!("other: {text}"),
    }
}

fn kv_probe() -> Json {
    let mut out = Map::new();
    out.insert(
        "open_ungranted".into(),
        json!(
            Store::open("secrets")
                .map(|_| "ok".to_string())
                .unwrap_or_else(|e| kv_error(&e))
        ),
    );
    let store = match Store::open_default() {
        Ok(s) => s,
        Err(e) => return json!({ "open_default": kv_error(&e) }),
    };
    let show = |r: Result<Option<Vec<u8>>, key_value::Error>| match r {
        Ok(Some(v)) => json!(String::from_utf8_lossy(&v)),
        Ok(None) => json!(null),
        Err(e) => json!(kv_error(&e)),
    };
    let _ = store.delete("probe:a");
    let _ = store.delete("probe:b");
    out.insert("get_missing".into(), show(store.get("probe:a")));
    out.insert(
        "exists_missing".into(),
        json!(store.exists("probe:a").map_err(|e| kv_error(&e))),
    );
    let _ = store.set("probe:a", b"one");
    let _ = store.set("probe:a", b"two");
    let _ = store.set("probe:b", &[0xff, 0x00]);
    out.insert("get_after_overwrite".into(), show(store.get("probe:a")));
    out.insert(
        "exists_present".into(),
        json!(store.exists("probe:a").map_err(|e| kv_error(&e))),
    );
    out.insert(
        "binary_len".into(),
        json!(store.get("probe:b").ok().flatten().map(|v| v.len())),
    );
    let keys = store.get_keys().map(|keys| {
        keys.into_iter()
            .filter(|k| k.starts_with("probe:"))
            .collect::<Vec<_>>()
    });
    out.insert("keys".into(), json!(keys.map_err(|e| kv_error(&e))));
    out.insert(
        "delete".into(),
        json!(store.delete("probe:a").map_err(|e| kv_error(&e))),
    );
    out.insert(
        "delete_missing".into(),
        json!(store.delete("probe:a").map_err(|e| kv_error(&e))),
    );
    out.insert("get_after_delete".into(), show(store.get("probe:a")));
    Json::Object(out)
}

fn variables_probe() -> Json {
    let show = |name: &str| match variables::get(name) {
        Ok(v) => json!(v),
        Err(variables::Error::InvalidName(_)) => json!("invalid-name"),
        Err(variables::Error::Undefined(_)) => json!("undefined"),
        Err(variables::Error::Provider(e)) => json!(format!("provider: {e}")),
        Err(variables::Error::Other(e)) => json!(format!("other: {e}")),
    };
    json!({
        "greeting": show("greeting"),
        "url": show("url"),
        "secret": show("secret"),
        "not_granted": show("other_secret"),
        "invalid": show("Bad-Name"),
    })
}

async fn outbound_probe(query: &str) -> Json {
    let url = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("url="))
        .unwrap_or_default()
        .to_string();
    let request = Request::get(&url);
    let result: Result<Response, _> = spin_sdk::http::send(request).await;
    match result {
        Ok(response) => json!({
            "status": *response.status(),
            "body": String::from_utf8_lossy(response.body()),
        }),
        Err(e) => json!({ "error": format!("{e:?}") }),
    }
}

fn headers_probe(req: &Request) -> Json {
    let mut out = Map::new();
    for (name, value) in req.headers() {
        if name.starts_with("spin-") {
            out.insert(name.to_string(), json!(value.as_str().unwrap_or_default()));
        }
    }
    Json::Object(out)
}

/// Spins forever: the gateway's request timeout must stop it.
fn spin_probe() -> Json {
    let mut x: u64 = 1;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 0 {
            return json!(x);
        }
    }
}
