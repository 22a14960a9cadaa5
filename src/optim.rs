//! Optimisers written out with plain tensors, matching `torch.optim` semantics exactly, so the
//! functional models need no module system.

use tch::Tensor;

/// `torch.optim.Adam` (L2 weight decay added to the gradient, bias-corrected moments).
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    step: i32,
    moments: Vec<(Tensor, Tensor)>,
}

impl Adam {
    pub fn new(params: &[&Tensor], lr: f64, weight_decay: f64) -> Adam {
        let moments = params.iter().map(|p| (p.zeros_like(), p.zeros_like())).collect();
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, moments }
    }

    /// Updates `params` (same order as at construction) from their gradients and clears them.
    pub fn step(&mut self, params: &mut [Tensor]) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step);
        let bc2 = 1.0 - self.beta2.powi(self.step);
        for (p, (m, v)) in params.iter_mut().zip(self.moments.iter_mut()) {
            let grad = p.grad();
            if !grad.defined() {
                continue;
            }
            let g = if self.weight_decay != 0.0 { &grad + &*p * self.weight_decay } else { grad.shallow_clone() };
            let _ = m.g_mul_scalar_(self.beta1).g_add_(&(&g * (1.0 - self.beta1)));
            let _ = v.g_mul_scalar_(self.beta2).g_add_(&(&g * &g * (1.0 - self.beta2)));
            let denom = (&*v / bc2).sqrt() + self.eps;
            let _ = p.g_sub_(&(&*m / &denom * (self.lr / bc1)));
            let _ = grad.shallow_clone().zero_();
        }
    }
}

/// `torch.optim.SGD` without momentum or weight decay: what the paper's LS/PLS use.
pub fn sgd_step(params: &mut [Tensor], lr: f64) {
    let _guard = tch::no_grad_guard();
    for p in params.iter_mut() {
        let grad = p.grad();
        if grad.defined() {
            let _ = p.g_sub_(&(&grad * lr));
            let _ = grad.shallow_clone().zero_();
        }
    }
}

/// `CosineAnnealingWarmRestarts(T_0, T_mult = 1, eta_min)`: the learning rate for `epoch`
/// (0-based, the scheduler stepped once per epoch after the optimiser).
pub fn cosine_warm_restarts(base_lr: f64, eta_min: f64, t0: usize, epoch: usize) -> f64 {
    let t_cur = (epoch % t0.max(1)) as f64;
    eta_min + (base_lr - eta_min) * (1.0 + (std::f64::consts::PI * t_cur / t0.max(1) as f64).cos()) / 2.0
}

#[cfg(test)]
mod tests {
    use super::cosine_warm_restarts;

    /// PyTorch's `CosineAnnealingWarmRestarts(T_0=4)` from lr 10: 10, 8.536, 5, 1.464, then again.
    #[test]
    fn warm_restarts_follow_pytorchs_schedule() {
        let lrs: Vec<f64> = (0..9).map(|e| cosine_warm_restarts(10.0, 0.0, 4, e)).collect();
        let want = [10.0, 8.535533905932738, 5.0, 1.4644660940672627, 10.0, 8.535533905932738, 5.0, 1.4644660940672627, 10.0];
        for (got, want) in lrs.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{lrs:?}");
        }
        assert_eq!(cosine_warm_restarts(2.0, 0.5, 1, 7), 2.0, "T0 = 1 restarts every epoch");
    }
}
