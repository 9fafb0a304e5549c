"""The saddle study's report in words: per architecture its training, the plateaus' λ̂ beside
the exact staircase and the finite-n truth, where each plateau rests, the stages found on the
LLC curve, the targets, and the mixing gate beside them."""

from __future__ import annotations


def _plateau_sampler_line(sampler, plateaus, unmixed_rule) -> str:
    mala = (f"{sampler['sampler'].upper()} {sampler['chains']} chains × {sampler['draws']} draws after "
            f"{sampler['burnin']} burn-in")
    rule = plateaus[0]["step_size_rule"] if plateaus else "automatic step"
    settings = f"γ = {sampler['localization']:g}, nβ = {sampler['nbeta']:.1f}"
    if sampler.get("plateaus") == "exchange":
        return f"  plateaus by {rule}; {settings}; negative control by {mala}"
    drawn = [(row["rank"], row.get("mala_unmixed", row)["draws"]) for row in plateaus]
    went_on = ", ".join(f"rank {rank} to {draws:,}" for rank, draws in drawn if draws > sampler["draws"])
    exchanged = ", ".join(f"rank {row['rank']}" for row in plateaus if "mala_unmixed" in row)
    after = (f"replica exchange answers (at: {exchanged or 'none'})" if unmixed_rule == "exchange"
             else "they are reported as they are (--unmixed-plateaus report)")
    return (f"  {mala}, {settings}, step: {rule}; plateaus failing the mixing gate go on, doubling their draws, "
            f"at most {sampler['extensions']} times (went on: {went_on or 'none'}), and where they still fail, {after}")


def saddle_text(summary) -> str:
    """The saddle study's report in words (``summary``: what ``sltlab dynamics saddle`` writes as JSON)."""
    lines = []
    for study in summary["studies"]:
        sampler, training, setup, stages = study["sampler"], study["training"], study["setup"], study["stages"]
        chosen = ", ".join(study["chosen_from_architecture"]) or "nothing"
        reached = training["teacher_rank_reached_at_step"]
        lines += [f"saddle-to-saddle, widths {study['widths']} (d = {study['dim']}): ranks visited "
                  f"{study['ranks_visited']} of 0..{training['teacher_rank']}; {study['wall_seconds']:.0f} s",
                  f"  teacher singular values {' '.join(f'{v:g}' for v in setup['singular_values'])}; "
                  f"{'aligned' if setup['aligned_start'] else 'random'} start, init scale "
                  f"{setup['init_scale']:.3g}, learning rate {setup['learning_rate']:.3g}, budget "
                  f"{training['step_budget']} steps (chosen from the architecture: {chosen}); trained "
                  f"{training['steps_taken']} steps, stopped because {training['stopped_because']}"
                  + ("" if reached is None else f" (rank {training['teacher_rank']} at step {reached})"),
                  _plateau_sampler_line(sampler, study["plateaus"], setup["unmixed_plateaus"]),
                  f"  {'rank':>4}  {'steps':>12}  {'at':>6}  {'λ_k':>6}  {'λ̂ ± SE':>14}  {'error':>7}  "
                  f"{'R-hat':>5}  {'truth':>6}  {'sampler':>7}  {'estimand':>8}  negative control (real data)"]
        for row in study["plateaus"]:
            control = row["negative_control_real_data"]["llc_mean"]
            estimate = "diverged" if row["llc_mean"] is None else f"{row['llc_mean']:.2f} ± {row['llc_se'] or 0:.2f}"
            error = "" if row["rel_error"] is None else f"{100 * row['rel_error']:+.1f}%"
            rhat = "" if row["rhat"] is None else f"{row['rhat']:.3f}"
            sampler_error = "" if row["sampler_error"] is None else f"{100 * row['sampler_error']:+.1f}%"
            lines.append(f"  {row['rank']:>4}  {row['first_step']:>5}–{row['last_step']:<6}  "
                         f"{row['checkpoint_step']:>6}  {row['lambda_exact']:>6}  {estimate:>14}  {error:>7}  "
                         f"{rhat:>5}  {row['finite_n_truth']['mean']:>6.2f}  {sampler_error:>7}  "
                         f"{100 * row['estimand_bias']:>+7.1f}%  {'diverged' if control is None else f'{control:.4g}'}")
        lines.append("  truth: nβ·E[ΔL] by blocked Gibbs at the same centre, nβ and γ; sampler = λ̂ against it, "
                     "estimand = it against λ_k")
        lines.append(_resting_line(study["plateaus"]))
        finest = stages.get("bandwidth")   # absent when too few checkpoints had an estimate
        found = ", ".join(f"{b['step']} [{b['window_start']}–{b['window_end']}"
                          + (f", at h = {b['bandwidth']:.3g}]" if b["bandwidth"] > finest else "]")
                          for b in stages["boundaries"])
        smoothing = "" if finest is None else (f" (smoothing h = {finest:.3g} in log step; a boundary found only "
                                               f"at a coarser h says so)")
        lines += [f"  LLC curve at {len(study['llc_curve']['steps'])} checkpoints: rank changes at steps "
                  f"{stages['true_rank_change_steps']}; stage boundaries [windows] {found or 'none'}{smoothing}; "
                  f"missed {stages['missed']}, spurious {len(stages['spurious'])}"
                  + "".join(f"; a {m['direction']} steepest at the curve's {m['edge']} checkpoint, not located "
                            f"[{m['window_start']}–{m['window_end']}]" for m in stages["edge_moves"]),
                  f"  targets {'met' if study['targets_met'] else 'MISSED: ' + '; '.join(study['reasons'])}",
                  _mixing_line(study)]
    lines += [f"targets (every rank 0..teacher visited one per stage, every λ̂ within 10 %, every rank change "
              f"a stage boundary): {'met' if summary['targets_met'] else 'MISSED'}",
              f"wall time {summary['wall_seconds']:.0f} s with {summary['torch_threads']} torch thread(s)"
              + (" (every study loaded from the cache)" if all(s["from_cache"] for s in summary["studies"]) else ""),
              f"wrote {summary['results']} and {summary['figure']}"]
    return "\n".join(lines)


