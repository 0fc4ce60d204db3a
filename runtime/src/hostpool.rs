//! Host buffer pool (memory, host tier): a global allocator that keeps freed large host
//! buffers and hands them out again. Input: the process's allocations; output: the same memory
//! without a round trip to the OS.
//!
//! Why: the OS hands out a large buffer (mmap) untouched and zeroes each page on its first
//! write, so a job that makes a fresh 800 MB output per step spends about as long in page
//! faults as in its kernel, and the page allocator can stall on compaction besides. CuPy's
//! memory pool keeps device memory for the same reason; this pool keeps host memory. Fused CPU
//! kernels allocate their outputs uninitialized (they write every element), so a pooled buffer
//! is reused as it is, never zeroed.
//!
//! A process opts in with `#[global_allocator] static A: tessera::PooledAlloc =
//! tessera::PooledAlloc;` (the `tessera` CLI and the benches do). Only buffers of at least
//! [`POOL_MIN`] bytes with alignment up to 16 are pooled; everything else goes straight to the
//! system allocator. The pool holds at most [`limit`] bytes (default: an eighth of physical
//! memory), evicting the oldest buffers first; [`release`] hands everything back.
//!
//! The pool is then the only cache of large blocks: glibc's own (its mmap threshold grows
//! with every large block freed, after which freed chunk-sized blocks stay in its arenas
//! and the process keeps them) is turned off by fixing that threshold at [`POOL_MIN`], so a
//! block the pool does not keep goes back to the OS. Out-of-core runs cap the pool at a
//! quarter of their host budget ([`cap`]): measured on a 40e6 x 32 TSQR under 1 GiB device
//! and host budgets, the process peaked at 12.9 GB without these two, 2.1 GB with a fixed
//! threshold alone (but 55% slower: every chunk a fresh, page-faulted block), and within
//! the budgets at about the old speed with both.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Buffers at least this large are pooled; below it the system allocator keeps freed memory
/// in its own arenas anyway.
pub const POOL_MIN: usize = 1 << 20;
/// Largest alignment pooled: what the system allocator guarantees for every block, so a pooled
/// block serves any request and is freed the same way whichever request it served.
const POOL_ALIGN: usize = 16;
/// Most buffers held at once.
const SLOTS: usize = 128;

#[derive(Clone, Copy)]
struct Slot {
    ptr: usize,
    /// Bytes usable (the size of the last request it served); 0 marks an empty slot.
    size: usize,
    /// Insertion order, for oldest-first eviction.
    seq: u64,
}

const EMPTY: Slot = Slot {
    ptr: 0,
    size: 0,
    seq: 0,
};

/// The pool behind [`PooledAlloc`].
struct HostPool {
    slots: Mutex<[Slot; SLOTS]>,
    cached: AtomicUsize,
    /// Byte limit; `usize::MAX` until set or first computed.
    limit: AtomicUsize,
    seq: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

static POOL: HostPool = HostPool {
    slots: Mutex::new([EMPTY; SLOTS]),
    cached: AtomicUsize::new(0),
    limit: AtomicUsize::new(usize::MAX),
    seq: AtomicU64::new(0),
    hits: AtomicU64::new(0),
    misses: AtomicU64::new(0),
};

/// Physical memory in bytes, read without allocating (this runs inside the allocator).
pub(crate) fn physical_memory() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf takes no pointers and only reads system configuration.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return pages as usize * size as usize;
        }
    }
    8 << 30
}

/// glibc: blocks of at least [`POOL_MIN`] bytes always by mmap, returned to the OS when
/// freed (the pool decides what to keep), instead of a threshold that grows with each large
/// block freed.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and only sets the allocator's tunables; it does not
    // call back into this allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, POOL_MIN as libc::c_int);
    }
}

fn pooled(layout: &Layout) -> bool {
    layout.size() >= POOL_MIN && layout.align() <= POOL_ALIGN
}

impl HostPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, [Slot; SLOTS]> {
        // Nothing panics while the lock is held; a poisoned lock still guards valid slots.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limit(&self) -> usize {
        let l = self.limit.load(Ordering::Relaxed);
        if l != usize::MAX {
            return l;
        }
        fix_mmap_threshold();
        let d = physical_memory() / 8;
        self.limit.store(d, Ordering::Relaxed);
        d
    }

    /// The smallest cached block of at least `size` bytes and at most a quarter more.
    fn take(&self, size: usize) -> Option<*mut u8> {
        let mut slots = self.lock();
        let best = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.size >= size && s.size - size <= size / 4)
            .min_by_key(|(_, s)| s.size)
            .map(|(i, _)| i)?;
        let s = std::mem::replace(&mut slots[best], EMPTY);
        self.cached.fetch_sub(s.size, Ordering::Relaxed);
        Some(s.ptr as *mut u8)
    }

    /// Keeps `ptr` (a block of `size` usable bytes) unless it exceeds the limit; evicted blocks
    /// are returned to the system after the lock is released.
    ///
    /// # Safety
    /// `ptr` must be a live system-allocator block of at least `size` bytes, alignment at most
    /// [`POOL_ALIGN`], that the caller gives up.
    unsafe fn keep(&self, ptr: *mut u8, size: usize) -> bool {
        let limit = self.limit();
        if size > limit {
            return false;
        }
        let mut evicted = [EMPTY; SLOTS];
        let mut n = 0;
        {
            let mut slots = self.lock();
            let mut cached = self.cached.load(Ordering::Relaxed);
            loop {
                let free = slots.iter().position(|s| s.size == 0);
                if let Some(f) = free.filter(|_| cached + size <= limit) {
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    slots[f] = Slot {
                        ptr: ptr as usize,
                        size,
                        seq,
                    };
                    self.cached.store(cached + size, Ordering::Relaxed);
                    break;
                }
                let oldest = slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.size > 0)
                    .min_by_key(|(_, s)| s.seq)
                    .map(|(i, _)| i)
                    .expect("a full pool or an over-limit total has a block");
                let s = std::mem::replace(&mut slots[oldest], EMPTY);
                cached -= s.size;
                evicted[n] = s;
                n += 1;
            }
        }
        for s in &evicted[..n] {
            // SAFETY: each evicted block was kept by `keep` from a live system block of
            // `s.size` usable bytes and alignment <= POOL_ALIGN, and left the pool above, so
            // nothing else can hand it out or free it.
            unsafe { free_block(s) };
        }
        true
    }
}

