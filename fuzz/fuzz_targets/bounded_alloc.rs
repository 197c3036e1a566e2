//! The system allocator, refusing any single allocation of 64 MiB or more: an input whose
//! length fields claim a huge size must be refused, not allocated. A refusal aborts, which
//! libFuzzer reports as a crash with the input kept.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

const LIMIT: usize = 64 << 20;

pub struct Bounded;

fn refuse() -> ! {
    // No formatting: the allocator must not allocate.
    let _ = std::io::stderr().write_all(b"allocation of 64 MiB or more: sized by untrusted input\n");
    std::process::abort()
}

// SAFETY: every call is passed unchanged to the system allocator, or the process aborts
// before it is made.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LIMIT {
            refuse();
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LIMIT {
            refuse();
        }
        // SAFETY: as for `alloc`; `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;
