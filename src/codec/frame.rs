//! The frame format of segment files.
//!
//! ```text
//! frame  := crc:u32le  len:varint  body[len]
//! crc    := mask(crc32c(len bytes ++ body))         -- covers the length too
//! body   := type:u8 fields...
//!
//! type 1  event     flags:u8 seq:varint(seq - segment base_seq)
//!                   ts:zigzag-varint(ts - segment base_ts) kind:varint
//!                   entity:varint scope:varint          (store-wide dictionary ids)
//!                   [link:8 bytes]                      if flags & HAS_LINK (format 3)
//!                   [cause:varint(seq - cause_seq)]     if flags & HAS_CAUSE
//!                   [corr:varint(seq - corr_seq)]       if flags & HAS_CORRELATION
//!                   [key:u128le]                        if flags & HAS_KEY
//!                   [reason:varint len + UTF-8]         if flags & BYPASS (written around the gates)
//!                   payload: the rest of the body
//! type 2  entity    id:varint name: rest of body       (defines a dictionary id)
//! type 3  scope     id:varint name: rest of body
//! type 4  synced    len:varint                          (bytes of this file known synced)
//! type 5  seal      last_seq:varint events:varint       (the segment is complete)
//!                   [chain:32 bytes [out:32 bytes]]     (format 3: see codec::chain)
//! type 6  gap       first:varint last:varint            (a compaction removed first..=last)
//! type 7  anchor    entity:varint seq:varint link:8     (format 3: the entity's chain goes
//!                                                        on from the link of removed `seq`)
//! type 8  chain     prev:32 bytes                       (format 3: first frame of a segment,
//!                                                        the chain value it starts from)
//! type 9  key       seq:varint key:u128le               (a compaction removed event `seq`,
//!                                                        which carried idempotency key `key`)
//! ```
//!
//! A body is never empty and its type is never 0, and the checksum is masked, so a zeroed
//! region never decodes as a frame. An event with `BATCH_CONTINUES` belongs to a batch
//! whose last event is the next event frame without that flag; recovery treats an
//! unfinished batch at the tail as torn. Every frame decodes on its own given the segment
//! header and the dictionary, so a reader can jump to any frame offset from the index.

use super::varint;

/// Frame type: an event.
pub const EVENT: u8 = 1;
/// Frame type: an entity dictionary entry.
pub const ENTITY_DEF: u8 = 2;
/// Frame type: a scope dictionary entry.
pub const SCOPE_DEF: u8 = 3;
/// Frame type: a synced-length marker.
pub const SYNC_MARK: u8 = 4;
/// Frame type: a seal (the segment is complete).
pub const SEAL: u8 = 5;
/// Frame type: events a compaction removed here (an inclusive sequence range).
pub const GAP: u8 = 6;
/// Frame type: an entity's hash chain goes on from the link of an event a compaction removed.
pub const ANCHOR: u8 = 7;
/// Frame type: the chain value a segment starts from (its first frame, format 3).
pub const CHAIN_START: u8 = 8;
/// Frame type: the idempotency key of an event a compaction removed, kept so a retry of
/// that append is still recognised.
pub const KEPT_KEY: u8 = 9;

/// Event flag: a causation delta follows.
pub const HAS_CAUSE: u8 = 1;
/// Event flag: a correlation delta follows (absent = the event is its own correlation).
pub const HAS_CORRELATION: u8 = 2;
/// Event flag: an idempotency key follows.
pub const HAS_KEY: u8 = 4;
/// Event flag: the next event frame belongs to the same batch.
pub const BATCH_CONTINUES: u8 = 8;
/// Event flag: the event was written around the policy gates; a reason follows.
pub const BYPASS: u8 = 16;
/// Event flag: the event carries its 8-byte chain link (format 3).
pub const HAS_LINK: u8 = 32;
const KNOWN_FLAGS: u8 = HAS_CAUSE | HAS_CORRELATION | HAS_KEY | BATCH_CONTINUES | BYPASS | HAS_LINK;

