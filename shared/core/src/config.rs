//! Typed limits, read once from string variables (Spin variables) with defaults.
//!
//! [`Config::from_lookup`] takes the lookup as a function, so the core never reads a
//! variable itself: a component passes `spin_sdk::variables::get`, a test a closure.
//! Secrets (`jwt_secret`, `internal_secret`) are not here: they never sit in a struct
//! that is logged or cloned around; see [`crate::auth::TokenKey::hs256`].

use crate::error::Error;

/// The limits and timings every component shares. Field names equal the variable names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest `content.text`, in UTF-8 bytes. Default 4096.
    pub max_text_bytes: usize,
    /// Largest messaging request body, in bytes. Default 65536.
    pub max_body_bytes: usize,
    /// Largest directory request body, in bytes. Default 1 MiB: a group of
    /// `max_group_members` ids does not fit in `max_body_bytes`.
    pub max_directory_body_bytes: usize,
    /// Groups up to this many members are fanned out inside the send. Default 100.
    pub inline_fanout_max: usize,
    /// Most members of one group. Default 10000.
    pub max_group_members: usize,
    /// Groups larger than this get no `control` entries. Default 2000.
    pub control_fanout_max_members: usize,
    /// Token-bucket refill per user, per second. Default 10.
    pub rate_per_user_per_sec: u32,
    /// Token-bucket size per user. Default 20.
    pub rate_burst: u32,
    /// Token-bucket refill per org (all its users' sends), per second; the bucket
    /// holds twice this. Default 500.
    pub rate_per_org_per_sec: u32,
    /// An org holding more than this percentage of the worker's queued jobs has its
    /// sends refused (429) until the queue drains. Default 20.
    pub org_queue_share_percent: u32,
    /// …once it holds more than this many queued jobs. Default 100.
    pub org_queue_floor: u32,
    /// How long after `sent_at` a sender may recall, in seconds. Default 86400.
    pub recall_window_secs: u64,
    /// A device without a sync for this long is offline, in seconds. Default 60.
    pub presence_ttl_secs: u64,
    /// A push waits this long for more messages to coalesce with, in ms. Default 1000.
    pub push_delay_ms: u64,
    /// Messages that arrive while a user's push is being delivered are pushed again
    /// at the earliest this long after it, in ms. Default 10000.
    pub push_interval_ms: u64,
    /// Longest pause between head reads of a sync or stream that waits in its own
    /// component (on a host that does not park it, such as `spin up`), in ms: the
    /// pause starts at 20 ms and doubles up to this while the stream stays still.
    /// Default 200; 20 is a fixed 20 ms.
    pub wait_poll_max_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_text_bytes: 4096,
            max_body_bytes: 65_536,
            max_directory_body_bytes: 1_048_576,
            inline_fanout_max: 100,
            max_group_members: 10_000,
            control_fanout_max_members: 2000,
            rate_per_user_per_sec: 10,
            rate_burst: 20,
            rate_per_org_per_sec: 500,
            org_queue_share_percent: 20,
            org_queue_floor: 100,
            recall_window_secs: 86_400,
            presence_ttl_secs: 60,
            push_delay_ms: 1000,
            push_interval_ms: 10_000,
            wait_poll_max_ms: 200,
        }
    }
}

impl Config {
    /// The variable names [`Config::from_lookup`] asks for, to declare in `spin.toml`.
    pub const VARIABLES: [&'static str; 16] = [
        "max_text_bytes",
        "max_body_bytes",
        "max_directory_body_bytes",
        "inline_fanout_max",
        "max_group_members",
        "control_fanout_max_members",
        "rate_per_user_per_sec",
        "rate_burst",
        "rate_per_org_per_sec",
        "org_queue_share_percent",
        "org_queue_floor",
        "recall_window_secs",
        "presence_ttl_secs",
        "push_delay_ms",
        "push_interval_ms",
        "wait_poll_max_ms",
    ];

