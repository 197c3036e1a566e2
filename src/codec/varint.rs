//! LEB128 variable-length integers and zigzag encoding.

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub fn put(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Number of bytes [`put`] writes for `v`.
#[inline]
pub fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint at `*pos`, advancing it; `None` when truncated or longer than 10 bytes.
#[inline]
pub fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Zigzag-encodes a signed value so small magnitudes stay small.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_u64_round_trips_with_the_predicted_length(v in any::<u64>()) {
            let mut buf = Vec::new();
            put(&mut buf, v);
            prop_assert_eq!(buf.len(), len(v));
            let mut pos = 0;
            prop_assert_eq!(get(&buf, &mut pos), Some(v));
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn every_i64_round_trips_through_zigzag(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn truncated_varint_is_rejected() {
        let mut pos = 0;
        assert_eq!(get(&[0x80, 0x80], &mut pos), None);
    }
}
