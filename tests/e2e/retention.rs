//! Retention end to end: the worker keeps the retention job scheduled, a pass purges
//! history older than `retention_days`, and a sync from purged history says so with
//! `trimmed_before`. The history is aged by rewriting its times in the database.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Api, Expect, text_to_user, user_token};

const DAY_MS: i64 = 86_400_000;

#[test]
fn history_older_than_retention_days_is_purged_and_sync_reports_the_trim() {
    let api = Api::start_with(&[
        ("SPIN_VARIABLE_RETENTION_DAYS", "1"),
        ("SPIN_VARIABLE_RETENTION_INTERVAL_SECS", "1"),
    ]);
    api.user("ann", "acme");
    api.user("bob", "acme");
    for i in 0..3 {
        api.send_as("ann", &text_to_user(&format!("old-{i}"), "bob", "old"))
            .expect_json(201);
    }
    // Two days pass for those three (entries and bodies alike).
    {
        let db = api.gw.db();
        db.execute(
            "UPDATE entries SET created_at = created_at - ?",
            &[(2 * DAY_MS).into()],
        )
        .unwrap();
        db.execute(
            "UPDATE messages SET sent_at = sent_at - ?",
            &[(2 * DAY_MS).into()],
        )
        .unwrap();
    }
    api.send_as("ann", &text_to_user("new", "bob", "new"))
        .expect_json(201);
    let token = user_token("bob");
    let deadline = Instant::now() + Duration::from_secs(20);
    let page: Value = loop {
        let page = api.sync(&token, "after=0").expect_json(200);
        if page.get("trimmed_before").is_some() {
            break page;
        }
        assert!(Instant::now() < deadline, "no pass purged: {page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(page["trimmed_before"], 3);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["client_msg_id"], "new");
    assert_eq!(
        (page["next"].as_i64(), page["head"].as_i64()),
        (Some(4), Some(4))
    );
    // A cursor past the trim sees nothing purged.
    let later = api.sync(&token, "after=3").expect_json(200);
    assert!(later.get("trimmed_before").is_none(), "{later}");
    // The sender's copies went too; the conversation lives on with the new message.
    assert_eq!(api.stream("ann").client_msg_ids(), ["new"]);
    let convs = api.conversations("bob");
    assert_eq!(convs["conversations"][0]["last"]["client_msg_id"], "new");
}
