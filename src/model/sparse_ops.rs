//! The C++ operators of `csrc/` (compiled by `build.rs` against the same libtorch).

use std::ffi::{c_char, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn gnn_soup_spmm(a: *const C_tensor, a_t: *const C_tensor, x: *const C_tensor)
        -> *mut C_tensor;
    fn gnn_soup_csr_mm(a: *const C_tensor, x: *const C_tensor) -> *mut C_tensor;
    fn gnn_soup_csr_mm_out(a: *const C_tensor, x: *const C_tensor, out: *const C_tensor) -> i32;
    fn gnn_soup_spmm_kernel() -> *const c_char;
    #[cfg(test)]
    fn gnn_soup_csr_mm_by(
        a: *const C_tensor,
        x: *const C_tensor,
        name: *const c_char,
    ) -> *mut C_tensor;
    fn gnn_soup_masked_dropout(
        x: *const C_tensor,
        mask: *const C_tensor,
        scale: f64,
    ) -> *mut C_tensor;
    fn gnn_soup_bias_relu_dropout(
        z: *const C_tensor,
        b: *const C_tensor,
        mask: *const C_tensor,
        scale: f64,
    ) -> *mut C_tensor;
    fn gnn_soup_last_error() -> *const c_char;
}

/// The tensor a C++ operator returned, or a panic with its message: only shape, type or device
/// mismatches fail, which the callers rule out (a bug).
///
/// # Safety
/// `out` is null or a new tensor whose ownership passes to the returned `Tensor`.
unsafe fn take(out: *mut C_tensor, what: &str) -> Tensor {
    if out.is_null() {
        panic!("{what} failed: {}", CStr::from_ptr(gnn_soup_last_error()).to_string_lossy());
    }
    Tensor::from_ptr(out)
}

/// `x * mask * scale` for a float CPU `x` and a `Uint8` mask of 0s and 1s of its shape,
/// differentiable in `x`: autograd keeps the byte mask, a quarter of a float one.
pub fn masked_dropout(x: &Tensor, mask: &Tensor, scale: f64) -> Tensor {
    // SAFETY: both pointers are live tensors borrowed for the call.
    unsafe { take(gnn_soup_masked_dropout(x.as_ptr(), mask.as_ptr(), scale), "masked dropout") }
}

/// `relu(z + b)` for a float CPU matrix `z` and a bias `b` of its width, times `scale * mask`
/// where a dropout `mask` (a `Uint8` tensor of 0s and 1s of `z`'s shape) is given: a hidden
/// layer's bias, ReLU and the next layer's input dropout in one pass, differentiable in `z` and
/// `b`, keeping only the result for the backward pass (see `csrc/sparse_ops.cpp`).
pub fn bias_relu_dropout(z: &Tensor, b: &Tensor, mask: Option<&Tensor>, scale: f64) -> Tensor {
    let mask = mask.map_or(std::ptr::null(), |m| m.as_ptr());
    // SAFETY: the pointers are live tensors borrowed for the call, or null for no mask.
    unsafe {
        take(
            gnn_soup_bias_relu_dropout(z.as_ptr(), b.as_ptr(), mask, scale),
            "bias, ReLU and dropout",
        )
    }
}

/// `a.mm(x)` for a sparse CSR `a`: on an x86 CPU with AVX-512 or AVX2, for float operands, by
/// gnn-soup's own kernel (`csrc/spmm_rows.inc`), otherwise by libtorch. Where `x` needs a
/// gradient, libtorch's differentiable product is taken instead (see [`spmm`] for the fast one).
pub fn csr_mm(a: &Tensor, x: &Tensor) -> Tensor {
    // SAFETY: both pointers are live tensors borrowed for the call.
    unsafe { take(gnn_soup_csr_mm(a.as_ptr(), x.as_ptr()), "sparse product") }
}

/// Which kernel [`csr_mm`] runs on this CPU: `avx512`, `avx2` or `libtorch` (the environment
/// variable `GNN_SOUP_SPMM=libtorch|avx2` narrows the choice, for comparisons).
pub fn sparse_kernel() -> &'static str {
    // SAFETY: the C++ side returns a pointer to a static string literal.
    unsafe { CStr::from_ptr(gnn_soup_spmm_kernel()) }.to_str().unwrap_or("unknown")
}