/// Largest frame body accepted by the decoder.
pub const MAX_BODY: u64 = 1 << 30;
/// Most bytes a frame adds around its body (length varint + checksum).
pub const MAX_OVERHEAD: usize = 5 + 4;

/// The header fields of an event frame, with absolute values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    /// Global sequence.
    pub seq: u64,
    /// Timestamp, microseconds since the epoch.
    pub ts: u64,
    /// Event kind.
    pub kind: u16,
    /// Entity dictionary id.
    pub entity: u32,
    /// Scope dictionary id.
    pub scope: u32,
    /// Sequence of the cause.
    pub cause: Option<u64>,
    /// Sequence of the correlation root (equal to `seq` for a root).
    pub correlation: u64,
    /// Idempotency key.
    pub key: Option<u128>,
    /// More events of the same batch follow.
    pub batch_continues: bool,
    /// The event's link in its entity's hash chain (format 3; see `codec::chain`).
    pub link: Option<[u8; 8]>,
}

/// Segment-wide values frames are encoded against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Base {
    /// Sequence before the segment's first event.
    pub seq: u64,
    /// Timestamp the segment's event timestamps are relative to.
    pub ts: u64,
}

/// A decoded frame borrowing from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An event, its payload, and the reason it bypassed the gates (if it did).
    Event(EventHeader, &'a [u8], Option<&'a [u8]>),
    /// A dictionary entry for an entity.
    EntityDef(u32, &'a [u8]),
    /// A dictionary entry for a scope.
    ScopeDef(u32, &'a [u8]),
    /// Bytes of the file known synced when the marker was written.
    SyncMark(u64),
    /// A compaction removed the events `first..=last` that stood here.
    Gap {
        /// First removed sequence.
        first: u64,
        /// Last removed sequence.
        last: u64,
    },
    /// The segment is complete.
    Seal {
        /// Last sequence in the segment.
        last_seq: u64,
        /// Number of events in the segment.
        events: u64,
        /// The segment's chain value (format 3).
        chain: Option<SealChain>,
    },
    /// A compaction removed the event `seq` of the entity, the last of it removed here: the
    /// entity's hash chain goes on from that event's `link`.
    Anchor {
        /// Entity dictionary id.
        entity: u32,
        /// Sequence of the removed event.
        seq: u64,
        /// Its link.
        link: [u8; 8],
    },
    /// The chain value the segment starts from: the previous segment's outgoing value.
    ChainStart([u8; 32]),
    /// A compaction removed the event `seq`, which carried the idempotency key `key`.
    KeptKey {
        /// Sequence of the removed event.
        seq: u64,
        /// Its idempotency key.
        key: u128,
    },
}

/// The chain values a format-3 seal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealChain {
    /// The chain value over this file's frames as they stand.
    pub value: [u8; 32],
    /// The value the next segment starts from: `value`, or for a segment a compaction
    /// rewrote, the value it had before (the next segment was chained to that).
    pub out: [u8; 32],
}

/// Why bytes at an offset are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes end before the frame does (a torn or zero-length tail).
    Truncated,
    /// The length field is zero or impossible.
    BadLength(u64),
    /// The checksum does not match.
    BadChecksum,
    /// The checksum matched but the body does not decode.
    BadBody(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "frame runs past the end of the file"),
            Self::BadLength(l) => write!(f, "impossible frame length {l}"),
            Self::BadChecksum => write!(f, "frame checksum mismatch"),
            Self::BadBody(why) => write!(f, "frame body does not decode: {why}"),
        }
    }
}