/// Returns a pooled block to the system allocator.
///
/// # Safety
/// `s` must describe a block the pool owned and has removed from its slots.
unsafe fn free_block(s: &Slot) {
    // SAFETY: (caller) a live system block; size >= POOL_MIN > 0 and POOL_ALIGN is a power of
    // two, so the layout is valid, and the system allocator frees by pointer whatever the
    // size of the request it last served.
    unsafe {
        System.dealloc(
            s.ptr as *mut u8,
            Layout::from_size_align_unchecked(s.size, POOL_ALIGN),
        )
    }
}

/// The global allocator that routes large host buffers through the pool (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PooledAlloc;

// SAFETY: every block handed out is a live system-allocator block of at least the requested
// size with alignment >= the requested one: `take` returns only blocks whose usable size is
// at least the request, for requests aligned to at most POOL_ALIGN, which every system block
// meets. A block leaves the pool before it is handed out, so it has one owner at a time;
// deallocation either keeps it (the caller gave it up) or frees it to the system allocator.
unsafe impl GlobalAlloc for PooledAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if pooled(&layout) {
            if let Some(p) = POOL.take(layout.size()) {
                POOL.hits.fetch_add(1, Ordering::Relaxed);
                return p;
            }
            POOL.misses.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Fresh system memory is zeroed lazily by the OS, which beats clearing a pooled block.
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: (GlobalAlloc contract) `ptr` is a live block of this allocator for `layout`,
        // hence a system block of at least layout.size() bytes; `pooled` checked the alignment.
        if pooled(&layout) && unsafe { POOL.keep(ptr, layout.size()) } {
            return;
        }
        // SAFETY: a system block (pooled or not), freed once.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Every block is a system block, pooled or not: the system allocator resizes it (for
        // large blocks by remapping, without a copy).
        // SAFETY: forwarded with the caller's arguments, which meet the GlobalAlloc contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What the pool holds and has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes held for reuse now.
    pub cached_bytes: usize,
    /// The most bytes held at once.
    pub limit_bytes: usize,
    /// Large allocations served from the pool.
    pub hits: u64,
    /// Large allocations that went to the system.
    pub misses: u64,
}

/// The pool's counters (all zero in a process that does not use [`PooledAlloc`]).
pub fn stats() -> PoolStats {
    PoolStats {
        cached_bytes: POOL.cached.load(Ordering::Relaxed),
        limit_bytes: POOL.limit(),
        hits: POOL.hits.load(Ordering::Relaxed),
        misses: POOL.misses.load(Ordering::Relaxed),
    }
}

/// Sets the most bytes the pool may hold (0 disables pooling); releases what is over it.
pub fn set_limit(bytes: usize) {
    POOL.limit
        .store(bytes.min(usize::MAX - 1), Ordering::Relaxed);
    if POOL.cached.load(Ordering::Relaxed) > bytes {
        release();
    }
}

/// While alive, the pool holds at most `bytes` (or less if its limit was lower already);
/// dropping it restores the limit before. See [`cap`].
#[derive(Debug)]
pub struct PoolCap {
    before: usize,
}

/// Caps the pool at `bytes` for as long as the returned guard lives (an out-of-core run caps
/// it at a quarter of its host budget, so that blocks kept for reuse do not take the process
/// past its budgets).
pub fn cap(bytes: usize) -> PoolCap {
    let before = POOL.limit();
    if bytes < before {
        set_limit(bytes);
    }
    PoolCap { before }
}

impl Drop for PoolCap {
    fn drop(&mut self) {
        POOL.limit.store(self.before, Ordering::Relaxed);
    }
}

/// Hands every pooled buffer back to the system.
pub fn release() {
    let taken = {
        let mut slots = POOL.lock();
        let t = *slots;
        *slots = [EMPTY; SLOTS];
        POOL.cached.store(0, Ordering::Relaxed);
        t
    };
    for s in taken.iter().filter(|s| s.size > 0) {
        // SAFETY: the block left the pool above; only the pool owned it.
        unsafe { free_block(s) };
    }
}
