//! Why gnn-soup uses libtorch's optimisers (src/optim.rs): the hand-written Adam it had before
//! (kept here as the baseline) against libtorch's, step time and agreement after 500 steps:
//! `cargo run --release --example optim_compare`.
use std::time::Instant;
use tch::{Kind, Tensor};

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
            let g = if self.weight_decay != 0.0 {
                &grad + &*p * self.weight_decay
            } else {
                grad.shallow_clone()
            };
            let _ = m.g_mul_scalar_(self.beta1).g_add_(&(&g * (1.0 - self.beta1)));
            let _ = v.g_mul_scalar_(self.beta2).g_add_(&(&g * &g * (1.0 - self.beta2)));
            let denom = (&*v / bc2).sqrt() + self.eps;
            let _ = p.g_sub_(&(&*m / &denom * (self.lr / bc1)));
            let _ = grad.shallow_clone().zero_();
        }
    }
}

fn main() {
    std::thread::spawn(|| {
        for (label, shapes) in [("gcn 2x64 cora", vec![vec![1433i64, 64], vec![64], vec![64, 7], vec![7]]), ("3x256 arxiv", vec![vec![128, 256], vec![256], vec![256, 256], vec![256], vec![256, 40], vec![40]]), ("4x512", vec![vec![500, 512], vec![512], vec![512, 512], vec![512], vec![512, 512], vec![512], vec![512, 47], vec![47]])] {
            let make = || -> Vec<Tensor> { tch::manual_seed(0); shapes.iter().map(|s| Tensor::randn(s.as_slice(), (Kind::Float, tch::Device::Cpu)).set_requires_grad(true)).collect() };
            let grads = |ps: &[Tensor]| { for (i, p) in ps.iter().enumerate() { (p * (0.1 + i as f64) + p * p * 0.01).sum(Kind::Float).backward(); } };
            let n = 500;
            let mut hand = make();
            let refs: Vec<&Tensor> = hand.iter().collect();
            let mut adam = Adam::new(&refs, 0.01, 5e-4);
            let t = Instant::now();
            for _ in 0..n { grads(&hand); adam.step(&mut hand); }
            let th = t.elapsed().as_secs_f64() / n as f64 * 1e6;
            let lib = make();
            let opt = gnn_soup::optim::adam(&lib, 0.01, 5e-4).unwrap();
            let t = Instant::now();
            for _ in 0..n { grads(&lib); gnn_soup::optim::step(&opt).unwrap(); }
            let tl = t.elapsed().as_secs_f64() / n as f64 * 1e6;
            let diff: f64 = hand.iter().zip(&lib).map(|(a, b)| (a - b).abs().max().double_value(&[])).fold(0.0, f64::max);
            println!("{label}: hand-written Adam {th:.1} us/step, libtorch Adam {tl:.1} us/step, max |diff| after {n} steps {diff:.2e}");
        }
    }).join().unwrap();
}
