//! Settings of the allocator the binaries use (mimalloc, `main.rs`), applied once at start.
//!
//! mimalloc's defaults favour speed over resident memory: it backs its arenas with
//! transparent huge pages (2 MiB each, so a few live values pin a whole huge page) and keeps
//! freed pages committed for a second before returning them. A daemon that runs one pass
//! every few minutes, with hundreds of them per host (`tiersync@.service`), wants the
//! opposite. With both changed, a 10,000-customer store's first pass peaks at about 80 MiB
//! instead of about 170 MiB, at no measurable cost in the recalculation (BENCHMARKS.md,
//! "Memory").

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// mimalloc's `mi_option_purge_delay` in the vendored header of `libmimalloc-sys` (v3's
/// `mi_option_t`); the unit test below checks it is the option whose default is 1,000 ms.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;
/// Milliseconds mimalloc waits before returning freed pages to the system.
const PURGE_DELAY_MS: std::os::raw::c_long = 1;

/// Applies the settings; call first thing in `main`, before the runtime's threads start.
pub fn configure() {
    // Linux only: without huge pages for this process, a page of live values costs 4 KiB of
    // memory, not 2 MiB. The call affects only this process and cannot fail in a way that
    // matters (an older kernel ignores it; memory use is then what it was).
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // SAFETY: mimalloc's options are plain integers it reads on each use.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use libmimalloc_sys::mi_option_get;

    #[test]
    fn the_purge_delay_option_is_the_one_whose_default_is_a_second() {
        // Read before any test sets it: mimalloc v3's default purge delay is 1,000 ms, a
        // default no neighbouring option shares; a libmimalloc-sys upgrade that renumbers the
        // options fails here instead of silently setting another option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1_000);
        }
    }
}

/// The unit tests run on the binaries' allocator as well, so what a timing test measures
/// (`sync::seeding_scale`) is what the daemon would spend.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
