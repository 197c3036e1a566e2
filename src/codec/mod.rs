//! Binary encodings: varints, frames and file headers.

pub mod chain;
pub mod frame;
pub mod header;
pub mod varint;
pub mod version;
