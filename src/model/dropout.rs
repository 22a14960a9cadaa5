//! Inverted dropout whose random mask is cheap on CPU.
//!
//! libtorch draws CPU dropout masks from one sequential Mersenne Twister: on a 169k x 256
//! activation that took 1.4 s here, five times a 256 x 256 matmul over the same rows, and it made
//! an LS epoch on the arxiv-shaped graph three times slower with dropout than without. On CPU the
//! mask is drawn here instead, from a counter-based generator (SplitMix64) filled in parallel;
//! CUDA keeps libtorch's own (fast) kernel. The seed comes from the thread's own stream
//! ([`super::rng`]), so [`super::rng::seed_thread`] makes runs reproducible without any process-wide
//! state, and the mask does not depend on the number of threads.

use tch::{Device, Kind, Tensor};

use super::rng::{next_u64, splitmix64};
use super::sparse_ops::masked_dropout;

/// `x` with each entry zeroed with probability `p` and the survivors scaled by `1 / (1 - p)`;
/// `x` itself (shared) when `train` is false or `p` is zero. Differentiable in `x`.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return x.shallow_clone();
    }
    if p >= 1.0 {
        return x.zeros_like();
    }
    if x.device() != Device::Cpu {
        return x.dropout(p, true);
    }
    masked_dropout(x, &keep_mask(&x.size(), p), 1.0 / (1.0 - p))
}

/// A byte CPU tensor of `shape` whose entries are 1 with probability `1 - p` and 0 otherwise,
/// independently. Bytes, because autograd keeps the mask for the backward pass: a quarter of the
/// memory of a float mask (the product takes it without promoting it: [`masked_dropout`]).
pub fn keep_mask(shape: &[i64], p: f64) -> Tensor {
    let seed = next_u64();
    let mask = Tensor::empty(shape, (Kind::Uint8, Device::Cpu));
    let n = mask.numel();
    if n == 0 {
        return mask;
    }
    // An entry is kept when a uniform 16-bit draw falls below (1 - p) * 2^16: the keep
    // probability in steps of 2^-16 (exact for 1/2, 3/4, ...), four entries to each 64-bit draw.
    let threshold = ((1.0 - p).clamp(0.0, 1.0) * 65_536.0).round() as u64;
    // SAFETY: `mask` is a freshly allocated, contiguous CPU byte tensor of `n` entries, owned
    // here and not yet shared; every entry is written below.
    let values = unsafe { std::slice::from_raw_parts_mut(mask.data_ptr() as *mut u8, n) };
    let threads = (tch::get_num_threads().max(1) as usize).min(n.div_ceil(1 << 16));
    // Chunks of a length divisible by four, so each draw serves four neighbouring entries.
    let chunk = n.div_ceil(threads).next_multiple_of(ENTRIES_PER_DRAW);
    if threads == 1 {
        // Small activations (most of training on Planetoid-sized graphs): no thread to start.
        fill(values, seed, 0, threshold);
        return mask;
    }
    std::thread::scope(|scope| {
        for (c, part) in values.chunks_mut(chunk).enumerate() {
            scope.spawn(move || fill(part, seed, (c * chunk / ENTRIES_PER_DRAW) as u64, threshold));
        }
    });
    mask
}

/// Entries of a mask each 64-bit draw decides, 16 bits each.
const ENTRIES_PER_DRAW: usize = 4;

/// Writes 1 (kept) or 0 into `part`, four entries per draw; draw `k` of the whole mask is
/// `splitmix64(seed + k * golden)`, so the result does not depend on how the work is split.
/// (Two entries per draw, with 32-bit comparisons, drew 3.5% of an LS epoch's time on the
/// arxiv-shaped graph.)
fn fill(part: &mut [u8], seed: u64, first_draw: u64, threshold: u64) {
    let draw = |k: u64| splitmix64(seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let keep = |r: u64, lane: usize| ((r >> (16 * lane)) & 0xFFFF < threshold) as u8;
    let mut quads = part.chunks_exact_mut(ENTRIES_PER_DRAW);
    let mut k = first_draw;
    for quad in &mut quads {
        let r = draw(k);
        for (lane, b) in quad.iter_mut().enumerate() {
            *b = keep(r, lane);
        }
        k += 1;
    }
    let rest = quads.into_remainder();
    if !rest.is_empty() {
        let r = draw(k);
        for (lane, b) in rest.iter_mut().enumerate() {
            *b = keep(r, lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_expected_fraction_and_scales() {
        super::super::rng::seed_thread(3);
        let x = Tensor::ones([1000, 101], (Kind::Float, Device::Cpu));
        let y = dropout(&x, 0.3, true);
        let kept = y.ne(0.0).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        assert!((kept - 0.7).abs() < 0.005, "kept fraction {kept}");
        let max = y.max().double_value(&[]);
        assert!((max - 1.0 / 0.7).abs() < 1e-6, "survivors scaled to {max}");
        // Inference leaves the input alone.
        assert_eq!(dropout(&x, 0.3, false).sum(Kind::Double).double_value(&[]), 101_000.0);
    }

    #[test]
    fn reproducible_under_the_thread_seed_and_fresh_per_call() {
        super::super::rng::seed_thread(7);
        let a = keep_mask(&[4099], 0.5);
        let b = keep_mask(&[4099], 0.5);
        super::super::rng::seed_thread(7);
        let a2 = keep_mask(&[4099], 0.5);
        assert!(a.equal(&a2));
        assert!(!a.equal(&b));
    }

    #[test]
    fn gradient_flows_through_kept_entries_only() {
        super::super::rng::seed_thread(1);
        let x = Tensor::ones([64, 64], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = dropout(&x, 0.5, true);
        y.sum(Kind::Float).backward();
        assert!(x.grad().equal(&y.detach()));
    }
}
