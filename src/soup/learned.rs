//! Learned Souping (LS) and Partition Learned Souping (PLS), as the paper's reference code:
//! mixing logits `A [groups, N]`, weights `softmax(A)` per group, a learnable temperature on the
//! logits, plain SGD (or, with `--optimizer auto`, Adam at a fixed step) with cosine annealing
//! and warm restarts, cross-entropy on validation nodes, one step per epoch. PLS takes each step on the union of R of K METIS parts.
//!
//! Unlike the reference, ingredient weights never get gradients (they are a frozen stack mixed
//! by one contraction per tensor), evaluation runs without autograd, and full-graph LS computes
//! the first layer's weight-independent aggregation once when nothing random touches that
//! layer's input (dropout off, or the model does not drop it) and the result stays small.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rand::distributions::{Distribution, Uniform};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::Normal;
use tch::{Kind, Tensor};

use super::context::{SoupContext, SoupOutcome};
use super::partition::{self, Partition};
use super::progress::{EpochRecord, HoldoutResult, LogLevel, Progress};
use super::settings::{auto_step, InitKind, OptimizerKind, Strategy};
use super::state::FitState;
use crate::model::{self, rng, GraphTensors};
use crate::optim::{self, cosine_warm_restarts};

/// How often the state is saved while a fit runs (and always when it is stopped).
const SAVE_EVERY: Duration = Duration::from_secs(5);

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.detach().to_device(tch::Device::Cpu).contiguous().view([-1]))
        .unwrap_or_default()
}

/// The raw mixing logits at initialisation (see `docs/method.md#initialisation-of-the-logits`),
/// drawn from this thread's random stream ([`rng`]).
pub fn init_logits(init: InitKind, groups: usize, n: usize, device: tch::Device) -> Tensor {
    let len = groups * n;
    let raw: Vec<f32> = match init {
        InitKind::Ones => vec![1.0; len],
        InitKind::Uniform => {
            let b = (6.0 / (groups + n) as f64).sqrt() as f32;
            let u = Uniform::new_inclusive(-b, b);
            let mut g = rng::generator();
            (0..len).map(|_| u.sample(&mut g)).collect()
        }
        InitKind::Normal => {
            let std = (2.0 / (groups + n) as f64).sqrt() as f32;
            let d = Normal::new(0.0f32, std).expect("a positive standard deviation");
            let mut g = rng::generator();
            (0..len).map(|_| d.sample(&mut g)).collect()
        }
    };
    // The reference stores softmax(raw) as the parameter and applies softmax again when mixing.
    Tensor::from_slice(&raw)
        .view([groups as i64, n as i64])
        .to_device(device)
        .softmax(1, Kind::Float)
}