/// Masks a CRC so that data containing its own CRC (or zeros) does not verify by accident.
#[inline]
pub fn mask(crc: u32) -> u32 {
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn frame_crc(len_and_body: &[u8]) -> u32 {
    mask(crc32c::crc32c(len_and_body))
}

/// Appends a frame whose body is produced by `body` and is exactly `body_len` bytes long.
fn put_frame(buf: &mut Vec<u8>, body_len: usize, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    varint::put(buf, body_len as u64);
    let body_start = buf.len();
    body(buf);
    debug_assert_eq!(buf.len() - body_start, body_len);
    let crc = frame_crc(&buf[start + 4..]);
    buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Encoded size of an event frame.
pub fn event_len(base: &Base, h: &EventHeader, bypass: Option<&[u8]>, payload_len: usize) -> usize {
    let body = event_body_len(base, h, bypass, payload_len);
    varint::len(body as u64) + 4 + body
}

fn event_body_len(
    base: &Base,
    h: &EventHeader,
    bypass: Option<&[u8]>,
    payload_len: usize,
) -> usize {
    let mut n = 2
        + varint::len(h.seq.wrapping_sub(base.seq))
        + varint::len(varint::zigzag(ts_delta(base, h.ts)))
        + varint::len(h.kind.into())
        + varint::len(h.entity.into())
        + varint::len(h.scope.into())
        + payload_len;
    if let Some(c) = h.cause {
        n += varint::len(h.seq.wrapping_sub(c));
    }
    if h.correlation != h.seq {
        n += varint::len(h.seq.wrapping_sub(h.correlation));
    }
    if h.key.is_some() {
        n += 16;
    }
    if h.link.is_some() {
        n += 8;
    }
    if let Some(r) = bypass {
        n += varint::len(r.len() as u64) + r.len();
    }
    n
}

fn ts_delta(base: &Base, ts: u64) -> i64 {
    ts.wrapping_sub(base.ts) as i64
}

fn event_flags(h: &EventHeader, bypass: bool) -> u8 {
    let mut flags = if bypass { BYPASS } else { 0 };
    if h.cause.is_some() {
        flags |= HAS_CAUSE;
    }
    if h.correlation != h.seq {
        flags |= HAS_CORRELATION;
    }
    if h.key.is_some() {
        flags |= HAS_KEY;
    }
    if h.batch_continues {
        flags |= BATCH_CONTINUES;
    }
    if h.link.is_some() {
        flags |= HAS_LINK;
    }
    flags
}

/// Appends an event frame to `buf`.
pub fn put_event(
    buf: &mut Vec<u8>,
    base: &Base,
    h: &EventHeader,
    bypass: Option<&[u8]>,
    payload: &[u8],
) {
    let body_len = event_body_len(base, h, bypass, payload.len());
    put_frame(buf, body_len, |b| {
        b.push(EVENT);
        b.push(event_flags(h, bypass.is_some()));
        varint::put(b, h.seq.wrapping_sub(base.seq));
        varint::put(b, varint::zigzag(ts_delta(base, h.ts)));
        varint::put(b, h.kind.into());
        varint::put(b, h.entity.into());
        varint::put(b, h.scope.into());
        if let Some(l) = h.link {
            b.extend_from_slice(&l);
        }
        if let Some(c) = h.cause {
            varint::put(b, h.seq.wrapping_sub(c));
        }
        if h.correlation != h.seq {
            varint::put(b, h.seq.wrapping_sub(h.correlation));
        }
        if let Some(k) = h.key {
            b.extend_from_slice(&k.to_le_bytes());
        }
        if let Some(r) = bypass {
            varint::put(b, r.len() as u64);
            b.extend_from_slice(r);
        }
        b.extend_from_slice(payload);
    });
}

/// Appends a dictionary frame (`ENTITY_DEF` or `SCOPE_DEF`).
pub fn put_def(buf: &mut Vec<u8>, ty: u8, id: u32, name: &[u8]) {
    let body_len = 1 + varint::len(id.into()) + name.len();
    put_frame(buf, body_len, |b| {
        b.push(ty);
        varint::put(b, id.into());
        b.extend_from_slice(name);
    });
}

/// Appends a synced-length marker.
pub fn put_sync_mark(buf: &mut Vec<u8>, synced_len: u64) {
    put_frame(buf, 1 + varint::len(synced_len), |b| {
        b.push(SYNC_MARK);
        varint::put(b, synced_len);
    });
}

/// Appends a gap frame: a compaction removed the events `first..=last` here.
pub fn put_gap(buf: &mut Vec<u8>, first: u64, last: u64) {
    put_frame(buf, 1 + varint::len(first) + varint::len(last), |b| {
        b.push(GAP);
        varint::put(b, first);
        varint::put(b, last);
    });
}

/// Appends a seal frame (with the segment's chain values from format 3 on).
pub fn put_seal(buf: &mut Vec<u8>, last_seq: u64, events: u64, chain: Option<SealChain>) {
    let extra = match chain {
        None => 0,
        Some(c) if c.out == c.value => 32,
        Some(_) => 64,
    };
    let len = 1 + varint::len(last_seq) + varint::len(events) + extra;
    put_frame(buf, len, |b| {
        b.push(SEAL);
        varint::put(b, last_seq);
        varint::put(b, events);
        if let Some(c) = chain {
            b.extend_from_slice(&c.value);
            if c.out != c.value {
                b.extend_from_slice(&c.out);
            }
        }
    });
}

/// Appends an anchor frame: the entity's chain goes on from `link`, the link of the removed
/// event `seq`.
pub fn put_anchor(buf: &mut Vec<u8>, entity: u32, seq: u64, link: [u8; 8]) {
    let len = 1 + varint::len(entity.into()) + varint::len(seq) + 8;
    put_frame(buf, len, |b| {
        b.push(ANCHOR);
        varint::put(b, entity.into());
        varint::put(b, seq);
        b.extend_from_slice(&link);
    });
}

/// Appends a kept-key frame: the removed event `seq` carried the idempotency key `key`.
pub fn put_kept_key(buf: &mut Vec<u8>, seq: u64, key: u128) {
    put_frame(buf, 1 + varint::len(seq) + 16, |b| {
        b.push(KEPT_KEY);
        varint::put(b, seq);
        b.extend_from_slice(&key.to_le_bytes());
    });
}

/// Appends the chain-start frame of a format-3 segment.
pub fn put_chain_start(buf: &mut Vec<u8>, prev: &[u8; 32]) {
    put_frame(buf, 33, |b| {
        b.push(CHAIN_START);
        b.extend_from_slice(prev);
    });
}

/// Decodes the frame starting at `buf[0]`; returns it and its total encoded length.
pub fn decode<'a>(buf: &'a [u8], base: &Base) -> Result<(Frame<'a>, usize), FrameError> {
    let (body, end) = verify(buf)?;
    Ok((decode_body(body, base)?, end))
}

/// Checks the length and checksum of the frame at the start of `buf` without decoding its
/// body; returns the body and the frame's total length.
pub fn verify(buf: &[u8]) -> Result<(&[u8], usize), FrameError> {
    let stored = buf.get(..4).ok_or(FrameError::Truncated)?;
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let mut pos = 4;
    let body_len = varint::get(buf, &mut pos).ok_or(FrameError::Truncated)?;
    if body_len == 0 || body_len > MAX_BODY {
        return Err(FrameError::BadLength(body_len));
    }
    let end = pos as u64 + body_len;
    if end > buf.len() as u64 {
        return Err(FrameError::Truncated);
    }
    let end = end as usize;
    if frame_crc(&buf[4..end]) != stored {
        return Err(FrameError::BadChecksum);
    }
    Ok((&buf[pos..end], end))
}

/// The total length a frame at the start of `buf` claims (checksum not verified), if its
/// length field is readable.
pub fn claimed_len(buf: &[u8]) -> Option<u64> {
    let mut pos = 4;
    let body = varint::get(buf, &mut pos)?;
    Some(pos as u64 + body)
}

fn decode_body<'a>(body: &'a [u8], base: &Base) -> Result<Frame<'a>, FrameError> {
    let mut pos = 1;
    let v = |pos: &mut usize| varint::get(body, pos).ok_or(FrameError::BadBody("short field"));
    match body[0] {
        EVENT => decode_event(body, base),
        ty @ (ENTITY_DEF | SCOPE_DEF) => {
            let id =
                u32::try_from(v(&mut pos)?).map_err(|_| FrameError::BadBody("dictionary id"))?;
            let name = &body[pos..];
            Ok(if ty == ENTITY_DEF {
                Frame::EntityDef(id, name)
            } else {
                Frame::ScopeDef(id, name)
            })
        }
        SYNC_MARK => Ok(Frame::SyncMark(v(&mut pos)?)),
        GAP => {
            let first = v(&mut pos)?;
            let last = v(&mut pos)?;
            if last < first {
                return Err(FrameError::BadBody("gap ends before it starts"));
            }
            Ok(Frame::Gap { first, last })
        }
        SEAL => {
            let last_seq = v(&mut pos)?;
            let events = v(&mut pos)?;
            let chain = match &body[pos..] {
                [] => None,
                rest if rest.len() == 32 => Some(SealChain {
                    value: hash32(rest),
                    out: hash32(rest),
                }),
                rest if rest.len() == 64 => Some(SealChain {
                    value: hash32(&rest[..32]),
                    out: hash32(&rest[32..]),
                }),
                _ => return Err(FrameError::BadBody("seal chain values")),
            };
            Ok(Frame::Seal {
                last_seq,
                events,
                chain,
            })
        }
        ANCHOR => {
            let entity =
                u32::try_from(v(&mut pos)?).map_err(|_| FrameError::BadBody("anchor entity"))?;
            let seq = v(&mut pos)?;
            let link = match &body[pos..] {
                rest if rest.len() == 8 => link8(rest),
                _ => return Err(FrameError::BadBody("anchor link")),
            };
            Ok(Frame::Anchor { entity, seq, link })
        }
        CHAIN_START => match &body[1..] {
            rest if rest.len() == 32 => Ok(Frame::ChainStart(hash32(rest))),
            _ => Err(FrameError::BadBody("chain start value")),
        },
        KEPT_KEY => {
            let seq = v(&mut pos)?;
            let key = body
                .get(pos..)
                .and_then(|rest| <[u8; 16]>::try_from(rest).ok())
                .ok_or(FrameError::BadBody("kept key"))?;
            Ok(Frame::KeptKey {
                seq,
                key: u128::from_le_bytes(key),
            })
        }
        _ => Err(FrameError::BadBody("unknown frame type")),
    }
}

