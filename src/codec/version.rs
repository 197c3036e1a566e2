//! The schema version of a payload. A version-1 payload is plain MessagePack; a later
//! version is written behind a 4-byte prefix: `0xC1` (the one byte MessagePack never
//! uses, so no plain payload starts with it), `v`, and the version as a big-endian `u16`.

/// The first bytes of a versioned payload (then the version, big-endian).
const PREFIX: [u8; 2] = [0xC1, b'v'];
/// Prefix and version.
pub const HEADER: usize = 4;

/// The schema version and the MessagePack body of a stored payload.
pub fn split(payload: &[u8]) -> (u16, &[u8]) {
    match payload {
        [a, b, hi, lo, body @ ..] if [*a, *b] == PREFIX => (u16::from_be_bytes([*hi, *lo]), body),
        _ => (1, payload),
    }
}

/// The bytes that begin a payload of `version` (none for version 1).
pub fn header(version: u16) -> Option<[u8; HEADER]> {
    let [hi, lo] = version.to_be_bytes();
    (version > 1).then_some([PREFIX[0], PREFIX[1], hi, lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_payload_is_plain_and_a_later_one_carries_its_version() {
        assert_eq!(header(1), None);
        assert_eq!(header(3), Some([0xC1, b'v', 0, 3]));
        assert_eq!(split(&[0x91, 0x01]), (1, &[0x91u8, 0x01][..]));
        assert_eq!(split(&[0xC1, b'v', 1, 2, 0x01]), (258, &[0x01u8][..]));
        assert_eq!(
            split(&[0xC1, b'v', 1]),
            (1, &[0xC1u8, b'v', 1][..]),
            "too short"
        );
    }
}