/// Validation nodes split into the part the weights are fitted on and a held-out part used only
/// to pick the epoch (when `holdout` > 0).
pub fn split_validation(val: &[i64], holdout: f64, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let mut val = val.to_vec();
    if holdout <= 0.0 || val.len() < 2 {
        return (val, Vec::new());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    val.shuffle(&mut rng);
    let k = ((val.len() as f64) * holdout).round().clamp(1.0, val.len() as f64 - 1.0) as usize;
    let (mut select, mut fit) = (val[..k].to_vec(), val[k..].to_vec());
    select.sort_unstable();
    fit.sort_unstable();
    (fit, select)
}

fn long(v: &[i64], device: tch::Device) -> Tensor {
    Tensor::from_slice(v).to_device(device)
}

/// PLS's partition of the graph, and which nodes the weights are fitted on.
struct Parts {
    partition: Partition,
    in_fit: Vec<bool>,
}

/// The state of one LS/PLS fit, set up once and advanced one epoch at a time ([`learned`] drives
/// it; public so the benchmarks time one step of the real thing).
pub struct Fit<'a> {
    ctx: &'a SoupContext<'a>,
    group_of: Vec<usize>,
    fit_nodes: Vec<i64>,
    select_nodes: Vec<i64>,
    fit_idx: Tensor,
    select_idx: Option<Tensor>,
    pls: Option<Parts>,
    /// Dropout and batch norm's statistics while fitting (the reference's model stays in
    /// training mode: both on, unless the settings turn them off).
    mode: model::Mode,
    /// Full-graph LS: which rows of each layer the fitting nodes' loss depends on, the only ones
    /// its passes compute ([`fit_plan`]; PLS makes one per sampled subgraph).
    fit_plan: model::TargetPlan,
    /// The first layer's weight-independent aggregation, when it can be computed once (at
    /// `fit_plan`'s first-layer rows).
    pre: Option<Tensor>,
    logits_a: Tensor,
    beta: Tensor,
    /// Steps `logits_a` and `beta` (the same tensors, updated in place).
    opt: Stepper,
    /// Full-graph LS whose fitting pass computes what inference of the kept soup would (no
    /// dropout; batch statistics of the whole graph, which are what [`Fit::soup`] keeps) scores
    /// validation accuracy from that pass, so it needs no second one.
    free_val: bool,
    /// Otherwise an extra inference pass measures it: every epoch on small graphs, every 5th on
    /// large ones.
    eval_every: usize,
    /// What those passes compute: the validation nodes' logits and what they depend on (the
    /// fit and select nodes are validation nodes too); made on the first pass.
    val_plan: std::cell::OnceCell<model::TargetPlan>,
    /// PLS: draws each epoch's parts (one draw per epoch, so a resumed fit replays them).
    rng: rand::rngs::StdRng,
    started: Instant,
    val_acc: f64,
    /// (held-out accuracy, epoch, weights) of the best epoch so far, with early stopping.
    best: Option<(f64, usize, Tensor)>,
    since_best: usize,
}

/// Up to this many entries (nodes x features), LS computes the first layer's aggregation A X once
/// even when the features are sparse; above it, X W as a sparse product each epoch is cheaper than
/// the dense (A X) W, and A X itself would be a dense copy of the features. Measured (LS, 100
/// epochs, GCN, 2-core CPU): Cora, 2,708 x 1,433, 0.79 s with it against 1.13 s without;
/// CiteSeer, 3,327 x 3,703, 2.19 s with it against 1.43 s without.
const PRE_AGGREGATE_SPARSE_MAX: i64 = 4_000_000;

/// The optimiser of the mixing logits: libtorch's SGD (the paper's; it has no state), or Adam
/// (`--optimizer auto`) with its state kept, so that a stopped fit resumes exactly.
enum Stepper {
    Sgd(tch::COptimizer),
    Adam(optim::ResumableAdam),
}

impl Stepper {
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        match self {
            Stepper::Sgd(o) => Ok(o.set_learning_rate(lr)?),
            Stepper::Adam(a) => {
                a.set_learning_rate(lr);
                Ok(())
            }
        }
    }

    fn step(&mut self) -> Result<()> {
        match self {
            Stepper::Sgd(o) => optim::step(o),
            Stepper::Adam(a) => a.step(),
        }
    }
}

pub fn learned(ctx: &SoupContext) -> Result<SoupOutcome> {
    let mut fit = Fit::prepare(ctx)?;
    let mut out = SoupOutcome::default();
    let mut stopped_early = false;
    let mut first = 0;
    if let Some(state) = ctx.resume {
        first = fit.restore(state)?;
        out.history = state.history.clone();
        ctx.log(LogLevel::Info, format!("resuming at epoch {first} of {}", ctx.settings.epochs));
    }
    let mut saved = Instant::now();
    for epoch in first..ctx.settings.epochs {
        ctx.hold_for_tests(epoch);
        if ctx.cancelled() {
            out.partial = true;
            fit.save(epoch, &out.history);
            break;
        }
        if saved.elapsed() >= SAVE_EVERY {
            fit.save(epoch, &out.history);
            saved = Instant::now();
        }
        // An epoch's record describes the weights its step starts from, measured by the step's
        // own pass where that pass is an inference pass, by another pass otherwise.
        let weights = fit.alpha();
        let Some((loss, lr)) = fit.step(epoch)? else { continue };
        let record = fit.measure(epoch, loss, lr, weights);

        out.history.push(record);
        if fit.select_idx.is_some() && fit.since_best >= ctx.settings.patience {
            stopped_early = true;
            ctx.log(
                LogLevel::Info,
                format!(
                    "early stop at epoch {epoch}: no gain on the held-out nodes for {} epochs",
                    ctx.settings.patience
                ),
            );
            break;
        }
    }
    fit.finish(out, stopped_early)
}