fn decode_event<'a>(body: &'a [u8], base: &Base) -> Result<Frame<'a>, FrameError> {
    let flags = *body.get(1).ok_or(FrameError::BadBody("missing flags"))?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FrameError::BadBody("unknown event flags"));
    }
    let mut pos = 2;
    let mut v = || varint::get(body, &mut pos).ok_or(FrameError::BadBody("short field"));
    let seq = base.seq.wrapping_add(v()?);
    let ts = base.ts.wrapping_add(varint::unzigzag(v()?) as u64);
    let kind = u16::try_from(v()?).map_err(|_| FrameError::BadBody("kind"))?;
    let entity = u32::try_from(v()?).map_err(|_| FrameError::BadBody("entity id"))?;
    let scope = u32::try_from(v()?).map_err(|_| FrameError::BadBody("scope id"))?;
    let link = if flags & HAS_LINK != 0 {
        let bytes = body
            .get(pos..pos + 8)
            .ok_or(FrameError::BadBody("short link"))?;
        pos += 8;
        Some(link8(bytes))
    } else {
        None
    };
    let mut v = || varint::get(body, &mut pos).ok_or(FrameError::BadBody("short field"));
    let cause = if flags & HAS_CAUSE != 0 {
        Some(back_ref(seq, v()?)?)
    } else {
        None
    };
    let correlation = if flags & HAS_CORRELATION != 0 {
        back_ref(seq, v()?)?
    } else {
        seq
    };
    let key = if flags & HAS_KEY != 0 {
        let bytes = body
            .get(pos..pos + 16)
            .ok_or(FrameError::BadBody("short key"))?;
        pos += 16;
        let mut k = [0u8; 16];
        k.copy_from_slice(bytes);
        Some(u128::from_le_bytes(k))
    } else {
        None
    };
    let header = EventHeader {
        seq,
        ts,
        kind,
        entity,
        scope,
        cause,
        correlation,
        key,
        batch_continues: flags & BATCH_CONTINUES != 0,
        link,
    };
    let bypass = if flags & BYPASS != 0 {
        let len = varint::get(body, &mut pos).ok_or(FrameError::BadBody("short bypass reason"))?;
        let end = pos
            .checked_add(usize::try_from(len).map_err(|_| FrameError::BadBody("bypass reason"))?);
        let reason = end
            .and_then(|e| body.get(pos..e))
            .ok_or(FrameError::BadBody("short bypass reason"))?;
        pos += reason.len();
        Some(reason)
    } else {
        None
    };
    Ok(Frame::Event(header, &body[pos..], bypass))
}