/// [`csr_mm`] written into `out`, a contiguous float tensor of the product's shape (a block of
/// rows of a larger output, for instance). Not differentiable.
pub fn csr_mm_out(out: &Tensor, a: &Tensor, x: &Tensor) {
    // SAFETY: the three pointers are live tensors borrowed for the call; only `out`'s storage
    // is written (its handle is not), as `Tensor::mm_out` does through a shared reference.
    let status = unsafe { gnn_soup_csr_mm_out(a.as_ptr(), x.as_ptr(), out.as_ptr()) };
    if status != 0 {
        // SAFETY: the message lives until the next call on this thread.
        let message = unsafe { CStr::from_ptr(gnn_soup_last_error()) }.to_string_lossy();
        panic!("sparse product failed: {message}");
    }
}

/// `a.mm(x)` for a sparse CSR `a`, by [`csr_mm`]'s kernel, differentiable in `x` with the
/// gradient `a_t.mm(grad)`: `a_t` must be `a`'s transpose as CSR (`a` itself when symmetric).
/// libtorch would otherwise convert `a`'s transpose to CSR on every backward pass.
pub fn spmm(a: &Tensor, a_t: &Tensor, x: &Tensor) -> Tensor {
    // SAFETY: the three pointers are live tensors borrowed for the call.
    unsafe { take(gnn_soup_spmm(a.as_ptr(), a_t.as_ptr(), x.as_ptr()), "sparse product") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A random CSR matrix of `rows` x `cols` with about `density` of its entries set, some rows
    /// empty, with `index` indices.
    fn random_csr(rows: i64, cols: i64, density: f64, index: Kind) -> (Tensor, Tensor) {
        let dense = Tensor::randn([rows, cols], (Kind::Float, Device::Cpu))
            * Tensor::rand([rows, cols], (Kind::Float, Device::Cpu)).lt(density);
        let _ = dense.narrow(0, 3, 2).zero_();
        let csr = dense.to_sparse_csr(None::<i64>);
        let csr = Tensor::sparse_csr_tensor_crow_col_value_size(
            &csr.crow_indices().to_kind(index),
            &csr.col_indices().to_kind(index),
            &csr.values(),
            [rows, cols],
            (Kind::Float, Device::Cpu),
        );
        (dense, csr)
    }

    fn csr_mm_by(a: &Tensor, x: &Tensor, kernel: &str) -> Tensor {
        let name = std::ffi::CString::new(kernel).unwrap();
        // SAFETY: live tensors and a NUL-terminated name, borrowed for the call.
        unsafe { take(gnn_soup_csr_mm_by(a.as_ptr(), x.as_ptr(), name.as_ptr()), kernel) }
    }

    /// The kernels this CPU runs (libtorch's always).
    fn kernels() -> Vec<&'static str> {
        let mut kernels = vec!["libtorch"];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                kernels.push("avx2");
            }
            if is_x86_feature_detected!("avx512f") {
                kernels.push("avx512");
            }
        }
        kernels
    }

    /// The widest kernel the CPU runs is the one chosen (unless the environment narrows it).
    #[test]
    fn the_widest_kernel_is_chosen() {
        if std::env::var_os("GNN_SOUP_SPMM").is_none() {
            assert_eq!(sparse_kernel(), *kernels().last().unwrap());
        }
    }

    /// Each kernel gives the dense product for every width it handles differently: under one
    /// vector, a whole number of vectors, a remainder, more than one pass of registers (AVX2
    /// passes 96 columns at a time, AVX-512 256), and both index types; and into a block of rows.
    #[test]
    fn csr_mm_is_the_dense_product() {
        for index in [Kind::Int64, Kind::Int] {
            let (dense, csr) = random_csr(300, 200, 0.05, index);
            for f in [1, 7, 16, 40, 96, 100, 256, 300, 513] {
                let x = Tensor::randn([200, f], (Kind::Float, Device::Cpu));
                let want = dense.mm(&x);
                for kernel in kernels() {
                    let got = csr_mm_by(&csr, &x, kernel);
                    assert!(
                        got.allclose(&want, 1e-4, 1e-4, false),
                        "{kernel}, width {f}, {index:?}"
                    );
                }
                assert!(csr_mm(&csr, &x).allclose(&want, 1e-4, 1e-4, false));
                let out = Tensor::full([400, f], f64::NAN, (Kind::Float, Device::Cpu));
                csr_mm_out(&out.narrow(0, 50, 300), &csr, &x);
                assert!(out.narrow(0, 50, 300).allclose(&want, 1e-4, 1e-4, false));
                assert!(out.narrow(0, 0, 50).isnan().all().int64_value(&[]) == 1, "rows outside");
            }
        }
        // A column slice of a wider tensor (not contiguous) is read as its values.
        let (dense, csr) = random_csr(64, 64, 0.1, Kind::Int64);
        let wide = Tensor::randn([64, 80], (Kind::Float, Device::Cpu));
        let x = wide.narrow(1, 3, 50);
        assert!(csr_mm(&csr, &x).allclose(&dense.mm(&x), 1e-4, 1e-4, false));
    }

    /// The gradient through `spmm` is the one libtorch's own sparse product gives, for a
    /// non-symmetric matrix whose transpose is passed, and the forward value is the same.
    #[test]
    fn gradient_matches_libtorch_autograd() {
        let dense = Tensor::randn([50, 50], (Kind::Float, Device::Cpu))
            * Tensor::rand([50, 50], (Kind::Float, Device::Cpu)).lt(0.1);
        let a = dense.to_sparse_csr(None::<i64>);
        let a_t = dense.tr().contiguous().to_sparse_csr(None::<i64>);
        let x = Tensor::randn([50, 7], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let w = Tensor::randn([50, 7], (Kind::Float, Device::Cpu));
        let ours = spmm(&a, &a_t, &x);
        (&ours * &w).sum(Kind::Float).backward();
        let g_ours = x.grad().copy();
        let _ = x.grad().zero_();
        let theirs = a.mm(&x);
        (&theirs * &w).sum(Kind::Float).backward();
        assert!(ours.allclose(&theirs, 1e-6, 1e-6, false));
        assert!(g_ours.allclose(&x.grad(), 1e-5, 1e-5, false), "{g_ours} vs {}", x.grad());
        assert!(g_ours.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }
    /// The fused hidden-layer end equals bias add, ReLU and masked dropout done apart, in its
    /// value and in both gradients, with and without a mask, over a width that is not a multiple
    /// of a vector and enough rows to be split among threads.
    #[test]
    fn bias_relu_dropout_is_the_three_apart() {
        let cpu = (Kind::Float, Device::Cpu);
        for masked in [false, true] {
            let z = Tensor::randn([3000, 37], cpu).set_requires_grad(true);
            let b = (Tensor::randn([37], cpu) * 0.5).set_requires_grad(true);
            let mask = Tensor::rand([3000, 37], cpu).lt(0.7).to_kind(Kind::Uint8);
            let (mask, scale) = if masked { (Some(&mask), 1.0 / 0.7) } else { (None, 1.0) };
            let upstream = Tensor::randn([3000, 37], cpu);
            let fused = bias_relu_dropout(&z, &b, mask, scale);
            let mut apart = (&z + &b).relu();
            if let Some(m) = mask {
                apart = apart * m.to_kind(Kind::Float) * scale;
            }
            assert_eq!((&fused - &apart).abs().max().double_value(&[]), 0.0, "masked {masked}");
            assert!(fused.gt(0.0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]) > 0.2);
            let grads = |y: &Tensor| {
                Tensor::run_backward(&[(y * &upstream).sum(Kind::Float)], &[&z, &b], false, false)
            };
            let (got, want) = (grads(&fused), grads(&apart));
            for (g, w) in got.iter().zip(&want) {
                let diff = (g - w).abs().max().double_value(&[]);
                assert!(diff < 1e-4, "masked {masked}: gradients differ by {diff}");
                assert!(w.abs().max().double_value(&[]) > 0.1);
            }
        }
    }
}