    /// Reads every limit through `lookup`; an absent or blank variable keeps its
    /// default. A value that is not a decimal integer in range is `Error::Config`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let d = Config::default();
        let lookup = &lookup;
        Ok(Config {
            max_text_bytes: setting(lookup, "max_text_bytes", d.max_text_bytes, 1)?,
            max_body_bytes: setting(lookup, "max_body_bytes", d.max_body_bytes, 1)?,
            max_directory_body_bytes: setting(
                lookup,
                "max_directory_body_bytes",
                d.max_directory_body_bytes,
                1,
            )?,
            // 0 is meaningful for these: "always fan out asynchronously", "never send
            // control entries".
            inline_fanout_max: setting(lookup, "inline_fanout_max", d.inline_fanout_max, 0)?,
            max_group_members: setting(lookup, "max_group_members", d.max_group_members, 1)?,
            control_fanout_max_members: setting(
                lookup,
                "control_fanout_max_members",
                d.control_fanout_max_members,
                0,
            )?,
            rate_per_user_per_sec: setting(
                lookup,
                "rate_per_user_per_sec",
                d.rate_per_user_per_sec,
                1,
            )?,
            rate_burst: setting(lookup, "rate_burst", d.rate_burst, 1)?,
            rate_per_org_per_sec: setting(
                lookup,
                "rate_per_org_per_sec",
                d.rate_per_org_per_sec,
                1,
            )?,
            org_queue_share_percent: setting(
                lookup,
                "org_queue_share_percent",
                d.org_queue_share_percent,
                1,
            )
            .and_then(|p| {
                if p > 100 {
                    Err(Error::Config(
                        "variable org_queue_share_percent: at most 100".into(),
                    ))
                } else {
                    Ok(p)
                }
            })?,
            org_queue_floor: setting(lookup, "org_queue_floor", d.org_queue_floor, 0)?,
            recall_window_secs: setting(lookup, "recall_window_secs", d.recall_window_secs, 0)?,
            presence_ttl_secs: setting(lookup, "presence_ttl_secs", d.presence_ttl_secs, 1)?,
            push_delay_ms: setting(lookup, "push_delay_ms", d.push_delay_ms, 0)?,
            push_interval_ms: setting(lookup, "push_interval_ms", d.push_interval_ms, 0)?,
            wait_poll_max_ms: setting(
                lookup,
                "wait_poll_max_ms",
                d.wait_poll_max_ms,
                WAIT_POLL_FIRST_MS,
            )?,
        })
    }
}

/// The first pause of a waiting loop, in ms: the least `wait_poll_max_ms`.
pub const WAIT_POLL_FIRST_MS: u64 = 20;

