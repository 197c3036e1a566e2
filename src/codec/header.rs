//! The 64-byte header at the start of every batpak file.
//!
//! ```text
//! 0..6    magic "BATPAK"
//! 6..8    file kind: "SG" segment, "CK" index checkpoint, "ID" store identity
//! 8..10   format version (u16 le)
//! 10..16  reserved, zero
//! 16..24  store id (u64 le), made when the store is created
//! 24..32  number: segment number / checkpoint generation
//! 32..40  base sequence: the sequence before the first event of a segment
//! 40..48  base timestamp of a segment (µs since the epoch)
//! 48..60  reserved, zero
//! 60..64  masked crc32c of bytes 0..60
//! ```

use super::frame::mask;

/// Size of every file header.
pub const HEADER_LEN: usize = 64;
/// The format version this build writes and the newest it reads. Version 2 changed no
/// byte layout, only a promise: a roll creates the next segment before it seals the
/// current one, so a sealed newest segment of version 2 means a file is missing. Version 3
/// adds the hash chains (`codec::chain`): a link in every event, a chain-start frame first
/// in every segment, chain values in the seal. Version 4 keeps that layout and changes what
/// is hashed: an event's link is XXH3 and a segment's chain value is one BLAKE3 over the
/// file's bytes (see `codec::chain`). Files of versions 1 and 2 are read with their own rules
/// and are not chained; files of version 3 are verified with version 3's hashes.
pub const FORMAT_VERSION: u16 = 4;
/// The first format version whose segments are chained.
pub const CHAINED_VERSION: u16 = 3;
/// The first format version whose chain value hashes the segment's bytes.
pub const BYTES_CHAINED_VERSION: u16 = 4;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A segment of the event log.
    Segment,
    /// An index checkpoint.
    Checkpoint,
    /// The store identity file.
    Identity,
}

impl FileKind {
    fn tag(self) -> [u8; 2] {
        match self {
            Self::Segment => *b"SG",
            Self::Checkpoint => *b"CK",
            Self::Identity => *b"ID",
        }
    }
}

/// A decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// File kind.
    pub kind: FileKind,
    /// Format version.
    pub version: u16,
    /// Store id.
    pub store_id: u64,
    /// Segment number / checkpoint generation.
    pub number: u64,
    /// Sequence before the first event (segments).
    pub base_seq: u64,
    /// Base timestamp (segments).
    pub base_ts: u64,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 64 bytes.
    Short,
    /// Not a batpak file, or a different kind of batpak file.
    BadMagic,
    /// The checksum does not match.
    BadChecksum,
    /// Written by a newer format version.
    Version(u16),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short => write!(f, "file is shorter than its 64-byte header"),
            Self::BadMagic => write!(f, "not a batpak file of the expected kind"),
            Self::BadChecksum => write!(f, "header checksum mismatch"),
            Self::Version(v) => write!(f, "format version {v} is newer than {FORMAT_VERSION}"),
        }
    }
}

impl FileHeader {
    /// A header of the current format version.
    pub fn new(kind: FileKind, store_id: u64, number: u64, base_seq: u64, base_ts: u64) -> Self {
        Self {
            kind,
            version: FORMAT_VERSION,
            store_id,
            number,
            base_seq,
            base_ts,
        }
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..6].copy_from_slice(b"BATPAK");
        b[6..8].copy_from_slice(&self.kind.tag());
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[16..24].copy_from_slice(&self.store_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.number.to_le_bytes());
        b[32..40].copy_from_slice(&self.base_seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.base_ts.to_le_bytes());
        let crc = mask(crc32c::crc32c(&b[..60]));
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header of the expected kind.
    pub fn decode(bytes: &[u8], kind: FileKind) -> Result<Self, HeaderError> {
        let b = bytes.get(..HEADER_LEN).ok_or(HeaderError::Short)?;
        if &b[0..6] != b"BATPAK" || b[6..8] != kind.tag() {
            return Err(HeaderError::BadMagic);
        }
        if mask(crc32c::crc32c(&b[..60])).to_le_bytes() != b[60..64] {
            return Err(HeaderError::BadChecksum);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version > FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        let u = |r: std::ops::Range<usize>| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[r]);
            u64::from_le_bytes(a)
        };
        Ok(Self {
            kind,
            version,
            store_id: u(16..24),
            number: u(24..32),
            base_seq: u(32..40),
            base_ts: u(40..48),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_other_kinds_and_newer_versions() {
        let h = FileHeader::new(FileKind::Segment, 42, 7, 1000, 99);
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b, FileKind::Segment), Ok(h));
        assert_eq!(
            FileHeader::decode(&b, FileKind::Checkpoint),
            Err(HeaderError::BadMagic)
        );
        let mut newer = h;
        newer.version = FORMAT_VERSION + 1;
        assert_eq!(
            FileHeader::decode(&newer.encode(), FileKind::Segment),
            Err(HeaderError::Version(FORMAT_VERSION + 1))
        );
        assert_eq!(
            FileHeader::decode(&[0u8; 64], FileKind::Segment),
            Err(HeaderError::BadMagic)
        );
    }
}