/// The first 32 bytes of `b` (the caller checked the length).
fn hash32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&b[..32]);
    out
}

/// The first 8 bytes of `b` (the caller checked the length).
fn link8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[..8]);
    out
}

/// A reference to an earlier event, stored as a positive distance back from `seq`.
fn back_ref(seq: u64, delta: u64) -> Result<u64, FrameError> {
    if delta == 0 || delta > seq {
        return Err(FrameError::BadBody("causal reference does not point back"));
    }
    Ok(seq - delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(seq: u64) -> EventHeader {
        EventHeader {
            seq,
            ts: 1_700_000_000_000_000,
            kind: 0x0102,
            entity: 4711,
            scope: 3,
            cause: Some(seq - 10_000),
            correlation: seq - 20_000,
            key: None,
            batch_continues: false,
            link: Some(*b"linklink"),
        }
    }

    #[test]
    fn zeroed_bytes_never_decode_as_a_frame() {
        for n in 0..64 {
            assert!(decode(&vec![0u8; n], &Base::default()).is_err());
        }
    }

    #[test]
    fn reference_event_frame_is_compact() {
        let base = Base {
            seq: 0,
            ts: 1_700_000_000_000_000 - 5_000_000,
        };
        let mut buf = Vec::new();
        put_event(&mut buf, &base, &header(500_000), None, &[7u8; 67]);
        assert_eq!(buf.len(), event_len(&base, &header(500_000), None, 67));
        assert!(buf.len() <= 100, "{} bytes", buf.len());
    }

    #[test]
    fn a_flipped_bit_anywhere_is_detected() {
        let base = Base::default();
        let mut buf = Vec::new();
        put_event(&mut buf, &base, &header(50_000), Some(b"why"), b"payload");
        for i in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let res = decode(&bad, &base);
            assert!(
                res.is_err() || res.map(|(_, n)| n != buf.len()).unwrap_or(true),
                "bit {i}"
            );
        }
    }

    proptest! {
        #[test]
        fn event_frames_round_trip(seq in 1u64..1 << 40, back in 1u64..1000, ts in any::<u64>(),
                                   kind in any::<u16>(), key in proptest::option::of(any::<u128>()),
                                   payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let base = Base { seq: seq.saturating_sub(1000), ts: 1_000 };
            let h = EventHeader { seq, ts, kind, entity: 9, scope: 1,
                cause: (seq > back).then(|| seq - back), correlation: seq, key, batch_continues: true,
                link: (seq % 2 == 0).then_some([seq as u8; 8]) };
            let mut buf = Vec::new();
            put_event(&mut buf, &base, &h, None, &payload);
            let (frame, n) = decode(&buf, &base).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(n, buf.len());
            prop_assert_eq!(frame, Frame::Event(h, &payload[..], None));
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes, &Base::default());
        }
    }
}
