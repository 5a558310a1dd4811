//! `GET /healthz`'s store check: the store answers and is at the newest schema.

use courier_store::{Sql, schema};

/// Whether the store is ready: a real round trip that reads its schema version, which
/// must be the newest. The error says what failed, for the log (clients see only that
/// the check failed).
pub fn store_ready<S: Sql + ?Sized>(sql: &S) -> Result<(), String> {
    let dialect = sql.dialect();
    let version = schema::version(sql).map_err(|e| format!("{dialect} query: {e}"))?;
    if version != Some(schema::latest()) {
        return Err(format!("{dialect} schema version is {version:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_store::native::NativeSqlite;

    #[test]
    fn a_migrated_store_is_ready_and_an_empty_one_is_not() {
        let db = NativeSqlite::memory().unwrap();
        assert!(
            store_ready(&db).unwrap_err().contains("query"),
            "no migrations table"
        );
        schema::migrate(&db).unwrap();
        assert_eq!(store_ready(&db), Ok(()));
        db.execute("DELETE FROM courier_migrations WHERE version = (SELECT MAX(version) FROM courier_migrations)", &[]).unwrap();
        assert!(store_ready(&db).unwrap_err().contains("schema version is"));
    }
}