impl<'a> Fit<'a> {
    /// Hands the state at the start of `next_epoch` to the engine, which keeps it.
    fn save(&self, next_epoch: usize, history: &[EpochRecord]) {
        let Some(save) = self.ctx.save_state else { return };
        let size = self.logits_a.size();
        save(&FitState {
            next_epoch,
            groups: size[0] as usize,
            ingredients: size[1] as usize,
            logits: to_vec(&self.logits_a),
            beta: self.beta.double_value(&[]) as f32,
            stream: rng::stream_state(),
            val_acc: self.val_acc,
            best: self.best.as_ref().map(|(acc, epoch, alpha)| (*acc, *epoch, to_vec(alpha))),
            since_best: self.since_best,
            history: history.to_vec(),
            adam: match &self.opt {
                Stepper::Adam(a) => Some(a.state()),
                Stepper::Sgd(_) => None,
            },
        });
    }

    /// Continues from a saved state; returns the epoch to start at. The engine has checked the
    /// state against this fit ([`FitState::check`]); what would otherwise be a panic in libtorch
    /// or `std` is still refused here.
    fn restore(&mut self, s: &FitState) -> Result<usize> {
        let size = self.logits_a.size();
        let len = s.groups.checked_mul(s.ingredients);
        if [s.groups as i64, s.ingredients as i64] != [size[0], size[1]]
            || Some(s.logits.len()) != len
            || s.best.as_ref().is_some_and(|b| Some(b.2.len()) != len)
        {
            bail!(
                "the saved state mixes {} groups of {} ingredients; this run has {} of {}",
                s.groups,
                s.ingredients,
                size[0],
                size[1]
            );
        }
        let device = self.logits_a.device();
        let tensor = |v: &[f32]| {
            Tensor::from_slice(v).view([s.groups as i64, s.ingredients as i64]).to_device(device)
        };
        // In place: the optimiser holds these tensors.
        tch::no_grad(|| {
            self.logits_a.copy_(&tensor(&s.logits));
            self.beta.copy_(&Tensor::from(s.beta).to_device(device));
        });
        if let (Stepper::Adam(a), Some(state)) = (&mut self.opt, &s.adam) {
            a.restore(state)?;
        }
        rng::restore_stream(s.stream);
        self.val_acc = s.val_acc;
        self.best = s.best.as_ref().map(|(acc, epoch, alpha)| (*acc, *epoch, tensor(alpha)));
        self.since_best = s.since_best;
        let first = s.next_epoch.min(self.ctx.settings.epochs);
        // PLS's part draws: replayed up to where the stopped fit was (one per epoch). A signal
        // stops the replay too: the fit then saves the state it was given, unchanged.
        if let Some(parts) = &self.pls {
            for epoch in 0..first {
                if epoch % 4096 == 0 && self.ctx.cancelled() {
                    break;
                }
                parts.partition.sample(self.ctx.settings.sample, &mut self.rng);
            }
        }
        let done = s.history.last().map_or(0.0, |r| r.seconds);
        self.started = Duration::try_from_secs_f64(done)
            .ok()
            .and_then(|d| Instant::now().checked_sub(d))
            .unwrap_or_else(Instant::now);
        Ok(first)
    }

