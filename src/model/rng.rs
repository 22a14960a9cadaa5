//! Randomness that belongs to the thread using it. Dropout masks, initial weights and mixing
//! logits draw from a per-thread stream seeded with [`seed_thread`], not from libtorch's
//! process-wide generator: two souping jobs (or two tests) on two threads neither disturb nor
//! depend on each other, and a run is reproduced by its seed alone.
//!
//! CUDA dropout still uses libtorch's kernel and its per-device generator, which [`seed_thread`]
//! seeds too (process-wide, but only where a GPU is).

use std::cell::Cell;

use rand::SeedableRng;

thread_local! {
    static STREAM: Cell<u64> = const { Cell::new(0x853C_49E6_748F_EA9B) };
}

/// Restarts this thread's stream at `seed`.
pub fn seed_thread(seed: u64) {
    STREAM.with(|s| s.set(splitmix64(seed ^ 0x6A09_E667_F3BC_C908)));
    if tch::Cuda::is_available() {
        tch::Cuda::manual_seed_all(seed);
    }
}

/// Where this thread's stream is (saved with a fit so that a resumed run draws what the
/// uninterrupted one would have).
pub fn stream_state() -> u64 {
    STREAM.with(Cell::get)
}

/// Puts this thread's stream back where [`stream_state`] found it.
pub fn restore_stream(state: u64) {
    STREAM.with(|s| s.set(state));
}

/// The next 64 random bits of this thread's stream.
pub fn next_u64() -> u64 {
    STREAM.with(|s| {
        let v = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(v);
        splitmix64(v)
    })
}

/// A seeded generator for bulk draws (weights, logits), taken from this thread's stream.
pub fn generator() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(next_u64())
}

pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_reproduces_the_stream_and_threads_do_not_share_it() {
        seed_thread(5);
        let a: Vec<u64> = (0..3).map(|_| next_u64()).collect();
        seed_thread(5);
        // Another thread seeding and drawing does not move this thread's stream.
        std::thread::spawn(|| {
            seed_thread(5);
            next_u64();
        })
        .join()
        .unwrap();
        let b: Vec<u64> = (0..3).map(|_| next_u64()).collect();
        assert_eq!(a, b);
        assert!(a[0] != a[1] && a[1] != a[2]);
        seed_thread(6);
        assert_ne!(next_u64(), a[0]);
    }
}
