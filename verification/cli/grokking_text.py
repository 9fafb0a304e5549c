"""The grokking study's report in words: one row per seed, the split of its Spearman
correlation, λ̂'s elasticity in γ along each curve, and the sensitivity check."""

from __future__ import annotations

import statistics

from sltlab.estimators.elasticity import ELASTICITY_MIN, ELASTICITY_SPREADS


def grokking_text(summary) -> str:
    setup = summary["setup"]
    lines = [f"grokking (a + b) mod {setup['modulus']}, {summary['n_train']} train / {summary['n_test']} test pairs, "
             f"{summary['dim']} parameters, AdamW lr {setup['learning_rate']:g}, "
             f"weight decay {setup['weight_decay']:g}; LLC at {len(summary['steps'])} checkpoints (train data only)",
             f"  {'seed':>4}  {'memorised':>9}  {'grokked':>7}  {'test acc':>8}  {'step':>8}  {'peak λ̂':>7}  "
             f"{'Spearman':>8}  {'max R-hat':>9}  {'min ESS':>7}  stages (boundary: window)"]
    for row in summary["seeds"]:
        lines.append(f"  {row['seed']:>4}  {_step(row['memorisation_step']):>9}  {_step(row['grokking_step']):>7}  "
                     f"{row['final_test_accuracy']:>8.3f}  {_curve_columns(row['curve'])}")
    lines.append(f"  {summary['grokked_seeds']} of {len(summary['seeds'])} seeds grok; each curve's step calibrated at "
                 "its memorisation checkpoint (its last, on a seed that never memorised); in parentheses the "
                 "checkpoints with R-hat over 1.05 and with ESS under "
                 "200; [m] and [g]: the boundary whose window holds the memorisation or the grokking step; a move "
                 "steepest at the first or last checkpoint is not a located boundary (the curve cannot place it)")
    split = [f"seed {row['seed']} {_rho(row['curve']['spearman_llc_peak_to_test_peak'])} to step "
             f"{row['curve']['test_loss_peak_step']}, {_rho(row['curve']['spearman_from_test_peak'])} from there, "
             f"{_rho(row['curve']['spearman_with_train_loss_from_llc_peak'])} with the train loss"
             for row in summary["seeds"] if "test_loss_peak_step" in row["curve"]]
    lines.append("  Spearman split where the test loss peaks (diagnostic, not the target): from λ̂'s peak to the "
                 f"test loss's, from there on, and with the train loss from λ̂'s peak on: {'; '.join(split)}")
    lines += _elasticity_lines(summary)
    lines.append(f"  sensitivity check on seed {summary['study_seed']} (shape under fixed settings; reported, not a "
                 "target):")
    for curve in summary["sensitivity"]:
        values = [v for v in curve["llc_mean"] if v is not None]
        rho = curve["spearman_with_test_loss"]
        lines.append(f"  {curve['name']:<40} Spearman {'n/a' if rho is None else f'{rho:.3f}'}  peak at step "
                     f"{curve['peak_step']}  λ̂ {values[0]:.3g} → max {max(values):.3g} → {values[-1]:.3g}  "
                     f"rises {_yes_no(curve['rises_through_memorisation'])}, falls "
                     f"{_yes_no(curve['falls_through_grokking'])} (through memorisation, through grokking)")
    lines += [f"targets (every seed groks; on every seed's curve Spearman with the test loss > "
              f"{summary['target_spearman']:g} and every checkpoint's R-hat ≤ {summary['target_rhat']:g}): "
              f"{'met' if summary['targets_met'] else 'MISSED'}",
              f"wall time {summary['wall_seconds']:.0f} s with {summary['torch_threads']} torch thread(s)"
              + (" (LLC curves loaded from the cache)" if summary["llc_from_cache"] else ""),
              f"wrote {summary['results']} and {summary['figure']}"]
    return "\n".join(lines)


def _elasticity_lines(summary) -> list[str]:
    """Each seed's d log λ̂/d log γ along its curve: the median over checkpoints and how many
    checkpoints read γ as holding the chains (absent from curves cached before it was recorded)."""
    seeds = [(row["seed"], row["curve"]) for row in summary["seeds"] if "gamma_elasticity" in row["curve"]]
    if not seeds:
        return []
    parts = [f"seed {seed} median {statistics.median(v for v in curve['gamma_elasticity'] if v is not None):+.2f}, "
             f"{curve['checkpoints_held_by_gamma']} of {len(curve['gamma_elasticity'])} held by γ"
             for seed, curve in seeds]
    gamma = summary["curve_config"]["localization"]
    return [f"  d log λ̂/d log γ along each curve (0: the loss holds the chains; −1 or below: γ = {gamma:g} does, and "
            f"λ̂ reads the loss's curvature at γ's scale; held by γ: more than {ELASTICITY_SPREADS:g} standard errors "
            f"below {ELASTICITY_MIN:g}, where an estimate warns): {'; '.join(parts)}"]


def _curve_columns(curve) -> str:
    """A seed's calibrated curve in the grokking table: step, peak, Spearman, mixing, stages."""
    if "llc_mean" not in curve:
        return f"calibration at step {curve['calibrated_at_step']} failed: {curve['calibration_error']}"
    rho = curve["spearman_with_test_loss"]
    def marks(step: int) -> str:
        letters = "".join(letter for letter, key in (("m", "memorisation_boundary"), ("g", "grokking_boundary"))
                          if curve[key] == step)
        return f" [{letters}]" if letters else ""

    stages = ", ".join([f"{b['direction']} {b['step']}: {b['window_start']}–{b['window_end']}{marks(b['step'])}"
                        for b in curve["stages"]] + [f"{m['direction']} at the {m['edge']} checkpoint, not located: "
                                                     f"{m['window_start']}–{m['window_end']}"
                                                     for m in curve["edge_moves"]])
    return (f"{curve['step_size']:>8.2g}  {max(v for v in curve['llc_mean'] if v is not None):>7.3g}  "
            f"{'n/a' if rho is None else f'{rho:.4f}':>8}  "
            f"{curve['max_rhat']:>5.3f} ({curve['checkpoints_over_rhat']})  "
            f"{curve['min_ess']:>4.0f} ({curve['checkpoints_under_ess']})  {stages or 'none'}")


def _rho(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _step(step) -> str:
    """A training step, or "never" where the run did not reach that point."""
    return "never" if step is None else str(step)


def _yes_no(answer) -> str:
    return "n/a" if answer is None else "yes" if answer else "no"