    /// Everything before the first epoch: node sets, PLS's partition, the logits, the optimiser.
    pub fn prepare(ctx: &'a SoupContext<'a>) -> Result<Fit<'a>> {
        let s = ctx.settings;
        let stack = ctx.stack;
        let device = stack.device;
        let (group_names, group_of) = stack.groups(s.mix);
        rng::seed_thread(s.seed);
        if s.holdout > 0.0 && ctx.graph.val.len() < 2 {
            bail!(
                "--holdout needs at least 2 validation nodes to hold some out; {} has {}",
                ctx.graph.name,
                ctx.graph.val.len()
            );
        }
        let (fit_nodes, select_nodes) = split_validation(&ctx.graph.val, s.holdout, s.seed);
        let pls = match s.strategy {
            Strategy::Pls => Some(Parts {
                partition: load_partition(ctx)?,
                in_fit: membership(ctx.graph.num_nodes, &fit_nodes),
            }),
            Strategy::Ls => None,
            other => bail!("{other} is not a learned strategy"),
        };
        let batch_norm = if s.batch_stats && stack.spec.batch_norm {
            model::BatchNormMode::Batch
        } else {
            model::BatchNormMode::Running
        };
        let mode = model::Mode { dropout: s.dropout && stack.spec.has_dropout(), batch_norm };
        // Exact when nothing random touches the first layer's input: dropout off, or not applied
        // there. On sparse features only while the dense A X stays small (see PRE_AGGREGATE_SPARSE_MAX).
        let (x, sparse) = ctx.gt.input(stack.spec.row_normalize);
        let worth_it = !sparse || x.size().iter().product::<i64>() <= PRE_AGGREGATE_SPARSE_MAX;
        let fit_idx = long(&fit_nodes, device);
        // (PLS makes one for each step's subgraph instead.)
        let fit_plan = if pls.is_none() {
            fit_plan(&stack.spec, ctx.gt, &fit_idx, mode)
        } else {
            model::TargetPlan::whole(&stack.spec, ctx.gt)
        };
        let pre = if pls.is_none() && worth_it && (!mode.dropout || !stack.spec.drops_input(0)) {
            model::first_aggregate(&stack.spec, ctx.gt).map(|pre| fit_plan.first_rows(&pre))
        } else {
            None
        };
        let logits_a =
            init_logits(s.init, group_names.len(), stack.len(), device).set_requires_grad(true);
        let beta = Tensor::ones([], (Kind::Float, device)).set_requires_grad(true);
        let leaves = [logits_a.shallow_clone(), beta.shallow_clone()];
        let opt = match s.optimizer {
            OptimizerKind::Sgd => Stepper::Sgd(optim::sgd(&leaves, s.lr)?),
            OptimizerKind::Auto => {
                Stepper::Adam(optim::ResumableAdam::new(&leaves, auto_step(s.strategy)))
            }
        };
        Ok(Fit {
            ctx,
            fit_idx,
            fit_plan,
            select_idx: (!select_nodes.is_empty()).then(|| long(&select_nodes, device)),
            free_val: pls.is_none() && !mode.dropout,
            eval_every: if ctx.graph.num_nodes <= 100_000 { 1 } else { 5 },
            val_plan: std::cell::OnceCell::new(),
            logits_a,
            beta,
            opt,
            group_of,
            fit_nodes,
            select_nodes,
            pls,
            mode,
            pre,
            started: Instant::now(),
            rng: rand::rngs::StdRng::seed_from_u64(s.seed),
            val_acc: f64::NAN,
            best: None,
            since_best: 0,
        })
    }

    fn alpha(&self) -> Tensor {
        tch::no_grad(|| self.logits_a.softmax(1, Kind::Float))
    }

    /// The soup at weights `alpha`, as it is kept: fitted with batch statistics, its running
    /// statistics are its own on the whole graph (without dropout), as the fit normalised.
    fn soup(&self, alpha: &Tensor) -> model::ParamMap {
        let ctx = self.ctx;
        let params = tch::no_grad(|| ctx.stack.mix(alpha, &self.group_of));
        if self.mode.batch_norm == model::BatchNormMode::Batch {
            model::recalibrate_batch_norm(&ctx.stack.spec, &params, ctx.gt);
        }
        params
    }

    /// One optimisation step: the loss at the current weights, its gradient, an SGD or Adam update.
    /// None when a PLS sample holds no fitting node (the step is skipped).
    pub fn step(&mut self, epoch: usize) -> Result<Option<(f64, f64)>> {
        let ctx = self.ctx;
        let base = match ctx.settings.optimizer {
            OptimizerKind::Sgd => ctx.settings.lr,
            OptimizerKind::Auto => auto_step(ctx.settings.strategy),
        };
        let lr = cosine_warm_restarts(base, 0.0, ctx.settings.t0, epoch);
        let loss = match &self.pls {
            None => {
                let alpha = self.logits_a.softmax(1, Kind::Float);
                let params = ctx.stack.mix(&alpha, &self.group_of);
                let (spec, gt, plan) = (&ctx.stack.spec, ctx.gt, &self.fit_plan);
                let logits =
                    model::forward_planned(spec, &params, gt, plan, self.mode, self.pre.as_ref());
                if self.free_val && self.select_idx.is_none() {
                    // Without held-out nodes the fitting nodes are the validation nodes.
                    self.val_acc = plan.accuracy(&logits.detach(), &gt.labels, &gt.val_idx);
                }
                plan.loss(&(logits * &self.beta), &gt.labels, &self.fit_idx)
            }
            Some(parts) => match pls_step_loss(
                ctx,
                parts,
                &self.logits_a,
                &self.beta,
                &self.group_of,
                self.mode,
                epoch,
                &mut self.rng,
            ) {
                Some(l) => l,
                None => return Ok(None),
            },
        };
        self.opt.set_learning_rate(lr)?;
        loss.backward();
        self.opt.step()?;
        let loss = loss.double_value(&[]);
        if !loss.is_finite() {
            let advice = match ctx.settings.optimizer {
                OptimizerKind::Sgd => "lower --lr",
                OptimizerKind::Auto => "try --optimizer sgd with a small --lr",
            };
            bail!("the loss became {loss} at epoch {epoch}: {advice}");
        }
        Ok(Some((loss, lr)))
    }

    fn val_plan(&self) -> &model::TargetPlan {
        let ctx = self.ctx;
        self.val_plan
            .get_or_init(|| model::TargetPlan::new(&ctx.stack.spec, ctx.gt, &ctx.gt.val_idx))
    }

    /// Inference-mode logits of the validation nodes (rows of [`Fit::val_plan`]).
    fn val_logits(&self, params: &model::ParamMap) -> Tensor {
        model::infer_targets(&self.ctx.stack.spec, params, self.ctx.gt, self.val_plan(), None)
    }

    /// Measures validation (and held-out) accuracy when due, tracks the best epoch, and reports
    /// the epoch.
    fn measure(&mut self, epoch: usize, loss: f64, lr: f64, alpha: Tensor) -> EpochRecord {
        let ctx = self.ctx;
        let epochs = ctx.settings.epochs;
        let mut select_acc = None;
        // Off, none: the last epoch's pass would score the weights that epoch started from, not
        // the soup, whose accuracy the final evaluation gives (as for every strategy).
        let due = self.select_idx.is_some()
            || (!self.free_val
                && ctx.settings.fit_validation
                && ((epoch + 1).is_multiple_of(self.eval_every) || epoch + 1 == epochs));
        if due {
            let logits = self.val_logits(&self.soup(&alpha));
            self.val_acc = self.val_plan().accuracy(&logits, &ctx.gt.labels, &ctx.gt.val_idx);
            if let Some(sel) = &self.select_idx {
                let acc = self.val_plan().accuracy(&logits, &ctx.gt.labels, sel);
                select_acc = Some(acc);
                if self.best.as_ref().is_none_or(|b| acc > b.0) {
                    self.best = Some((acc, epoch, alpha.copy()));
                    self.since_best = 0;
                } else {
                    self.since_best += 1;
                }
            }
        }
        let record = EpochRecord {
            epoch,
            loss,
            val_acc: self.val_acc,
            select_acc,
            lr,
            seconds: self.started.elapsed().as_secs_f64(),
        };
        ctx.report(Progress::Epoch { epochs, record: record.clone(), weights: to_rows(&alpha) });
        record
    }

    /// The soup at the best epoch (with early stopping) or the last one, and its weights.
    fn finish(self, mut out: SoupOutcome, stopped_early: bool) -> Result<SoupOutcome> {
        let ctx = self.ctx;
        let final_alpha = match &self.best {
            Some((_, _, a)) => a.shallow_clone(),
            None => self.alpha(),
        };
        let params = self.soup(&final_alpha);
        if let (Some(_), Some((sel_acc, best_epoch, _))) = (&self.select_idx, &self.best) {
            let logits = self.val_logits(&params);
            out.holdout = Some(HoldoutResult {
                fit_nodes: self.fit_nodes.len(),
                select_nodes: self.select_nodes.len(),
                best_epoch: *best_epoch,
                fit_acc: self.val_plan().accuracy(&logits, &ctx.gt.labels, &self.fit_idx),
                select_acc: *sel_acc,
                stopped_early,
            });
        }
        let rows = to_rows(&final_alpha);
        out.weights = ctx
            .stack
            .names
            .iter()
            .zip(&self.group_of)
            .map(|(n, &g)| (n.clone(), rows[g].clone()))
            .collect();
        out.params = Some(params.into_iter().map(|(k, v)| (k, v.detach())).collect());
        Ok(out)
    }
}

