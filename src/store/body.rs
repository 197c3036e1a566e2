//! The bytes of one queued event — entity name, scope name, encoded payload — in one
//! buffer that lives inside the command itself when it is small.
//!
//! A queued append crosses from the producer's thread to the writer's. Strings and a
//! payload `Vec` per event would be allocated on one thread and freed on the other, which
//! costs a contended allocator lock per event; a typical event (names of a few dozen bytes,
//! a payload of a hundred) travels inline instead and allocates nothing.

use std::io;

/// Bytes kept inline before the body moves to the heap.
pub(crate) const INLINE: usize = 184;

#[derive(Clone)]
enum Bytes {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

/// Entity, scope and payload bytes, in that order.
#[derive(Clone)]
pub(crate) struct Body {
    entity_len: u32,
    scope_len: u32,
    bytes: Bytes,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("entity", &self.entity())
            .field("scope", &self.scope())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

impl Body {
    /// Starts a body with the two names; the payload follows through [`io::Write`].
    /// (Names past 4 GiB are cut there; the writer rejects any name longer than
    /// [`crate::event::MAX_NAME_BYTES`].)
    pub fn new(entity: &str, scope: &str) -> Self {
        let entity = cut(entity);
        let scope = cut(scope);
        let mut body = Self {
            entity_len: entity.len() as u32,
            scope_len: scope.len() as u32,
            bytes: Bytes::Inline {
                len: 0,
                buf: [0; INLINE],
            },
        };
        body.extend(entity.as_bytes());
        body.extend(scope.as_bytes());
        body
    }

    /// A body with an already encoded payload.
    pub fn with_payload(entity: &str, scope: &str, payload: &[u8]) -> Self {
        let mut body = Self::new(entity, scope);
        body.extend(payload);
        body
    }

    fn all(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Inline { len, buf } => &buf[..usize::from(*len)],
            Bytes::Heap(v) => v,
        }
    }

    fn extend(&mut self, more: &[u8]) {
        match &mut self.bytes {
            Bytes::Inline { len, buf } => {
                let at = usize::from(*len);
                match buf.get_mut(at..at + more.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(more);
                        *len = (at + more.len()) as u8;
                    }
                    None => {
                        let mut v = Vec::with_capacity((at + more.len()).max(2 * INLINE));
                        v.extend_from_slice(&buf[..at]);
                        v.extend_from_slice(more);
                        self.bytes = Bytes::Heap(v);
                    }
                }
            }
            Bytes::Heap(v) => v.extend_from_slice(more),
        }
    }

    /// The entity name.
    pub fn entity(&self) -> &str {
        self.name(0, self.entity_len as usize)
    }

    /// The scope name.
    pub fn scope(&self) -> &str {
        let start = self.entity_len as usize;
        self.name(start, start + self.scope_len as usize)
    }

    fn name(&self, start: usize, end: usize) -> &str {
        match self.all().get(start..end) {
            // SAFETY: bytes `start..end` are exactly one name, copied whole from a `&str`
            // (cut only at a char boundary) and never modified afterwards: valid UTF-8.
            Some(b) => unsafe { std::str::from_utf8_unchecked(b) },
            None => "",
        }
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        let start = self.entity_len as usize + self.scope_len as usize;
        self.all().get(start..).unwrap_or(&[])
    }
}

/// `name` cut to at most `u32::MAX` bytes at a char boundary.
fn cut(name: &str) -> &str {
    let mut end = name.len().min(u32::MAX as usize);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl io::Write for Body {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_small_body_keeps_names_and_payload_inline() {
        let mut b = Body::new("order:42", "tenant-3");
        b.write_all(&[1, 2, 3]).ok();
        assert!(matches!(b.bytes, Bytes::Inline { .. }));
        assert_eq!(
            (b.entity(), b.scope(), b.payload()),
            ("order:42", "tenant-3", &[1u8, 2, 3][..])
        );
    }

    #[test]
    fn a_body_growing_past_the_inline_room_moves_to_the_heap_intact() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut b = Body::new("é-entity", "scope");
        for chunk in payload.chunks(7) {
            b.write_all(chunk).ok();
        }
        assert!(matches!(b.bytes, Bytes::Heap(_)));
        assert_eq!(b.entity(), "é-entity");
        assert_eq!(b.scope(), "scope");
        assert_eq!(b.payload(), &payload[..]);
    }
}
