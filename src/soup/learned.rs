//! Learned Souping (LS) and Partition Learned Souping (PLS), as the paper's reference code:
//! mixing logits `A [groups, N]`, weights `softmax(A)` per group, a learnable temperature on the
//! logits, plain SGD with cosine annealing and warm restarts, cross-entropy on validation nodes,
//! one step per epoch. PLS takes each step on the union of R of K METIS parts.
//!
//! Unlike the reference, ingredient weights never get gradients (they are a frozen stack mixed
//! by one contraction per tensor), evaluation runs without autograd, and full-graph LS computes
//! the first layer's weight-independent aggregation once when dropout is off.

use std::time::Instant;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Kind, Tensor};

use super::partition::{self, Partition};
use super::{InitKind, SoupContext, SoupOutcome, Strategy};
use crate::engine::report::{EpochRecord, HoldoutResult};
use crate::engine::Event;
use crate::model::{self, GraphTensors};
use crate::optim::{cosine_warm_restarts, sgd_step};

/// The raw mixing logits at initialisation (see `shared/docs/souping.md`).
pub fn init_logits(init: InitKind, groups: usize, n: usize, device: tch::Device) -> Tensor {
    let mut ones = Tensor::ones([groups as i64, n as i64], (Kind::Float, device));
    let raw = match init {
        InitKind::Ones => ones,
        InitKind::Uniform => {
            let b = (6.0 / (groups + n) as f64).sqrt();
            ones.uniform_(-b, b)
        }
        InitKind::Normal => {
            let std = (2.0 / (groups + n) as f64).sqrt();
            ones.normal_(0.0, std)
        }
    };
    // The reference stores softmax(raw) as the parameter and applies softmax again when mixing.
    raw.softmax(1, Kind::Float)
}

