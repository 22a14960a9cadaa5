//! The reusing CPU allocator (`csrc/cpu_allocator.cpp`), installed as the binary installs it.
//! Its counts are process-wide: one test, so that no other test's tensors move them meanwhile
//! (nextest runs each test in a process of its own; `cargo test` would not).

use gnn_soup::device::{
    cpu_block_stats, keep_cpu_blocks, release_kept_cpu_blocks, reuse_cpu_blocks,
};
use tch::{Device, Kind, Tensor};

fn floats(n: i64) -> Tensor {
    Tensor::ones([n], (Kind::Float, Device::Cpu))
}

const MIB: u64 = 1 << 20;

/// A freed large block is handed out again for a request of its size class (a slightly
/// different size too) or of a class down to half of it, small ones are not kept, and a request
/// that finds none releases kept blocks, the longest unused first, only as far as needed to stay
/// within 5/4 of the peak of the live blocks.
/// The values written through reused blocks are the ones computed.
#[test]
fn large_blocks_are_reused_within_the_live_peak() {
    reuse_cpu_blocks();
    // Until keeping is on, nothing is kept.
    drop(floats(4 << 20));
    assert_eq!(cpu_block_stats().kept_bytes, 0);
    keep_cpu_blocks(true);
    let start = cpu_block_stats();
    assert_eq!((start.kept_bytes, start.peak_live_bytes), (0, 0), "{start:?}");
    // Two 16 MiB blocks live at once: the peak is 32 MiB.
    let (a, b) = (floats(4 << 20), floats(4 << 20));
    assert_eq!(a.sum(Kind::Float).double_value(&[]), (4 << 20) as f64);
    drop((a, b));
    let kept = cpu_block_stats();
    assert_eq!((kept.kept_bytes, kept.peak_live_bytes), (32 * MIB, 32 * MIB), "{kept:?}");
    // 15.5 MiB rounds up to the same class (16 MiB; classes are a quarter of a power of two).
    let c = Tensor::full([(4 << 20) - (128 << 10)], 2.0, (Kind::Float, Device::Cpu));
    let hit = cpu_block_stats();
    assert_eq!((hit.reused, hit.fresh), (start.reused + 1, start.fresh + 2), "{hit:?}");
    assert_eq!(hit.kept_bytes, 16 * MIB);
    assert_eq!(c.sum(Kind::Float).double_value(&[]), 2.0 * ((4 << 20) - (128 << 10)) as f64);
    drop(c);
    // Small tensors are left to malloc.
    drop(floats(1000));
    assert_eq!(cpu_block_stats().kept_bytes, 32 * MIB);
    // 4 MiB finds no block of its class or up to twice it. Kept (32) + new (4) is within 5/4
    // of the peak (40): nothing is released.
    let d = floats(1 << 20);
    let miss = cpu_block_stats();
    assert_eq!((miss.released, miss.kept_bytes), (hit.released, 32 * MIB), "{miss:?}");
    assert_eq!(miss.fresh, hit.fresh + 1, "{miss:?}");
    drop(d);
    // 10 MiB takes a kept 16 MiB block (within twice its class).
    let f = floats(10 << 18);
    let larger = cpu_block_stats();
    assert_eq!((larger.reused, larger.kept_bytes), (miss.reused + 1, 20 * MIB), "{larger:?}");
    drop(f);
    // 24 MiB finds none: kept (36) + new (24) would pass 40, so the blocks kept longest go (a
    // 16 MiB, then the 4 MiB) until the rest (16) and the new one are within it.
    let g = floats(6 << 20);
    let evict = cpu_block_stats();
    assert_eq!((evict.released, evict.kept_bytes), (larger.released + 2, 16 * MIB), "{evict:?}");
    drop(g);
    // 40 MiB: 5/4 of the peak on its own, so everything kept is released first.
    let e = floats(10 << 20);
    let grow = cpu_block_stats();
    assert_eq!(grow.kept_bytes, 0, "{grow:?}");
    assert_eq!(grow.peak_live_bytes, 40 * MIB);
    drop(e);
    // Before each souping job the engine gives everything kept back and restarts the peak.
    let held = floats(1 << 20);
    release_kept_cpu_blocks();
    let released = cpu_block_stats();
    assert_eq!((released.kept_bytes, released.peak_live_bytes), (0, 4 * MIB), "{released:?}");
    // Keeping off: the held block, freed, goes straight back.
    keep_cpu_blocks(false);
    drop(held);
    let off = cpu_block_stats();
    assert_eq!(off.kept_bytes, 0, "{off:?}");
    products_through_reused_blocks_are_unchanged();
}

/// A souping-sized computation gives the same values with keeping off and on (its blocks are
/// reused between the rounds).
fn products_through_reused_blocks_are_unchanged() {
    let x = Tensor::randn([3000, 300], (Kind::Float, Device::Cpu));
    let w = Tensor::randn([300, 300], (Kind::Float, Device::Cpu));
    let plain = x.mm(&w).relu().sum_dim_intlist(0, false, Kind::Float);
    keep_cpu_blocks(true);
    for _ in 0..2 {
        let again = x.mm(&w).relu().sum_dim_intlist(0, false, Kind::Float);
        assert!(again.equal(&plain));
    }
    assert!(cpu_block_stats().reused >= 1, "{:?}", cpu_block_stats());
}
