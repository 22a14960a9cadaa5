//! The optimisers are libtorch's own (`torch::optim`, through tch's `COptimizer`): the same code
//! as `torch.optim`, on plain tensors, so the functional models need no module system. They
//! replaced hand-written ones after a measurement (`cargo run --release --example
//! optim_compare`, 2-core CPU): an Adam step took 0.84 / 1.32 / 5.72 ms against 0.92 / 1.75 /
//! 7.29 ms by hand for GCN 2x64 on Cora / 3x256 / 4x512 parameter sets (gradient computation
//! included in both), and the two agreed within 4e-6 after 500 steps.
//!
//! The learning-rate schedule of LS/PLS is computed here and set on the optimiser every epoch.

use anyhow::{Context, Result};
use tch::{COptimizer, Tensor};

/// `torch.optim.Adam(params, lr, weight_decay)` with PyTorch's defaults otherwise (betas 0.9,
/// 0.999, eps 1e-8, L2 decay added to the gradient, no AMSGrad).
pub fn adam(params: &[Tensor], lr: f64, weight_decay: f64) -> Result<COptimizer> {
    with_params(COptimizer::adam(lr, 0.9, 0.999, weight_decay, 1e-8, false), params)
}

/// `torch.optim.SGD(params, lr)`: no momentum, no weight decay (what the paper's LS/PLS use).
pub fn sgd(params: &[Tensor], lr: f64) -> Result<COptimizer> {
    with_params(COptimizer::sgd(lr, 0.0, 0.0, 0.0, false), params)
}

fn with_params(made: Result<COptimizer, tch::TchError>, params: &[Tensor]) -> Result<COptimizer> {
    let mut opt = made.context("libtorch could not create the optimiser")?;
    for p in params {
        opt.add_parameters(p, 0).context("libtorch refused a parameter")?;
    }
    Ok(opt)
}

/// One update from the gradients the last backward pass left, which are then cleared.
pub fn step(opt: &COptimizer) -> Result<()> {
    opt.step().context("optimiser step")?;
    opt.zero_grad().context("clearing gradients")
}

/// Adam's moments and step count, in plain numbers (`--optimizer auto`'s part of an LS/PLS fit's
/// saved state).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamState {
    pub steps: u64,
    /// First and second moments, one vector per parameter, in the parameters' order.
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

/// `torch.optim.Adam(params, lr)` (betas 0.9, 0.999, eps 1e-8, no decay) on the few small tensors
/// LS/PLS fit, with its state readable and restorable so that a stopped fit resumes exactly:
/// libtorch's optimiser state cannot be read out through tch. The update is PyTorch's, term for
/// term; a test holds it to libtorch's Adam.
pub struct ResumableAdam {
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps: u64,
    lr: f64,
}

impl ResumableAdam {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    pub fn new(params: &[Tensor], lr: f64) -> ResumableAdam {
        let zeros = || params.iter().map(|p| p.zeros_like()).collect::<Vec<_>>();
        ResumableAdam {
            params: params.iter().map(Tensor::shallow_clone).collect(),
            m: zeros(),
            v: zeros(),
            steps: 0,
            lr,
        }
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// One update from the gradients the last backward pass left, which are then cleared.
    pub fn step(&mut self) -> Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        let (bias1, bias2) = (1.0 - Self::BETA1.powi(t), 1.0 - Self::BETA2.powi(t));
        tch::no_grad(|| -> Result<()> {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                *m = &*m * Self::BETA1 + &g * (1.0 - Self::BETA1);
                *v = &*v * Self::BETA2 + &g * &g * (1.0 - Self::BETA2);
                let denom = v.sqrt() / bias2.sqrt() + Self::EPS;
                let _ = p.f_sub_(&(&*m / denom * (self.lr / bias1)))?;
                let _ = g.detach().f_zero_()?;
            }
            Ok(())
        })
    }

    pub fn state(&self) -> AdamState {
        let flat = |ts: &[Tensor]| {
            ts.iter()
                .map(|t| {
                    Vec::<f32>::try_from(
                        t.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float).view([-1]),
                    )
                    .unwrap_or_default()
                })
                .collect()
        };
        AdamState { steps: self.steps, m: flat(&self.m), v: flat(&self.v) }
    }

    pub fn restore(&mut self, s: &AdamState) -> Result<()> {
        let fits = |vs: &[Vec<f32>]| {
            vs.len() == self.params.len()
                && vs.iter().zip(&self.params).all(|(v, p)| v.len() as i64 == p.numel() as i64)
        };
        if !fits(&s.m) || !fits(&s.v) {
            anyhow::bail!("the saved optimiser state does not fit this fit's parameters");
        }
        tch::no_grad(|| {
            for (i, p) in self.params.iter().enumerate() {
                let load = |v: &[f32]| {
                    Tensor::from_slice(v)
                        .view(p.size().as_slice())
                        .to_device(p.device())
                        .to_kind(p.kind())
                };
                self.m[i].copy_(&load(&s.m[i]));
                self.v[i].copy_(&load(&s.v[i]));
            }
        });
        self.steps = s.steps;
        Ok(())
    }
}

/// `CosineAnnealingWarmRestarts(T_0, T_mult = 1, eta_min)`: the learning rate for `epoch`
/// (0-based, the scheduler stepped once per epoch after the optimiser).
pub fn cosine_warm_restarts(base_lr: f64, eta_min: f64, t0: usize, epoch: usize) -> f64 {
    let t_cur = (epoch % t0.max(1)) as f64;
    eta_min
        + (base_lr - eta_min) * (1.0 + (std::f64::consts::PI * t_cur / t0.max(1) as f64).cos())
            / 2.0
}