/// Validation nodes split into the part the weights are fitted on and a held-out part used only
/// to pick the epoch (when `holdout` > 0).
fn split_validation(ctx: &SoupContext) -> (Vec<i64>, Vec<i64>) {
    let mut val = ctx.graph.val.clone();
    let h = ctx.settings.holdout;
    if h <= 0.0 {
        return (val, Vec::new());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(ctx.settings.seed ^ 0x5eed);
    val.shuffle(&mut rng);
    let k = ((val.len() as f64) * h).round().clamp(1.0, val.len() as f64 - 1.0) as usize;
    let (mut select, mut fit) = (val[..k].to_vec(), val[k..].to_vec());
    select.sort_unstable();
    fit.sort_unstable();
    (fit, select)
}

fn long(v: &[i64], device: tch::Device) -> Tensor {
    Tensor::from_slice(v).to_device(device)
}

pub fn learned(ctx: &SoupContext) -> Result<SoupOutcome> {
    let s = ctx.settings;
    let stack = ctx.stack;
    let spec = &stack.spec;
    let device = stack.device;
    let (group_names, group_of) = stack.groups(s.mix);
    tch::manual_seed(s.seed as i64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(s.seed);

    let (fit_nodes, select_nodes) = split_validation(ctx);
    let fit_idx = long(&fit_nodes, device);
    let select_idx = (!select_nodes.is_empty()).then(|| long(&select_nodes, device));

    let pls = match s.strategy {
        Strategy::Pls => {
            let cache = partition::cache_path(ctx.graph, s.parts);
            let t = Instant::now();
            let (p, cached) = partition::get_or_compute(ctx.graph, s.parts, &cache)?;
            ctx.log("info", if cached { format!("PLS: {} parts read from {}", s.parts, cache.display()) } else { format!("PLS: METIS split the graph into {} parts in {:.2}s (cached at {})", s.parts, t.elapsed().as_secs_f64(), cache.display()) });
            let mut in_fit = vec![false; ctx.graph.num_nodes];
            for &v in &fit_nodes {
                in_fit[v as usize] = true;
            }
            Some((p, in_fit))
        }
        Strategy::Ls => None,
        other => bail!("{other} is not a learned strategy"),
    };

    // Dropout active while fitting, as in the reference (the model stays in training mode).
    let train_mode = s.dropout && spec.dropout > 0.0;
    let pre = if pls.is_none() && !train_mode { model::first_aggregate(spec, ctx.gt) } else { None };

    let logits_a = init_logits(s.init, group_names.len(), stack.len(), device).set_requires_grad(true);
    let beta = Tensor::ones([], (Kind::Float, device)).set_requires_grad(true);
    let labels = &ctx.gt.labels;
    // Full-graph LS without dropout scores validation accuracy from its own forward pass (the
    // weights the epoch's loss was computed at), so it needs no second pass. Otherwise an extra
    // inference pass measures it: every epoch on small graphs, every 5th on large ones.
    let free_val = pls.is_none() && !train_mode;
    let eval_every = if ctx.graph.num_nodes <= 100_000 { 1 } else { 5 };

    let mut out = SoupOutcome::default();
    let mut best: Option<(f64, usize, Tensor)> = None; // (select acc, epoch, alpha)
    let mut since_best = 0usize;
    let mut stopped_early = false;
    let mut val_acc = f64::NAN;
    let started = Instant::now();
    for epoch in 0..s.epochs {
        if ctx.cancelled() {
            out.partial = true;
            break;
        }
        let lr = cosine_warm_restarts(s.lr, 0.0, s.t0, epoch);
        let loss = match &pls {
            None => {
                let alpha = logits_a.softmax(1, Kind::Float);
                let params = stack.mix(&alpha, &group_of);
                let logits = model::forward_from(spec, &params, ctx.gt, train_mode, pre.as_ref());
                if free_val && select_idx.is_none() {
                    val_acc = model::accuracy(&logits.detach(), labels, &ctx.gt.val_idx);
                }
                model::loss(&(logits * &beta), labels, &fit_idx)
            }
            Some((p, in_fit)) => match pls_step_loss(ctx, p, in_fit, &logits_a, &beta, &group_of, train_mode, epoch, &mut rng) {
                Some(l) => l,
                None => continue,
            },
        };
        loss.backward();
        sgd_step(&mut [logits_a.shallow_clone(), beta.shallow_clone()], lr);
        let loss_v = loss.double_value(&[]);
        if !loss_v.is_finite() {
            bail!("the loss became {loss_v} at epoch {epoch}: lower --lr");
        }

        let alpha = tch::no_grad(|| logits_a.softmax(1, Kind::Float));
        let mut select_acc = None;
        let measure = select_idx.is_some() || (!free_val && ((epoch + 1) % eval_every == 0 || epoch + 1 == s.epochs));
        if measure {
            let logits = tch::no_grad(|| model::forward(spec, &stack.mix(&alpha, &group_of), ctx.gt, false));
            val_acc = model::accuracy(&logits, labels, &ctx.gt.val_idx);
            if let Some(sel) = &select_idx {
                let acc = model::accuracy(&logits, labels, sel);
                select_acc = Some(acc);
                if best.as_ref().is_none_or(|b| acc > b.0) {
                    best = Some((acc, epoch, alpha.copy()));
                    since_best = 0;
                } else {
                    since_best += 1;
                }
            }
        }
        let weights = to_rows(&alpha);
        let seconds = started.elapsed().as_secs_f64();
        (ctx.emit)(Event::Epoch { epoch, epochs: s.epochs, loss: loss_v, val_acc, select_acc, lr, weights, seconds });
        out.history.push(EpochRecord { epoch, loss: loss_v, val_acc, select_acc, lr, seconds });
        if select_idx.is_some() && since_best >= s.patience {
            stopped_early = true;
            ctx.log("info", format!("early stop at epoch {epoch}: no gain on the held-out nodes for {} epochs", s.patience));
            break;
        }
    }

    let final_alpha = match &best {
        Some((_, _, a)) => a.shallow_clone(),
        None => tch::no_grad(|| logits_a.softmax(1, Kind::Float)),
    };
    let params = tch::no_grad(|| stack.mix(&final_alpha, &group_of));
    if let (Some(_), Some((sel_acc, best_epoch, _))) = (&select_idx, &best) {
        let logits = tch::no_grad(|| model::forward(spec, &params, ctx.gt, false));
        out.holdout = Some(HoldoutResult {
            fit_nodes: fit_nodes.len(),
            select_nodes: select_nodes.len(),
            best_epoch: *best_epoch,
            fit_acc: model::accuracy(&logits, labels, &fit_idx),
            select_acc: *sel_acc,
            stopped_early,
        });
    }
    let rows = to_rows(&final_alpha);
    out.weights = stack.names.iter().zip(&group_of).map(|(n, &g)| (n.clone(), rows[g].clone())).collect();
    out.params = Some(params.into_iter().map(|(k, v)| (k, v.detach())).collect());
    Ok(out)
}

/// One PLS step's loss: sample R parts, build their subgraph, forward on it with the mixed
/// weights, cross-entropy on the fitting validation nodes inside. None when the sample holds no
/// such node (the step is skipped).
#[allow(clippy::too_many_arguments)]
fn pls_step_loss(
    ctx: &SoupContext,
    p: &Partition,
    in_fit: &[bool],
    logits_a: &Tensor,
    beta: &Tensor,
    group_of: &[usize],
    train_mode: bool,
    epoch: usize,
    rng: &mut rand::rngs::StdRng,
) -> Option<Tensor> {
    let s = ctx.settings;
    let device = ctx.stack.device;
    let chosen = p.sample(s.sample, rng);
    let sub = p.subgraph(&chosen);
    let local_fit: Vec<i64> = sub.nodes.iter().enumerate().filter(|(_, &v)| in_fit[v as usize]).map(|(i, _)| i as i64).collect();
    (ctx.emit)(Event::PartitionSample { epoch, parts: chosen, nodes: sub.nodes.len(), edges: sub.src.len(), val_nodes: local_fit.len() });
    if local_fit.is_empty() {
        ctx.log("warn", format!("PLS epoch {epoch}: the sampled parts hold no validation node; step skipped"));
        return None;
    }
    let nodes = long(&sub.nodes, device);
    let fit = long(&local_fit, device);
    let sg = GraphTensors::from_parts(
        sub.nodes.len() as i64,
        ctx.gt.x.index_select(0, &nodes),
        ctx.gt.labels.index_select(0, &nodes),
        long(&sub.src, device),
        long(&sub.dst, device),
        [fit.shallow_clone(), fit.shallow_clone(), fit.shallow_clone()],
    );
    let alpha = logits_a.softmax(1, Kind::Float);
    let params = ctx.stack.mix(&alpha, group_of);
    let logits = model::forward(&ctx.stack.spec, &params, &sg, train_mode);
    Some(model::loss(&(logits * beta), &sg.labels, &fit))
}

fn to_rows(alpha: &Tensor) -> Vec<Vec<f64>> {
    let a = alpha.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let (g, n) = (a.size()[0], a.size()[1]);
    let flat: Vec<f64> = Vec::try_from(a.view([-1])).unwrap_or_default();
    (0..g as usize).map(|i| flat[i * n as usize..(i + 1) * n as usize].to_vec()).collect()
}