/// The plan LS's fitting pass over `g` (PLS's: over its sampled subgraph) goes through for the
/// fitting nodes `fit`: [`model::TargetPlan::for_training`], except for the attention
/// architectures (whose passes take the whole graph) and with batch statistics (of the whole
/// graph, in the reference), which compute every node. The environment variable
/// `GNN_SOUP_WHOLE_GRAPH_FIT` (any value) has every fit compute every node, for comparisons.
fn fit_plan(
    spec: &model::ArchSpec,
    g: &GraphTensors,
    fit: &Tensor,
    mode: model::Mode,
) -> model::TargetPlan {
    if spec.arch.attends()
        || mode.batch_statistics(spec)
        || std::env::var_os("GNN_SOUP_WHOLE_GRAPH_FIT").is_some()
    {
        model::TargetPlan::whole(spec, g)
    } else {
        model::TargetPlan::for_training(spec, g, fit)
    }
}

fn load_partition(ctx: &SoupContext) -> Result<Partition> {
    let k = ctx.settings.parts;
    let cache = partition::cache_path(ctx.graph, k);
    let t = Instant::now();
    let (p, cached) = partition::get_or_compute(ctx.graph, k, &cache)?;
    ctx.log(
        LogLevel::Info,
        if cached {
            format!("PLS: {k} parts read from {}", cache.display())
        } else {
            format!(
                "PLS: METIS split the graph into {k} parts in {:.2}s (cached at {})",
                t.elapsed().as_secs_f64(),
                cache.display()
            )
        },
    );
    Ok(p)
}

