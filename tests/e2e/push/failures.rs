//! Vendor failures: retries that honour the vendor's wait and never notify a served
//! device twice, renewed credentials, and tokens the vendor reports gone.

use std::time::Duration;

use serde_json::json;

use super::{apns_token, start, token_registration};
use crate::client::{Expect, text_to_user};
use crate::vendors::{Answer, Target, now_ms};

#[test]
fn failed_pushes_are_retried_after_the_vendors_wait_and_each_device_is_pushed_once() {
    let p = start(&[("SPIN_VARIABLE_PUSH_DELAY_MS", "200")]);
    p.users("r", &["rs", "rr"]);
    // Answered 429 with Retry-After, 503, 429 (APNs), 429 with a longer Retry-After;
    // two devices are served at once.
    let failing = [
        (
            "rr-web",
            p.fake.webpush_registration("rr"),
            Target::WebPush("rr".into()),
        ),
        (
            "rr-android",
            token_registration("fcm", "fcm-token-rr"),
            Target::Fcm("fcm-token-rr".into()),
        ),
        (
            "rr-ipad",
            token_registration("apns", &apns_token(0x78)),
            Target::Apns(apns_token(0x78)),
        ),
        (
            "rr-pixel",
            token_registration("fcm", "fcm-token-rr2"),
            Target::Fcm("fcm-token-rr2".into()),
        ),
    ];
    let served = [
        (
            "rr-ios",
            token_registration("apns", &apns_token(0x77)),
            Target::Apns(apns_token(0x77)),
        ),
        (
            "rr-huawei",
            token_registration("hms", "hms-token-rr"),
            Target::Hms("hms-token-rr".into()),
        ),
    ];
    for (device, registration, _) in failing.iter().chain(&served) {
        p.registered("rr", device, registration);
    }
    let google = |code: u16, status: &str| json!({"error": {"code": code, "message": "try later", "status": status}});
    let answers = [
        Answer::status(429).header("retry-after", "1"),
        Answer::json(503, &google(503, "UNAVAILABLE")),
        Answer::json(429, &json!({"reason": "TooManyRequests"})),
        Answer::json(429, &google(429, "RESOURCE_EXHAUSTED")).header("retry-after", "2"),
    ];
    for ((_, _, target), answer) in failing.iter().zip(answers) {
        p.fake.script(target.clone(), [answer]);
    }

    let sent = p
        .api
        .send_as("rs", &text_to_user("r-1", "rr", "are you there?"))
        .expect_json(201);
    p.settle("the retries to succeed", || {
        failing
            .iter()
            .all(|(_, _, target)| p.fake.seen(target).len() >= 2)
    });
    p.fake.assert_checks_passed();

    let statuses =
        |target: &Target| -> Vec<u16> { p.fake.seen(target).iter().map(|s| s.status).collect() };
    let retried: Vec<Vec<u16>> = failing.iter().map(|(_, _, t)| statuses(t)).collect();
    assert_eq!(retried, [[429, 201], [503, 200], [429, 200], [429, 200]]);
    for (device, _, target) in &served {
        assert_eq!(
            statuses(target),
            [200],
            "{device} was served at once: not pushed again"
        );
    }
    let first = p.fake.seen(&failing[0].2)[0].at;
    for (device, _, target) in &failing {
        let wait = p.fake.seen(target)[1].at - first;
        assert!(
            wait >= Duration::from_secs(2),
            "{device}: the retry waited for the longest Retry-After: {wait:?}"
        );
    }
    for push in p.fake.pushes() {
        assert_eq!(push.notification["msg_id"], sent["msg_id"]);
        assert_eq!(push.notification["unread"], 1);
    }
    assert_eq!(
        statuses(&Target::FcmOAuth),
        [200],
        "the FCM access token is kept between attempts"
    );
    let states: Vec<(String, String)> = p
        .deliveries("rr")
        .into_iter()
        .map(|d| (d.device, d.state))
        .collect();
    let mut devices: Vec<&str> = failing.iter().chain(&served).map(|(d, _, _)| *d).collect();
    devices.sort_unstable();
    let expected: Vec<(String, String)> = devices
        .iter()
        .map(|d| (d.to_string(), "sent".to_string()))
        .collect();
    assert_eq!(states, expected);
}