#[cfg(test)]
mod tests {
    use super::cosine_warm_restarts;
    use tch::{Kind, Tensor};

    /// PyTorch's `CosineAnnealingWarmRestarts(T_0=4)` from lr 10: 10, 8.536, 5, 1.464, then again.
    #[test]
    fn warm_restarts_follow_pytorchs_schedule() {
        let lrs: Vec<f64> = (0..9).map(|e| cosine_warm_restarts(10.0, 0.0, 4, e)).collect();
        let want = [
            10.0,
            8.535533905932738,
            5.0,
            1.4644660940672627,
            10.0,
            8.535533905932738,
            5.0,
            1.4644660940672627,
            10.0,
        ];
        for (got, want) in lrs.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{lrs:?}");
        }
        assert_eq!(cosine_warm_restarts(2.0, 0.5, 1, 7), 2.0, "T0 = 1 restarts every epoch");
    }

    /// The resumable Adam takes libtorch's steps, and continues them from its saved state.
    #[test]
    fn the_resumable_adam_follows_libtorchs_and_resumes_exactly() {
        let start = [0.3f32, -1.2, 2.0, 0.1, -0.4, 0.9];
        let leaves = || {
            [
                Tensor::from_slice(&start).view([2, 3]).set_requires_grad(true),
                Tensor::from(1.0f32).set_requires_grad(true),
            ]
        };
        let loss = |p: &[Tensor; 2]| {
            ((&p[0] * &p[1]).softmax(1, Kind::Float)
                * Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0, 0.2, -1.0]).view([2, 3]))
            .sum(Kind::Float)
        };
        let (theirs, ours, resumed) = (leaves(), leaves(), leaves());
        let mut reference = super::adam(&theirs, 0.05, 0.0).unwrap();
        let mut adam = super::ResumableAdam::new(&ours, 0.05);
        let mut saved = None;
        for epoch in 0..40 {
            let lr = super::cosine_warm_restarts(0.05, 0.0, 4, epoch);
            reference.set_learning_rate(lr).unwrap();
            loss(&theirs).backward();
            super::step(&reference).unwrap();
            adam.set_learning_rate(lr);
            loss(&ours).backward();
            adam.step().unwrap();
            if epoch == 19 {
                saved = Some((
                    adam.state(),
                    ours.iter().map(|t| t.detach().copy()).collect::<Vec<_>>(),
                ));
            }
        }
        let flat = |t: &Tensor| Vec::<f32>::try_from(t.detach().view([-1])).unwrap();
        for (a, b) in theirs.iter().zip(&ours) {
            for (x, y) in flat(a).iter().zip(flat(b)) {
                assert!((x - y).abs() < 1e-5, "{:?} vs {:?}", flat(a), flat(b));
            }
        }
        // Restored at epoch 20 into fresh tensors, it ends where the uninterrupted run ends.
        let (state, at) = saved.unwrap();
        tch::no_grad(|| {
            resumed.iter().zip(&at).for_each(|(r, a)| {
                r.detach().copy_(a);
            })
        });
        let mut again = super::ResumableAdam::new(&resumed, 0.05);
        again.restore(&state).unwrap();
        for epoch in 20..40 {
            again.set_learning_rate(super::cosine_warm_restarts(0.05, 0.0, 4, epoch));
            loss(&resumed).backward();
            again.step().unwrap();
        }
        for (a, b) in ours.iter().zip(&resumed) {
            assert_eq!(flat(a), flat(b));
        }
        assert!(again
            .restore(&super::AdamState { steps: 1, m: vec![vec![0.0; 5]], v: vec![vec![0.0; 5]] })
            .is_err());
    }

    /// Adam's first two steps written out from its definition (Kingma and Ba; PyTorch's form
    /// with L2 decay in the gradient): the first step moves each weight by lr against the sign
    /// of its gradient.
    #[test]
    fn adam_and_sgd_take_the_steps_their_definitions_give() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let opt = super::adam(&[p.shallow_clone()], 0.1, 0.5).unwrap();
        // loss = sum(3 p): gradient 3, plus decay 0.5 p -> g = [3.5, 2.0].
        (&p * 3.0).sum(Kind::Float).backward();
        super::step(&opt).unwrap();
        let after: Vec<f32> = Vec::try_from(p.detach()).unwrap();
        assert!((after[0] - 0.9).abs() < 1e-6 && (after[1] + 2.1).abs() < 1e-6, "{after:?}");
        // Second step: g = 3 + 0.5 p; m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, bias-corrected.
        let g1 = [3.5f64, 2.0];
        let g2 = [3.0 + 0.5 * 0.9, 3.0 + 0.5 * -2.1];
        (&p * 3.0).sum(Kind::Float).backward();
        super::step(&opt).unwrap();
        let after: Vec<f32> = Vec::try_from(p.detach()).unwrap();
        for i in 0..2 {
            let m = (0.9 * 0.1 * g1[i] + 0.1 * g2[i]) / (1.0 - 0.81);
            let v =
                (0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i]) / (1.0 - 0.999f64.powi(2));
            let want = [0.9, -2.1][i] - 0.1 * m / (v.sqrt() + 1e-8);
            assert!((after[i] as f64 - want).abs() < 1e-5, "{i}: {} vs {want}", after[i]);
        }
        let q = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let opt = super::sgd(&[q.shallow_clone()], 10.0).unwrap();
        (&q * 0.25).sum(Kind::Float).backward();
        super::step(&opt).unwrap();
        assert_eq!(Vec::<f32>::try_from(q.detach()).unwrap(), vec![-1.5]);
        assert!(
            !q.grad().defined() || q.grad().abs().sum(Kind::Float).double_value(&[]) == 0.0,
            "gradients cleared"
        );
    }
}
