//! Binary encodings: varints, frames and file headers.

pub mod frame;
pub mod header;
pub mod varint;
