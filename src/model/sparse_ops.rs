//! The C++ operators of `csrc/` (compiled by `build.rs` against the same libtorch).

use std::ffi::{c_char, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn gnn_soup_spmm(a: *const C_tensor, a_t: *const C_tensor, x: *const C_tensor)
        -> *mut C_tensor;
    fn gnn_soup_masked_dropout(
        x: *const C_tensor,
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

/// `a.mm(x)` for a sparse CSR `a`, differentiable in `x` with the gradient `a_t.mm(grad)`:
/// `a_t` must be `a`'s transpose as CSR (`a` itself when symmetric). libtorch would otherwise
/// convert `a`'s transpose to CSR on every backward pass.
pub fn spmm(a: &Tensor, a_t: &Tensor, x: &Tensor) -> Tensor {
    // SAFETY: the three pointers are live tensors borrowed for the call.
    unsafe { take(gnn_soup_spmm(a.as_ptr(), a_t.as_ptr(), x.as_ptr()), "sparse product") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

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
}