fn membership(num_nodes: usize, nodes: &[i64]) -> Vec<bool> {
    let mut v = vec![false; num_nodes];
    for &n in nodes {
        v[n as usize] = true;
    }
    v
}

/// One PLS step's loss: sample R parts, build their subgraph, forward on it with the mixed
/// weights, cross-entropy on the fitting validation nodes inside. None when the sample holds no
/// such node (the step is skipped).
#[allow(clippy::too_many_arguments)] // the fit's parts, borrowed apart so `rng` can be mutable
fn pls_step_loss(
    ctx: &SoupContext,
    parts: &Parts,
    logits_a: &Tensor,
    beta: &Tensor,
    group_of: &[usize],
    mode: model::Mode,
    epoch: usize,
    rng: &mut rand::rngs::StdRng,
) -> Option<Tensor> {
    let s = ctx.settings;
    let device = ctx.stack.device;
    let chosen = parts.partition.sample(s.sample, rng);
    let sub = parts.partition.subgraph(&chosen);
    let local_fit: Vec<i64> = sub
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, &v)| parts.in_fit[v as usize])
        .map(|(i, _)| i as i64)
        .collect();
    ctx.report(Progress::PartitionSample {
        epoch,
        parts: chosen,
        nodes: sub.nodes.len(),
        edges: sub.num_edges(),
        val_nodes: local_fit.len(),
    });
    if local_fit.is_empty() {
        ctx.log(
            LogLevel::Warn,
            format!("PLS epoch {epoch}: the sampled parts hold no validation node; step skipped"),
        );
        return None;
    }
    let batch_statistics = mode.batch_norm == model::BatchNormMode::Batch
        || (ctx.stack.spec.batch_norm && !ctx.stack.spec.has_running_stats());
    if sub.nodes.len() < 2 && batch_statistics {
        ctx.log(LogLevel::Warn, format!("PLS epoch {epoch}: the sampled parts hold one node, too few for batch statistics; step skipped"));
        return None;
    }
    let nodes = long(&sub.nodes, device);
    let fit = long(&local_fit, device);
    let sg = GraphTensors::from_parts(
        ctx.gt.x.index_select(0, &nodes),
        ctx.gt.labels.index_select(0, &nodes),
        sub.edges,
        [fit.shallow_clone(), fit.shallow_clone(), fit.shallow_clone()],
        ctx.gt.symmetric,
    );
    let alpha = logits_a.softmax(1, Kind::Float);
    let params = ctx.stack.mix(&alpha, group_of);
    let spec = &ctx.stack.spec;
    let plan = fit_plan(spec, &sg, &fit, mode);
    let logits = model::forward_planned(spec, &params, &sg, &plan, mode, None);
    Some(plan.loss(&(logits * beta), &sg.labels, &fit))
}

