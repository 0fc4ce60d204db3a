//! Large host buffers: zeroed lazily by the kernel and backed by transparent huge pages where
//! the system allows it (THP in `madvise` mode, the common default), so a fresh 800 MB output
//! takes ~400 page faults instead of ~200,000. NumPy does the same for its large arrays.

/// Buffers at least this large get the huge-page advice.
const HUGE_MIN: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// A vector of `n` default (zero) values, untouched until written, with huge-page advice.
pub fn zeroed_vec<T: Default + Clone>(n: usize) -> Vec<T> {
    // `vec![zero; n]` for plain numbers allocates zeroed memory (calloc / fresh mmap), so no
    // page is touched here.
    let mut v = vec![T::default(); n];
    advise_huge(&mut v, n);
    v
}

/// An empty vector with room for `n` values, with huge-page advice: for kernels that write
/// every element, so the memory is neither zeroed nor touched before they do. A buffer reused
/// from the allocator's cache (see `tessera_runtime::hostpool`) keeps its pages.
pub fn uninit_vec<T>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise_huge(&mut v, n);
    v
}

/// Huge-page advice for the first `n` slots of `v`'s allocation.
fn advise_huge<T>(v: &mut Vec<T>, n: usize) {
    let bytes = n * std::mem::size_of::<T>();
    if bytes >= HUGE_MIN {
        let start = v.as_mut_ptr() as usize;
        let first = start.next_multiple_of(HUGE_PAGE);
        let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > first {
            // SAFETY: [first, end) lies inside `v`'s live allocation (first >= start and
            // end <= start + bytes) and is page-aligned; MADV_HUGEPAGE only changes how the
            // kernel backs those pages, never their contents or the mapping's validity.
            let rc = unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE)
            };
            // Advice only: where THP is off the call fails and the buffer works as before.
            let _ = rc;
        }
    }
}
