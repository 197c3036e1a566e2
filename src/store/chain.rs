//! The hash chains over segment files (format 3; the hashes are in `codec::chain`): a
//! segment's chain value folded from its frames, and the writer's view of the active one.

use crate::codec::chain::{self, GENESIS};
use crate::codec::frame::{Base, Frame};
use crate::codec::header::HEADER_LEN;

use super::segment;

/// The active segment's place in the log chain, as the writer tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegChain {
    /// A segment of a format before the chain: its events carry no links.
    Off,
    /// The value after the last item staged (for a reopened segment: folded from its
    /// frames by the open's scan).
    Running([u8; 32]),
    /// A chained segment holding no frame yet: a chain-start frame with this previous
    /// value goes first.
    Starts([u8; 32]),
}

impl SegChain {
    /// The state of a segment of format `version` whose frames fold to `value` (`None`:
    /// it holds no frame yet) and whose predecessor's outgoing value is `prev`.
    pub fn reopened(version: u16, value: Option<[u8; 32]>, prev: Option<[u8; 32]>) -> Self {
        match value {
            _ if version < crate::codec::header::CHAINED_VERSION => Self::Off,
            Some(v) => Self::Running(v),
            None => Self::Starts(prev.unwrap_or(GENESIS)),
        }
    }
}

/// Folds a segment's frames, in file order, into its chain value.
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

/// The chain value of segment `no` over its complete frames.
pub(crate) fn segment_value(bytes: &[u8], base: Base, no: u32) -> [u8; 32] {
    let mut fold = Fold::new(no, base);
    let h = HEADER_LEN as u64;
    segment::scan(bytes, base, h, h, |_, f| fold.frame(&f));
    fold.current()
}
