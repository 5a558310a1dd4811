//! [`Seq`]: a position in one user's stream.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A position in a user's stream: 0 means "before the first entry", entries start at 1.
/// Never negative; fits SQL `INTEGER`/`BIGINT` as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Seq(i64);

impl Seq {
    /// The start of every stream.
    pub const ZERO: Seq = Seq(0);

    /// `value` as a seq; negative values are a bad request.
    pub fn new(value: i64) -> Result<Seq, Error> {
        if value < 0 {
            Err(Error::BadRequest("seq must not be negative".into()))
        } else {
            Ok(Seq(value))
        }
    }

    /// Parses a query-string value: ASCII digits only (no sign, no spaces), at most
    /// `i64::MAX`.
    pub fn parse(s: &str) -> Result<Seq, Error> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::BadRequest(
                "seq must be a non-negative integer".into(),
            ));
        }
        s.parse::<i64>()
            .map(Seq)
            .map_err(|_| Error::BadRequest("seq is too large".into()))
    }

    /// The value, for SQL and arithmetic.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for Seq {
    type Err = Error;

    fn from_str(s: &str) -> Result<Seq, Error> {
        Seq::parse(s)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Seq> for i64 {
    fn from(seq: Seq) -> i64 {
        seq.0
    }
}

impl Serialize for Seq {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Seq, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Seq::new(value).map_err(|_| D::Error::custom("seq must not be negative"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_parses_plain_digits() {
        assert_eq!(Seq::parse("0").map(Seq::get), Ok(0));
        assert_eq!(Seq::parse("0042").map(Seq::get), Ok(42));
        assert_eq!(
            Seq::parse("9223372036854775807").map(Seq::get),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn seq_rejects_signs_spaces_fractions_and_overflow() {
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "0x10",
            "9223372036854775808",
            "abc",
        ] {
            assert_eq!(
                Seq::parse(bad).map_err(|e| e.code()),
                Err("bad_request"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seq_new_rejects_negative_values() {
        assert!(Seq::new(-1).is_err());
        assert_eq!(Seq::new(7).map(Seq::get), Ok(7));
    }

    #[test]
    fn seq_json_round_trips_as_a_number_and_rejects_negatives_and_fractions() {
        assert_eq!(serde_json::to_string(&Seq(17)).expect("serializes"), "17");
        assert_eq!(serde_json::from_str::<Seq>("17").expect("parses"), Seq(17));
        assert!(serde_json::from_str::<Seq>("-1").is_err());
        assert!(serde_json::from_str::<Seq>("1.5").is_err());
        assert!(serde_json::from_str::<Seq>("\"1\"").is_err());
        assert!(serde_json::from_str::<Seq>("9223372036854775808").is_err());
    }

    #[test]
    fn seqs_order_numerically() {
        assert!(Seq(9) < Seq(10));
        assert_eq!(Seq::default(), Seq::ZERO);
    }
}
