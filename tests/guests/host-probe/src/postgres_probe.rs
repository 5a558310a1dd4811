//! `spin:postgres@4.0.0` as a guest sees it: the allow-list, every value type both
//! ways, transactions across calls and connections, structured errors, and a
//! transaction left open when the instance ends (`?phase=abandon`).

#![allow(
    clippy::result_large_err,
    reason = "the interface's own error type, observed as it comes"
)]

use serde_json::{Map, Value as Json, json};
use spin_sdk::pg4::{Connection, DbValue, ParameterValue, PgError, QueryError};
use spin_sdk::variables;

fn error(e: &PgError) -> String {
    match e {
        PgError::ConnectionFailed(text) => format!("connection-failed: {text}"),
        PgError::BadParameter(text) => format!("bad-parameter: {text}"),
        PgError::QueryFailed(QueryError::DbError(db)) => {
            format!("db-error {}: {}", db.code, db.message)
        }
        PgError::QueryFailed(QueryError::Text(text)) => format!("query-failed: {text}"),
        PgError::ValueConversionFailed(text) => format!("value-conversion-failed: {text}"),
        PgError::Other(text) => format!("other: {text}"),
    }
}

fn observe<T>(result: Result<T, PgError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => error(&e),
    }
}

fn count(db: &Connection) -> Json {
    match db.query("SELECT count(*) FROM probe_pg", &[]) {
        Ok(set) => match set.rows.first().and_then(|r| r.first()) {
            Some(DbValue::Int64(n)) => json!(n),
            other => json!(format!("unexpected {other:?}")),
        },
        Err(e) => json!(error(&e)),
    }
}

pub fn postgres_probe(query: &str) -> Json {
    let mut out = Map::new();
    let url = variables::get("database_url").unwrap_or_default();
    out.insert(
        "open_denied".into(),
        json!(observe(Connection::open(
            "postgres://u@denied.invalid:5432/db"
        ))),
    );
    out.insert(
        "open_tls_required".into(),
        json!(observe(Connection::open(&format!("{url}?sslmode=require")))),
    );
    let db = match Connection::open(&url) {
        Ok(db) => db,
        Err(e) => return json!({ "open": error(&e) }),
    };
    out.insert("open".into(), json!("ok"));
    if query.contains("phase=abandon") {
        // Leave a transaction open holding a row lock; the instance then ends.
        let left = db
            .execute("BEGIN", &[])
            .and_then(|_| db.execute("INSERT INTO probe_pg (k) VALUES (99)", &[]))
            .and_then(|_| db.query("SELECT k FROM probe_pg WHERE k = 1 FOR UPDATE", &[]));
        out.insert("abandon".into(), json!(observe(left)));
        return Json::Object(out);
    }
    let setup = db.execute("DROP TABLE IF EXISTS probe_pg", &[]).and_then(|_| {
        db.execute(
            "CREATE TABLE probe_pg (s SMALLINT, i INTEGER, k BIGINT PRIMARY KEY, f REAL, d DOUBLE PRECISION,
               t TEXT, b BYTEA, z BOOLEAN, n NUMERIC, v VARCHAR(10))",
            &[],
        )
    });
    out.insert("create".into(), json!(observe(setup)));
    let params = [
        ParameterValue::Int16(-7),
        ParameterValue::Int32(i32::MIN),
        ParameterValue::Int64(1),
        ParameterValue::Floating32(0.5),
        ParameterValue::Floating64(-1.25),
        ParameterValue::Str("héllo ✓".into()),
        ParameterValue::Binary(vec![0, 255, 7]),
        ParameterValue::Boolean(true),
        ParameterValue::DbNull,
        ParameterValue::Str("short".into()),
    ];
    out.insert(
        "insert".into(),
        json!(observe(db.execute(
            "INSERT INTO probe_pg VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &params
        ))),
    );
    match db.query(
        "SELECT s, i, k, f, d, t, b, z, n, v, 12345.678::numeric AS dec, NULL::text AS nothing FROM probe_pg",
        &[],
    ) {
        Ok(set) => {
            out.insert(
                "columns".into(),
                json!(set
                    .columns
                    .iter()
                    .map(|c| format!("{}:{:?}", c.name, c.data_type).replace("DbDataType::", ""))
                    .collect::<Vec<_>>()),
            );
            out.insert(
                "row".into(),
                json!(set
                    .rows
                    .first()
                    .map(|r| format!("{r:?}").replace("DbValue::", ""))
                    .unwrap_or_default()),
            );
        }
        Err(e) => {
            out.insert("select".into(), json!(error(&e)));
        }
    }
    out.insert(
        "wrong_parameter_type".into(),
        json!(observe(db.query(
            "SELECT count(*) FROM probe_pg WHERE i = $1",
            &[ParameterValue::Int64(1)]
        ))),
    );
    out.insert(
        "syntax_error".into(),
        json!(observe(db.execute("SELEKT 1", &[]))),
    );
    out.insert(
        "unique_violation".into(),
        json!(observe(
            db.execute("INSERT INTO probe_pg (k) VALUES (1)", &[])
        )),
    );
    // A transaction spans calls on one connection; another connection sees it only
    // once committed.
    let other = Connection::open(&url);
    let rolled_back = db
        .execute("BEGIN", &[])
        .and_then(|_| db.execute("INSERT INTO probe_pg (k) VALUES (2)", &[]))
        .and_then(|_| db.execute("ROLLBACK", &[]));
    out.insert("rollback".into(), json!(observe(rolled_back)));
    out.insert("count_after_rollback".into(), count(&db));
    let open = db
        .execute("BEGIN", &[])
        .and_then(|_| db.execute("INSERT INTO probe_pg (k) VALUES (3)", &[]));
    out.insert("begin_insert".into(), json!(observe(open)));
    if let Ok(other) = &other {
        out.insert("other_sees_uncommitted".into(), count(other));
    }
    out.insert("commit".into(), json!(observe(db.execute("COMMIT", &[]))));
    if let Ok(other) = &other {
        out.insert("other_sees_committed".into(), count(other));
    }
    out.insert(
        "execute_count".into(),
        json!(
            db.execute("UPDATE probe_pg SET t = 'x'", &[])
                .map_err(|e| error(&e))
                .ok()
        ),
    );
    Json::Object(out)
}
