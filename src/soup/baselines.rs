//! The baselines: uniform soup, greedy soup (Wortsman et al.), greedy interpolated soup (GIS,
//! Graph Ladling) and the logit ensemble.

use tch::Tensor;

use super::context::{global_weights, SoupContext, SoupOutcome};
use super::progress::{CandidateRecord, Progress};
use crate::model::{self, ParamMap, TargetPlan};

/// What scoring candidates by validation accuracy needs computed: the validation nodes and
/// what they depend on (see [`TargetPlan`]).
fn val_plan(ctx: &SoupContext) -> TargetPlan {
    TargetPlan::new(&ctx.stack.spec, ctx.gt, &ctx.gt.val_idx)
}

/// Validation accuracy of `params`; `first_conv`: the first convolution's output, where the
/// caller has it.
fn val_acc(
    ctx: &SoupContext,
    plan: &TargetPlan,
    params: &ParamMap,
    first_conv: Option<Tensor>,
) -> f64 {
    let logits = model::infer_targets(&ctx.stack.spec, params, ctx.gt, plan, first_conv);
    plan.accuracy(&logits, &ctx.gt.labels, &ctx.gt.val_idx)
}

/// How greedy and GIS order the ingredients, as the report states it.
pub const RANKING: &str = "ingredients ranked by validation accuracy, best first; ties put the higher index first, as the reference's descending sort of (accuracy, index) pairs";

/// Ingredient indices by validation accuracy, best first; among equal accuracies the higher
/// index first (the reference sorts (accuracy, index) pairs in descending order, and on Cora the
/// tie order alone moves GIS by 0.4 point).
pub fn rank_by_accuracy(val: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..val.len()).collect();
    order.sort_by(|&a, &b| val[b].total_cmp(&val[a]).then(b.cmp(&a)));
    order
}

fn ranked(ctx: &SoupContext) -> Vec<usize> {
    rank_by_accuracy(ctx.ingredient_val)
}

fn one_hot(n: usize, i: usize) -> Vec<f64> {
    let mut w = vec![0.0; n];
    w[i] = 1.0;
    w
}

pub fn uniform(ctx: &SoupContext) -> anyhow::Result<SoupOutcome> {
    let n = ctx.stack.len();
    let w = vec![1.0 / n as f64; n];
    Ok(SoupOutcome {
        params: Some(ctx.stack.mix_global(&w)),
        weights: global_weights(ctx.stack, &w),
        ..Default::default()
    })
}

/// Rank by validation accuracy, start from the best, add each next ingredient as an equal-weight
/// member and keep it only if validation accuracy strictly improves.
pub fn greedy(ctx: &SoupContext) -> anyhow::Result<SoupOutcome> {
    let n = ctx.stack.len();
    let order = ranked(ctx);
    let mut members = vec![order[0]];
    let mut best = ctx.ingredient_val[order[0]];
    let mut out = SoupOutcome::default();
    let plan = val_plan(ctx);
    for (step, &cand) in order.iter().enumerate().skip(1) {
        if ctx.cancelled() {
            out.partial = true;
            break;
        }
        let weight = 1.0 / (members.len() + 1) as f64;
        let mut w = vec![0.0; n];
        for &m in members.iter().chain(std::iter::once(&cand)) {
            w[m] = weight;
        }
        let acc = val_acc(ctx, &plan, &ctx.stack.mix_global(&w), None);
        let accepted = acc > best;
        if accepted {
            members.push(cand);
            best = acc;
        }
        let record = CandidateRecord { ingredient: cand, factor: weight, val_acc: acc, accepted };
        ctx.report(Progress::Candidate { record: record.clone(), step, steps: n - 1 });
        out.candidates.push(record);
    }
    let mut w = vec![0.0; n];
    for &m in &members {
        w[m] = 1.0 / members.len() as f64;
    }
    out.params = Some(ctx.stack.mix_global(&w));
    out.weights = global_weights(ctx.stack, &w);
    out.notes.push(RANKING.into());
    Ok(out)
}