fn to_rows(alpha: &Tensor) -> Vec<Vec<f64>> {
    let a = alpha.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let (g, n) = (a.size()[0], a.size()[1]);
    let flat: Vec<f64> = Vec::try_from(a.view([-1])).unwrap_or_default();
    (0..g as usize).map(|i| flat[i * n as usize..(i + 1) * n as usize].to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holdout_split_is_disjoint_sorted_and_seeded() {
        let val: Vec<i64> = (100..200).collect();
        let (fit, select) = split_validation(&val, 0.25, 1);
        assert_eq!((fit.len(), select.len()), (75, 25));
        assert!(fit.windows(2).all(|w| w[0] < w[1]) && select.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<i64> = fit.iter().chain(&select).copied().collect();
        all.sort_unstable();
        assert_eq!(all, val);
        assert_eq!(split_validation(&val, 0.25, 1), (fit.clone(), select.clone()));
        assert_ne!(split_validation(&val, 0.25, 2).1, select);
        assert_eq!(split_validation(&val, 0.0, 1), (val.clone(), vec![]), "no holdout: the paper");
        assert_eq!(split_validation(&[7], 0.5, 1), (vec![7], vec![]), "one node cannot be split");
    }

    #[test]
    fn initial_logits_are_uniform_or_seeded_perturbations() {
        let ones = init_logits(InitKind::Ones, 2, 4, tch::Device::Cpu);
        assert!(ones.allclose(
            &Tensor::full([2, 4], 0.25, (Kind::Float, tch::Device::Cpu)),
            1e-6,
            1e-6,
            false
        ));
        rng::seed_thread(9);
        let a = init_logits(InitKind::Normal, 3, 5, tch::Device::Cpu);
        rng::seed_thread(9);
        let b = init_logits(InitKind::Normal, 3, 5, tch::Device::Cpu);
        assert!(a.equal(&b));
        assert!(!a.allclose(
            &Tensor::full([3, 5], 0.2, (Kind::Float, tch::Device::Cpu)),
            1e-4,
            1e-4,
            false
        ));
        let rows = a.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        assert!(rows.allclose(
            &Tensor::ones([3], (Kind::Float, tch::Device::Cpu)),
            1e-5,
            1e-5,
            false
        ));
    }
}
