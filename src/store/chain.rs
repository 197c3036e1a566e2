//! The hash chains over segment files (formats 3 and 4; the hashes are in `codec::chain`):
//! a segment's chain value, and the writer's view of the active one.

use crate::codec::chain::{self, SegmentHash, GENESIS};
use crate::codec::frame::{Base, Frame};
use crate::codec::header::{BYTES_CHAINED_VERSION, CHAINED_VERSION, HEADER_LEN};

use super::segment;

/// The active segment's place in the log chain, as the writer tracks it.
#[derive(Debug, Clone)]
pub(crate) enum SegChain {
    /// A segment of a format before the chain: its events carry no links.
    Off,
    /// Format 3: the value after the last item staged (for a reopened segment: folded from
    /// its frames by the open's scan).
    Stepped([u8; 32]),
    /// Format 4: the hash of the file's bytes written so far.
    Hashed(Box<SegmentHash>),
    /// A chained segment holding no frame yet: a chain-start frame with this previous
    /// value goes first. `header` is format 4's hash of the file's header (`None` in a
    /// format-3 file).
    Starts {
        prev: [u8; 32],
        header: Option<Box<SegmentHash>>,
    },
}

impl SegChain {
    /// A new segment of this build's format whose header bytes are `header`.
    pub fn new_segment(header: &[u8], prev: Option<[u8; 32]>) -> Self {
        let mut hash = SegmentHash::default();
        hash.update(header);
        Self::Starts {
            prev: prev.unwrap_or(GENESIS),
            header: Some(Box::new(hash)),
        }
    }

    /// The state of a segment of format `version` whose complete frames end `kept` (the
    /// file from its first byte), whose format-3 frames fold to `value`, and whose
    /// predecessor's outgoing value is `prev`.
    pub fn reopened(
        version: u16,
        kept: &[u8],
        value: Option<[u8; 32]>,
        prev: Option<[u8; 32]>,
    ) -> Self {
        let prev = prev.unwrap_or(GENESIS);
        let empty = kept.len() <= HEADER_LEN;
        if version < CHAINED_VERSION {
            return Self::Off;
        }
        if version < BYTES_CHAINED_VERSION {
            return match value.filter(|_| !empty) {
                Some(v) => Self::Stepped(v),
                None => Self::Starts { prev, header: None },
            };
        }
        let mut hash = SegmentHash::default();
        hash.update(kept);
        match empty {
            true => Self::Starts {
                prev,
                header: Some(Box::new(hash)),
            },
            false => Self::Hashed(Box::new(hash)),
        }
    }

    /// The format version whose link the segment's events carry (`None`: no links).
    pub fn link_version(&self) -> Option<u16> {
        match self {
            Self::Off => None,
            Self::Stepped(_) | Self::Starts { header: None, .. } => Some(CHAINED_VERSION),
            Self::Hashed(_)
            | Self::Starts {
                header: Some(_), ..
            } => Some(BYTES_CHAINED_VERSION),
        }
    }
}

/// Folds a format-3 segment's frames, in file order, into its chain value.
pub(crate) struct Fold {
    no: u32,
    base: Base,
    /// The value so far; `None` before the chain-start frame.
    value: Option<[u8; 32]>,
}

impl Fold {
    /// A fold of segment `no` starting after `base`.
    pub fn new(no: u32, base: Base) -> Self {
        Self {
            no,
            base,
            value: None,
        }
    }

    /// Takes in one frame.
    pub fn frame(&mut self, f: &Frame<'_>) {
        match *f {
            Frame::ChainStart(prev) => {
                self.value = Some(chain::start(&prev, self.no, self.base.seq, self.base.ts));
            }
            Frame::Event(h, ..) => {
                if let Some(link) = h.link {
                    let v = self.current();
                    self.value = Some(chain::after_event(&v, h.seq, &link));
                }
            }
            Frame::Gap { first, last } => {
                let v = self.current();
                self.value = Some(chain::after_gap(&v, first, last));
            }
            Frame::Anchor { entity, seq, link } => {
                let v = self.current();
                self.value = Some(chain::after_anchor(&v, entity, seq, &link));
            }
            _ => {}
        }
    }

    /// The value so far (a segment without a chain-start frame counts from the genesis).
    pub fn current(&self) -> [u8; 32] {
        self.value
            .unwrap_or_else(|| chain::start(&GENESIS, self.no, self.base.seq, self.base.ts))
    }
}

/// The chain value of segment `no` of format `version` whose complete frames, before any
/// seal, are `bytes` (the file from its first byte).
pub(crate) fn segment_value(bytes: &[u8], base: Base, no: u32, version: u16) -> [u8; 32] {
    if version >= BYTES_CHAINED_VERSION {
        return SegmentHash::of(bytes);
    }
    let mut fold = Fold::new(no, base);
    let h = HEADER_LEN as u64;
    segment::scan(bytes, base, h, h, |_, f| fold.frame(&f));
    fold.current()
}