/// One integer variable, by the rule every setting follows (the limits here and each
/// component's own, such as the worker's `drain_budget_ms`): absent or blank →
/// `default`; otherwise a decimal integer of at least `min` that fits `T`, else
/// `Error::Config`.
pub fn setting<T: TryFrom<u64>>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    min: u64,
) -> Result<T, Error> {
    let Some(raw) = lookup(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| {
        Error::Config(format!(
            "variable {name}: {raw:?} is not a non-negative integer"
        ))
    })?;
    if value < min {
        return Err(Error::Config(format!(
            "variable {name}: must be at least {min}"
        )));
    }
    T::try_from(value).map_err(|_| Error::Config(format!("variable {name}: too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn no_variables_give_the_documented_defaults() {
        let config = from(&[]).expect("defaults");
        assert_eq!(config, Config::default());
        assert_eq!(config.max_text_bytes, 4096);
        assert_eq!(config.max_body_bytes, 65_536);
        assert_eq!(config.inline_fanout_max, 100);
        assert_eq!(config.max_group_members, 10_000);
        assert_eq!(config.control_fanout_max_members, 2000);
        assert_eq!(config.rate_per_user_per_sec, 10);
        assert_eq!(config.rate_burst, 20);
        assert_eq!(config.rate_per_org_per_sec, 500);
        assert_eq!(config.org_queue_share_percent, 20);
        assert_eq!(config.org_queue_floor, 100);
        assert_eq!(config.recall_window_secs, 86_400);
        assert_eq!(config.presence_ttl_secs, 60);
    }

    #[test]
    fn set_variables_override_defaults() {
        let config =
            from(&[("max_text_bytes", "10"), ("recall_window_secs", " 0 ")]).expect("valid");
        assert_eq!(config.max_text_bytes, 10);
        assert_eq!(config.recall_window_secs, 0);
        assert_eq!(config.rate_burst, 20);
    }

    /// The rule of every integer setting, components' own ones too (`drain_budget_ms`,
    /// `push_batch`, …), which read through [`setting`] directly.
    #[test]
    fn a_setting_is_its_default_or_a_valid_integer_or_an_error() {
        let var = |value: &'static str| move |_: &str| Some(value.to_string());
        let unset = |_: &str| None;
        assert_eq!(setting::<i64>(&unset, "drain_budget_ms", 5000, 0), Ok(5000));
        assert_eq!(
            setting::<i64>(&var(" "), "drain_budget_ms", 5000, 0),
            Ok(5000)
        );
        assert_eq!(
            setting::<i64>(&var(" 250 "), "drain_budget_ms", 5000, 0),
            Ok(250)
        );
        assert_eq!(setting::<usize>(&var("0"), "push_batch", 64, 0), Ok(0));
        for (raw, min, why) in [
            ("fast", 0, "is not a non-negative integer"),
            ("-1", 0, "is not a non-negative integer"),
            ("0", 1, "must be at least 1"),
            ("70000", 0, "too large"),
        ] {
            let got = setting::<u16>(&var(raw), "fanout_chunk", 500, min);
            match got {
                Err(Error::Config(text)) => {
                    assert!(
                        text.contains("fanout_chunk") && text.contains(why),
                        "{raw}: {text}"
                    )
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn blank_variables_keep_the_default() {
        assert_eq!(from(&[("rate_burst", "  ")]).map(|c| c.rate_burst), Ok(20));
    }

    #[test]
    fn invalid_numbers_are_config_errors() {
        for bad in ["-1", "ten", "1.5", "0x10", "99999999999999999999"] {
            let err = from(&[("max_body_bytes", bad)]).expect_err(bad);
            assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
            assert!(err.to_string().contains("max_body_bytes"));
        }
    }

    #[test]
    fn zero_is_rejected_where_it_would_break_the_service() {
        for name in [
            "max_text_bytes",
            "max_body_bytes",
            "rate_per_user_per_sec",
            "rate_burst",
        ] {
            assert!(
                matches!(from(&[(name, "0")]), Err(Error::Config(_))),
                "{name}"
            );
        }
        assert_eq!(
            from(&[("inline_fanout_max", "0")]).map(|c| c.inline_fanout_max),
            Ok(0)
        );
    }

    #[test]
    fn a_queue_share_over_a_hundred_percent_is_a_config_error() {
        assert!(matches!(
            from(&[("org_queue_share_percent", "101")]),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            from(&[("org_queue_share_percent", "0")]),
            Err(Error::Config(_))
        ));
        assert_eq!(
            from(&[("org_queue_share_percent", "100")]).map(|c| c.org_queue_share_percent),
            Ok(100)
        );
    }

    #[test]
    fn rate_over_u32_is_a_config_error() {
        assert!(matches!(
            from(&[("rate_burst", "4294967296")]),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn wait_poll_max_is_at_least_the_first_pause() {
        assert_eq!(
            from(&[("wait_poll_max_ms", "20")])
                .expect("20")
                .wait_poll_max_ms,
            20
        );
        assert!(matches!(
            from(&[("wait_poll_max_ms", "19")]),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn every_field_has_a_variable_name() {
        let names: Vec<&str> = Config::VARIABLES.to_vec();
        let config = from(
            &names
                .iter()
                .map(|n| (*n, if *n == "wait_poll_max_ms" { "27" } else { "7" }))
                .collect::<Vec<_>>(),
        )
        .expect("valid");
        let sevens = Config {
            max_text_bytes: 7,
            max_body_bytes: 7,
            max_directory_body_bytes: 7,
            inline_fanout_max: 7,
            max_group_members: 7,
            control_fanout_max_members: 7,
            rate_per_user_per_sec: 7,
            rate_burst: 7,
            rate_per_org_per_sec: 7,
            org_queue_share_percent: 7,
            org_queue_floor: 7,
            recall_window_secs: 7,
            presence_ttl_secs: 7,
            push_delay_ms: 7,
            push_interval_ms: 7,
            wait_poll_max_ms: 27,
        };
        assert_eq!(config, sevens);
    }
}
