//! Per-org quotas end to end: one org flooding from many users gets 429 +
//! `Retry-After` from its org's bucket, while another org's sends all succeed.

use std::time::Instant;

use crate::client::{Api, Expect, text_to_user, user_token};

#[test]
fn a_flooding_org_gets_429_while_another_orgs_sends_all_succeed() {
    // 5 sends a second per org, a bucket of 10; per user 10 a second, 20 in a burst.
    let api = Api::start_with(&[("SPIN_VARIABLE_RATE_PER_ORG_PER_SEC", "5")]);
    let flooders: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
    for uid in &flooders {
        api.user(uid, "flood");
    }
    for uid in ["q0", "q1"] {
        api.user(uid, "quiet");
    }
    let started = Instant::now();
    let (flood, quiet) = std::thread::scope(|scope| {
        let flood: Vec<_> = flooders
            .iter()
            .enumerate()
            .map(|(i, uid)| {
                let client = api.client().clone();
                let to = flooders[(i + 1) % flooders.len()].clone();
                scope.spawn(move || {
                    let token = user_token(uid);
                    (0..12)
                        .map(|n| {
                            let reply =
                                client.send(&token, &text_to_user(&format!("{uid}-{n}"), &to, "x"));
                            if reply.status == 429 {
                                reply.expect_error(429, "rate_limited");
                                assert!(reply.header("retry-after").is_some());
                            }
                            reply.status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let client = api.client().clone();
        let quiet = scope.spawn(move || {
            let token = user_token("q0");
            (0..8)
                .map(|n| {
                    client
                        .send(&token, &text_to_user(&format!("q-{n}"), "q1", "y"))
                        .status
                })
                .collect::<Vec<u16>>()
        });
        let flood: Vec<u16> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
        (flood, quiet.join().unwrap())
    });
    let elapsed = started.elapsed().as_secs_f64();
    let passed = flood.iter().filter(|s| **s == 201).count();
    let limited = flood.iter().filter(|s| **s == 429).count();
    println!(
        "flooding org: {passed} sent, {limited} limited of {} in {elapsed:.2} s; quiet org: {quiet:?}",
        flood.len()
    );
    assert_eq!(passed + limited, flood.len(), "{flood:?}");
    assert!(
        (passed as f64) <= 10.0 + 5.0 * elapsed + 1.0,
        "the org's bucket held: {passed} in {elapsed:.2} s"
    );
    assert!(limited >= 60 - 10 - (5.0 * elapsed).ceil() as usize - 1);
    assert!(quiet.iter().all(|s| *s == 201), "{quiet:?}");
    // The refused sends wrote nothing: each flooder's stream holds only what passed
    // (its own sends and those it received).
    let stored: usize = flooders
        .iter()
        .map(|uid| api.stream(uid).messages().len())
        .sum();
    assert_eq!(stored, passed * 2);
}
