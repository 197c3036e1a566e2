//! Byte sizes written as integers or with units: `"16 MiB"` is 2^20-based, `"16 MB"`
//! 10^6-based, `"512 B"` and `512` are bytes.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Size(pub u64);

const UNITS: [(&str, u64); 9] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

impl Size {
    /// Parses `"16 MiB"`, `"16MB"`, `"4096"`, `"1.5 GiB"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = (t[..split].trim(), t[split..].trim());
        let mult = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(unit))
                .map(|(_, m)| *m)
                .ok_or_else(|| format!("`{text}`: unknown unit `{unit}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"))?
        };
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a size like \"16 MiB\" or 16777216"))?;
        let bytes = value * mult as f64;
        if !(0.0..=u64::MAX as f64).contains(&bytes) || bytes.fract() != 0.0 {
            return Err(format!("`{text}` is not a whole number of bytes"));
        }
        Ok(Self(bytes as u64))
    }

    /// `16 MiB`, `1 GiB`, `4096 B`: the largest binary unit that divides it exactly.
    pub fn binary(self) -> String {
        for (u, m) in UNITS.iter().filter(|(u, _)| u.contains('i')) {
            if self.0 >= *m && self.0.is_multiple_of(*m) {
                return format!("{} {u}", self.0 / m);
            }
        }
        format!("{} B", self.0)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.binary())
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 >= 1024 && self.0.is_multiple_of(1024) {
            s.serialize_str(&self.binary())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = Size;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size: an integer number of bytes or a string like \"16 MiB\"")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
        u64::try_from(v)
            .map(Size)
            .map_err(|_| E::custom("a size cannot be negative"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
        Ok(Size(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
        Size::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_units_differ() {
        assert_eq!(Size::parse("16 MiB"), Ok(Size(16 << 20)));
        assert_eq!(Size::parse("16 MB"), Ok(Size(16_000_000)));
        assert_eq!(Size::parse("16MiB"), Ok(Size(16 << 20)));
        assert_eq!(Size::parse("4096"), Ok(Size(4096)));
        assert_eq!(Size::parse("1.5 KiB"), Ok(Size(1536)));
        assert!(Size::parse("16 furlongs").is_err());
        assert!(Size::parse("-3 MiB").is_err());
        assert_eq!(Size(1 << 30).binary(), "1 GiB");
        assert_eq!(Size(1000).binary(), "1000 B");
    }
}