#[test]
fn expired_vendor_credentials_are_renewed_and_the_push_sent_again() {
    let p = start(&[("SPIN_VARIABLE_PUSH_DELAY_MS", "200")]);
    p.users("x", &["xs", "xr"]);
    p.registered(
        "xr",
        "xr-ios",
        &token_registration("apns", &apns_token(0x5e)),
    );
    p.registered(
        "xr",
        "xr-android",
        &token_registration("fcm", "fcm-token-xr"),
    );
    p.registered(
        "xr",
        "xr-huawei",
        &token_registration("hms", "hms-token-xr"),
    );
    let (apns, fcm, hms) = (
        Target::Apns(apns_token(0x5e)),
        Target::Fcm("fcm-token-xr".into()),
        Target::Hms("hms-token-xr".into()),
    );
    p.fake.script(
        apns.clone(),
        [Answer::json(
            403,
            &json!({"reason": "ExpiredProviderToken"}),
        )],
    );
    let expired = json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}});
    p.fake.script(fcm.clone(), [Answer::json(401, &expired)]);
    // Huawei's token endpoint is down at first; then its token turns out expired.
    p.fake.script(Target::HmsOAuth, [Answer::status(503)]);
    p.fake.script(
        hms.clone(),
        [Answer::json(
            401,
            &json!({"code": "80200003", "msg": "OAuth token expired.", "requestId": "r-x"}),
        )],
    );

    p.api
        .send_as("xs", &text_to_user("x-1", "xr", "renew"))
        .expect_json(201);
    p.settle("every device to be served", || {
        [&apns, &fcm, &hms]
            .iter()
            .all(|target| p.fake.seen(target).last().is_some_and(|s| s.status == 200))
    });
    p.fake.assert_checks_passed();

    let statuses =
        |target: &Target| -> Vec<u16> { p.fake.seen(target).iter().map(|s| s.status).collect() };
    assert_eq!(statuses(&apns), [403, 200]);
    assert_eq!(statuses(&fcm), [401, 200]);
    assert_eq!(statuses(&hms), [401, 200]);
    assert_eq!(
        statuses(&Target::FcmOAuth),
        [200, 200],
        "a new FCM token after the 401"
    );
    assert_eq!(statuses(&Target::HmsOAuth), [503, 200, 200]);
    for target in [&apns, &fcm, &hms] {
        let seen = p.fake.seen(target);
        assert_ne!(
            seen[0].header("authorization"),
            seen[1].header("authorization"),
            "{target:?}: sent again with new credentials"
        );
    }
    assert!(p.deliveries("xr").iter().all(|d| d.state == "sent"));
}

#[test]
fn tokens_the_vendor_reports_gone_are_deleted_and_never_pushed_again() {
    let p = start(&[("SPIN_VARIABLE_PUSH_DELAY_MS", "200")]);
    p.users("t", &["ts", "tr"]);
    p.registered("tr", "web-gone", &p.fake.webpush_registration("tr-gone"));
    p.registered("tr", "web-keep", &p.fake.webpush_registration("tr-keep"));
    p.registered(
        "tr",
        "ios-gone",
        &token_registration("apns", &apns_token(0x41)),
    );
    p.registered(
        "tr",
        "ios-bad",
        &token_registration("apns", &apns_token(0x42)),
    );
    p.registered(
        "tr",
        "android-gone",
        &token_registration("fcm", "fcm-token-gone"),
    );
    p.registered(
        "tr",
        "huawei-gone",
        &token_registration("hms", "hms-token-gone"),
    );
    p.registered("tr", "web-404", &p.fake.webpush_registration("tr-404"));
    p.registered("tr", "web-big", &p.fake.webpush_registration("tr-big"));
    let big = Target::WebPush("tr-big".into());
    p.fake.script(big.clone(), [Answer::status(413)]);
    let gone = [
        (Target::WebPush("tr-gone".into()), Answer::status(410)),
        (Target::WebPush("tr-404".into()), Answer::status(404)),
        (
            Target::Apns(apns_token(0x41)),
            Answer::json(
                410,
                &json!({"reason": "Unregistered", "timestamp": now_ms()}),
            ),
        ),
        (
            Target::Apns(apns_token(0x42)),
            Answer::json(400, &json!({"reason": "BadDeviceToken"})),
        ),
        (
            Target::Fcm("fcm-token-gone".into()),
            Answer::json(
                404,
                &json!({"error": {
                    "code": 404,
                    "message": "Requested entity was not found.",
                    "status": "NOT_FOUND",
                    "details": [{
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": "UNREGISTERED",
                    }],
                }}),
            ),
        ),
        (
            Target::Hms("hms-token-gone".into()),
            Answer::json(
                400,
                &json!({"code": "80300007", "msg": "All the tokens are invalid", "requestId": "r-gone"}),
            ),
        ),
    ];
    for (target, answer) in &gone {
        p.fake.script(target.clone(), [answer.clone()]);
    }
    let keep = Target::WebPush("tr-keep".into());

    p.api
        .send_as("ts", &text_to_user("t-1", "tr", "first"))
        .expect_json(201);
    p.settle("a push to every device", || p.fake.pushes().len() >= 8);
    assert_eq!(
        p.devices("tr"),
        [
            ("web-big".to_string(), "webpush".to_string()),
            ("web-keep".into(), "webpush".into()),
        ],
        "every registration reported gone is deleted; a refused payload keeps its device"
    );
    let states: Vec<(String, String)> = p
        .deliveries("tr")
        .into_iter()
        .map(|d| (d.device, d.state))
        .collect();
    for (device, state) in &states {
        let expected = match device.as_str() {
            "web-keep" => "sent",
            "web-big" => "failed",
            _ => "token_gone",
        };
        assert_eq!(state, expected, "{device}");
    }
    assert_eq!(states.len(), 8);
    assert_eq!(p.fake.seen(&big).len(), 1, "a 413 is not retried");

    p.api
        .send_as("ts", &text_to_user("t-2", "tr", "second"))
        .expect_json(201);
    p.settle("the second push", || {
        p.fake.seen(&keep).len() >= 2 && p.fake.seen(&big).len() >= 2
    });
    p.fake.assert_checks_passed();
    for (target, _) in &gone {
        assert_eq!(
            p.fake.seen(target).len(),
            1,
            "{target:?} pushed after it was gone"
        );
    }
    assert_eq!(p.fake.pushes().len(), 10);
    for target in [&keep, &big] {
        let second = &p.fake.seen(target)[1];
        assert_eq!(
            (second.status, &second.notification["unread"]),
            (201, &json!(2))
        );
    }
}