def _resting_line(plateaus) -> str:
    """Where the plateaus rest, and which of them rest where their rank is not resolved."""
    if not plateaus:
        return "  no plateau"
    rule = plateaus[0]["resolution"]
    unresolved = [row["rank"] for row in plateaus if not row["resolution"]["resolved"]]
    return (f"  each plateau rests at its quietest checkpoint whose rank is resolved (its last learned mode ≥ "
            f"{rule['learned_at_least_sds']:g} posterior SDs 1/√nβ from zero, the next ≤ {rule['next_at_most_sds']:g})"
            + (f"; NOT resolved anywhere on the plateaus of rank {unresolved}: they rest at their best resolved "
               "checkpoint, and λ_k may not be their finite-n estimand" if unresolved else ""))


def _mixing_line(study) -> str:
    """The plateaus whose λ̂ fails the mixing gate: shown beside the targets, not one of them."""
    from sltlab.estimators.gate import ESS_MIN, RHAT_MAX

    unmixed = study["unmixed_plateaus"]
    if not unmixed:
        return f"  mixing gate (R-hat ≤ {RHAT_MAX}, ESS ≥ {ESS_MIN}) passed at every plateau"
    worst = max((row["rhat"] for row in study["plateaus"] if row["rank"] in unmixed and row["rhat"] is not None),
                default=None)
    return (f"  mixing gate (R-hat ≤ {RHAT_MAX}, ESS ≥ {ESS_MIN}; reported, not a target) FAILED at the plateaus of "
            f"rank {unmixed}" + ("" if worst is None else f", R-hat up to {worst:.3f}"))