/// Greedy interpolation: soup = best; for each next ingredient M, try `a` on a grid of
/// `granularity` points in [0, 1] for `a * soup + (1 - a) * M` and keep the first `a` with the
/// best validation accuracy (`a = 1` leaves M out).
///
/// Passes that are not needed are not run:
/// - the grid's ends are models already measured: `a = 0` is M (its accuracy ranked it) and
///   `a = 1` the soup so far (measured when it was chosen), so 2 of every `granularity` passes
///   are skipped;
/// - the first convolution is linear in its weights for GCN and SAGE, so its output for `a` is
///   `a * h(soup) + (1 - a) * h(M)`: computed once per ingredient (`h(M)`; `h(soup)` follows the
///   soup) instead of once per grid point;
/// - each pass computes only what the validation nodes' logits depend on ([`TargetPlan`]).
pub fn gis(ctx: &SoupContext) -> anyhow::Result<SoupOutcome> {
    let n = ctx.stack.len();
    let spec = &ctx.stack.spec;
    let g = ctx.settings.granularity;
    let order = ranked(ctx);
    let mut soup_w = one_hot(n, order[0]);
    let mut best_so_far = ctx.ingredient_val[order[0]];
    let mut out = SoupOutcome::default();
    let _guard = tch::no_grad_guard();
    let reuse_first = model::first_conv_is_linear(spec);
    let pre = if reuse_first { model::first_aggregate(spec, ctx.gt) } else { None };
    let plan = val_plan(ctx);
    let first_conv = |w: &[f64]| {
        model::conv(
            spec,
            &ctx.stack.mix_global(w),
            ctx.gt,
            0,
            ctx.gt.features(spec.row_normalize),
            false,
            pre.as_ref(),
        )
    };
    // The soup's first convolution, carried along as the soup changes (it is the same convex
    // combination of the ingredients' outputs as the soup is of their weights).
    let mut soup_first = reuse_first.then(|| first_conv(&soup_w));
    'ingredients: for (step, &cand) in order.iter().enumerate().skip(1) {
        let cand_w = one_hot(n, cand);
        let first = soup_first.as_ref().map(|hs| (hs, first_conv(&cand_w)));
        let (mut best_acc, mut best_a) = (-1.0, 1.0);
        for k in 0..g {
            if step == 1 {
                ctx.hold_for_tests(k);
            }
            if ctx.cancelled() {
                out.partial = true;
                break 'ingredients;
            }
            let a = k as f64 / (g - 1) as f64;
            let acc = if k == 0 {
                ctx.ingredient_val[cand]
            } else if k == g - 1 {
                best_so_far
            } else {
                let w: Vec<f64> =
                    soup_w.iter().zip(&cand_w).map(|(s, m)| a * s + (1.0 - a) * m).collect();
                // one new buffer: hm + a (hs - hm)
                let first_conv = first.as_ref().map(|(hs, hm)| hm.lerp(hs, a));
                val_acc(ctx, &plan, &ctx.stack.mix_global(&w), first_conv)
            };
            if acc > best_acc {
                best_acc = acc;
                best_a = a;
            }
        }
        let accepted = best_a < 1.0 && best_acc >= best_so_far;
        if accepted {
            soup_w =
                soup_w.iter().zip(&cand_w).map(|(s, m)| best_a * s + (1.0 - best_a) * m).collect();
            best_so_far = best_acc;
            soup_first = first.map(|(hs, hm)| hm.lerp(hs, best_a));
        }
        let record =
            CandidateRecord { ingredient: cand, factor: best_a, val_acc: best_acc, accepted };
        ctx.report(Progress::Candidate { record: record.clone(), step, steps: n - 1 });
        out.candidates.push(record);
    }
    out.params = Some(ctx.stack.mix_global(&soup_w));
    out.weights = global_weights(ctx.stack, &soup_w);
    out.notes.push(RANKING.into());
    Ok(out)
}

/// Mean of the ingredients' logits: N forward passes per prediction, an upper reference.
pub fn ensemble(ctx: &SoupContext) -> anyhow::Result<SoupOutcome> {
    let mut sum: Option<Tensor> = None;
    let mut used = 0;
    for i in 0..ctx.stack.len() {
        if ctx.cancelled() {
            break;
        }
        let l = model::infer(&ctx.stack.spec, &ctx.stack.ingredient(i), ctx.gt);
        sum = Some(match sum {
            Some(s) => s + l,
            None => l,
        });
        used += 1;
    }
    Ok(SoupOutcome {
        logits: sum.map(|s| s / used as f64),
        partial: used < ctx.stack.len(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ties_rank_the_higher_index_first_as_the_reference() {
        assert_eq!(super::rank_by_accuracy(&[0.8, 0.9, 0.8, 0.9, 0.7]), vec![3, 1, 2, 0, 4]);
        assert_eq!(super::rank_by_accuracy(&[]), Vec::<usize>::new());
    }
}
