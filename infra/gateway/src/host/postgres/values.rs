//! Values between the interface and `tokio-postgres`, converted as Spin converts
//! them: parameters by their interface type, columns by their server type.

use std::error::Error as StdError;

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::host::spin::postgres::postgres::{
    Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};

/// A parameter for `tokio-postgres`, as Spin converts them.
pub(super) fn parameter(value: ParameterValue) -> Result<Box<dyn ToSql + Sync + Send>, String> {
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(v),
        ParameterValue::Int8(v) => Box::new(v),
        ParameterValue::Int16(v) => Box::new(v),
        ParameterValue::Int32(v) => Box::new(v),
        ParameterValue::Int64(v) => Box::new(v),
        ParameterValue::Floating32(v) => Box::new(v),
        ParameterValue::Floating64(v) => Box::new(v),
        ParameterValue::Str(v) => Box::new(v),
        ParameterValue::Binary(v) => Box::new(v),
        ParameterValue::DbNull => Box::new(Null),
        other => {
            return Err(format!(
                "{} parameters are not supported by this gateway (send it as a string and cast it in SQL)",
                parameter_kind(&other)
            ));
        }
    })
}

fn parameter_kind(value: &ParameterValue) -> &'static str {
    match value {
        ParameterValue::Date(_) => "date",
        ParameterValue::Time(_) => "time",
        ParameterValue::Datetime(_) => "datetime",
        ParameterValue::Timestamp(_) => "timestamp",
        ParameterValue::Uuid(_) => "uuid",
        ParameterValue::Jsonb(_) => "jsonb",
        ParameterValue::Decimal(_) => "decimal",
        ParameterValue::RangeInt32(_)
        | ParameterValue::RangeInt64(_)
        | ParameterValue::RangeDecimal(_) => "range",
        ParameterValue::ArrayInt32(_)
        | ParameterValue::ArrayInt64(_)
        | ParameterValue::ArrayDecimal(_)
        | ParameterValue::ArrayStr(_) => "array",
        ParameterValue::Interval(_) => "interval",
        _ => "these",
    }
}

/// `NULL` for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column's raw binary value, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::NUMERIC => DbDataType::Decimal,
        _ => DbDataType::Other(ty.name().to_string()),
    }
}

fn value(ty: &Type, raw: Option<&[u8]>) -> Result<DbValue, Box<dyn StdError + Sync + Send>> {
    let Some(raw) = raw else {
        return Ok(DbValue::DbNull);
    };
    Ok(match *ty {
        Type::BOOL => DbValue::Boolean(bool::from_sql(ty, raw)?),
        Type::CHAR => DbValue::Int8(i8::from_sql(ty, raw)?),
        Type::INT2 => DbValue::Int16(i16::from_sql(ty, raw)?),
        Type::INT4 => DbValue::Int32(i32::from_sql(ty, raw)?),
        Type::INT8 => DbValue::Int64(i64::from_sql(ty, raw)?),
        Type::FLOAT4 => DbValue::Floating32(f32::from_sql(ty, raw)?),
        Type::FLOAT8 => DbValue::Floating64(f64::from_sql(ty, raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            DbValue::Str(String::from_sql(ty, raw)?)
        }
        Type::BYTEA => DbValue::Binary(raw.to_vec()),
        Type::NUMERIC => DbValue::Decimal(numeric(raw)?),
        Type::VOID => DbValue::DbNull,
        _ => DbValue::Unsupported(raw.to_vec()),
    })
}

/// The decimal text of a `numeric` in PostgreSQL's binary format: digit count,
/// weight (of the first base-10000 digit), sign, display scale, digits.
fn numeric(raw: &[u8]) -> Result<String, Box<dyn StdError + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn StdError + Sync + Send>> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits.max(0) as usize)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<_>, _>>()?;
    let digit = |pos: i32| -> i16 {
        // `pos` counts base-10000 digits from the first one (weight `weight`).
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for w in 0..=i32::from(weight) {
            let d = digit(w);
            if w == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::new();
        let mut pos = i32::from(weight) + 1;
        while (fraction.len() as i16) < dscale {
            fraction.push_str(&format!("{:04}", digit(pos)));
            pos += 1;
        }
        fraction.truncate(dscale as usize);
        out.push_str(&fraction);
    }
    Ok(out)
}

#[allow(
    clippy::result_large_err,
    reason = "the interface's own error type, returned to the guest as is"
)]
pub(super) fn row_set(rows: &[tokio_postgres::Row]) -> Result<RowSet, Error> {
    let Some(first) = rows.first() else {
        return Ok(RowSet {
            columns: Vec::new(),
            rows: Vec::new(),
        });
    };
    let columns = first
        .columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            data_type: data_type(c.type_()),
        })
        .collect();
    let rows = rows
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    let ty = row.columns()[i].type_();
                    let raw: Option<Raw<'_>> = row.try_get(i).map_err(|e| e.to_string())?;
                    value(ty, raw.map(|r| r.0)).map_err(|e| format!("column {i} ({ty}): {e}"))
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(Error::ValueConversionFailed)?;
    Ok(RowSet { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_are_decoded_to_their_decimal_text() {
        fn encode(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
            let mut out = Vec::new();
            for w in [ndigits, weight, sign as i16, dscale] {
                out.extend(w.to_be_bytes());
            }
            for d in digits {
                out.extend(d.to_be_bytes());
            }
            out
        }
        // 12345.678 = 1|2345|6780, weight 1, scale 3
        assert_eq!(
            numeric(&encode(3, 1, 0, 3, &[1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        assert_eq!(numeric(&encode(1, 0, 0x4000, 0, &[42])).unwrap(), "-42");
        // 0.0005 = weight -1, digit 5
        assert_eq!(numeric(&encode(1, -1, 0, 4, &[5])).unwrap(), "0.0005");
        // 10000 = 1 with weight 1 and no trailing digit stored
        assert_eq!(numeric(&encode(1, 1, 0, 0, &[1])).unwrap(), "10000");
        assert_eq!(numeric(&encode(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert!(numeric(&[0, 1]).is_err());
    }
}
