"""The one call's HMC fallback on small trained networks that no setting was chosen on:
``sltlab bench --only fallback``.

Three networks are generated and trained here (Adam, fixed seeds): a tanh MLP [4,32,32,1] on
y = sin 2x₁ + x₂x₃/2 + noise (n = 2,000), the README's example MLP [4,8,2] on y = sin(xA) + noise
(n = 1,000) and a ReLU MLP [2,16,16,3] on three noisy spiral arms under cross-entropy
(n = 1,500), each localised as the call does when told nothing (at the empirical minimum L-BFGS
reaches from the trained weights). Each is estimated by
:func:`~sltlab.estimators.module.estimate_llc` with MALA alone (``fallback=None``: MALA, its chains
going on as the defaults' do while they fail the mixing gate) and, when they still fail it, again
with the defaults, where HMC then estimates anew if its warm-up and draws fit ``fallback_budget``
times the gradient evaluations of MALA's run before it went on
(:func:`~sltlab.estimators.hmc_tuning.fallback_over_budget`); a run that passes the gate is the
defaults' too. There is no exact λ here: the row says which sampler answered, whether its chains
passed the gate, and what each call cost.

``--count K --seed S`` takes instead a random draw of K small regression MLPs (:func:`random_mlps`), networks
nobody chose, so the budget's effect can be judged where it was not set.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import replace
from typing import Callable

import torch
from torch import nn

from sltlab.estimators.gate import mixing_concern
from sltlab.estimators.module import MODULE_DEFAULTS, estimate_llc
from sltlab.estimators.notices import EstimateWarning


def regression_mlp() -> tuple[nn.Module, tuple, str]:
    """[4,32,32,1] tanh on y = sin 2x₁ + x₂x₃/2 + N(0, 0.1²), n = 2,000; 3,000 Adam steps."""
    torch.manual_seed(0)
    x = torch.randn(2000, 4)
    y = torch.sin(2 * x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3] + 0.1 * torch.randn(2000, 1)
    mlp = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    train_full_batch(mlp, lambda: nn.functional.mse_loss(mlp(x), y), steps=3000)
    return mlp, (x, y), "mse"


def readme_mlp() -> tuple[nn.Module, tuple, str]:
    """The README's example: [4,8,2] tanh on y = sin(xA) + N(0, 0.1²), n = 1,000; 300 Adam steps."""
    return _random_mlp([4, 8, 2], nn.Tanh, 1000, torch_seed=0, steps=300)


def spiral_mlp() -> tuple[nn.Module, tuple, str]:
    """[2,16,16,3] ReLU on three noisy spiral arms (radius r ~ U(0, 1), angle 2πk/3 + 3r + N(0, 0.2²)),
    cross-entropy, n = 1,500; 2,000 Adam steps."""
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (1500,), generator=generator)
    radius = torch.rand(1500, generator=generator)
    angle = labels * 2 * math.pi / 3 + 3 * radius + 0.2 * torch.randn(1500, generator=generator)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], 1)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    train_full_batch(mlp, lambda: nn.functional.cross_entropy(mlp(x), labels), steps=2000)
    return mlp, (x, labels), "cross_entropy"


def random_mlps(count: int, seed: int) -> dict[str, Callable[[], tuple[nn.Module, tuple, str]]]:
    """``count`` regression MLPs drawn from ``seed``: 2–6 inputs, 1–3 hidden layers of width 4, 8, 16
    or 32, tanh or ReLU, 1–3 outputs, n of 500, 1,000 or 2,000, targets y = sin(xT) + N(0, 0.1²)
    for a Gaussian T; each trained by Adam for 1,000 full-batch steps."""
    if count < 1:
        raise ValueError(f"--count must be at least 1 for a random draw of MLPs, got {count}")
    draw = random.Random(seed)
    networks = {}
    for index in range(count):
        inputs, depth = draw.randint(2, 6), draw.randint(1, 3)
        widths = [inputs] + [draw.choice([4, 8, 16, 32]) for _ in range(depth)] + [draw.randint(1, 3)]
        activation, n = draw.choice([nn.Tanh, nn.ReLU]), draw.choice([500, 1000, 2000])
        name = f"MLP {widths} {activation.__name__}, regression, n = {n:,} (seed {seed}, draw {index})"
        networks[name] = lambda widths=widths, activation=activation, n=n, torch_seed=seed * 100 + index: (
            _random_mlp(widths, activation, n, torch_seed))
    return networks


def _random_mlp(widths: list[int], activation: type[nn.Module], n: int, torch_seed: int, steps: int = 1000
                ) -> tuple[nn.Module, tuple, str]:
    """An MLP of ``widths`` trained by Adam for ``steps`` on y = sin(xT) + N(0, 0.1²), x ~ N(0, I),
    everything drawn from ``torch_seed`` in this order: inputs, T, noise, initial weights."""
    torch.manual_seed(torch_seed)
    x = torch.randn(n, widths[0])
    y = torch.sin(x @ torch.randn(widths[0], widths[-1])) + 0.1 * torch.randn(n, widths[-1])
    layers = []
    for fan_in, fan_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    mlp = nn.Sequential(*layers, nn.Linear(widths[-2], widths[-1]))
    train_full_batch(mlp, lambda: nn.functional.mse_loss(mlp(x), y), steps=steps)
    return mlp, (x, y), "mse"


NETWORKS: dict[str, Callable[[], tuple[nn.Module, tuple, str]]] = {
    "MLP [4,32,32,1] tanh, regression, n = 2,000": regression_mlp,
    "the README's MLP [4,8,2], regression, n = 1,000": readme_mlp,
    "MLP [2,16,16,3] ReLU, spiral arms, cross-entropy, n = 1,500": spiral_mlp,
}


def train_full_batch(module: nn.Module, loss: Callable[[], torch.Tensor], *, steps: int) -> None:
    """``steps`` Adam steps (rate 10⁻²) on ``loss()``, a loss over every row at once."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()


def fallback_rows(networks: dict | None = None, *, progress: bool = False, **settings) -> list[dict]:
    """Each network's estimate by MALA alone and by the defaults (``settings`` override both),
    with the call's progress bars when ``progress``."""
    rows = []
    for name, build in (networks or NETWORKS).items():
        module, data, loss = build()
        row = {"network": name, "parameters": sum(p.numel() for p in module.parameters())}
        row["mala_alone"] = _estimate(module, data, loss, replace(MODULE_DEFAULTS, fallback=None, **settings),
                                      progress)
        # The defaults differ from MALA alone only once its chains fail the gate: a run that passes is theirs too.
        row["defaults"] = row["mala_alone"] if row["mala_alone"]["passes_gate"] else _estimate(
            module, data, loss, replace(MODULE_DEFAULTS, **settings), progress)
        rows.append(row)
    return rows


def _estimate(module: nn.Module, data: tuple, loss: str, config, progress: bool) -> dict:
    clock = time.perf_counter()
    with warnings.catch_warnings():   # the gate's verdict is in the row
        warnings.simplefilter("ignore", EstimateWarning)
        result = estimate_llc(module, data, loss=loss, config=config, progress=progress)
    return {"sampler": result.config.sampler, "llc": result.mean, "se": result.standard_error, "rhat": result.rhat,
            "ess": result.ess, "seconds": time.perf_counter() - clock,
            "passes_gate": mixing_concern(result.estimate) is None,
            "fallback": next((note for note in result.notes if "fallback" in note or "anew" in note), None)}


def format_fallback(rows: list[dict]) -> str:
    lines = [f"The one call's HMC fallback (its warm-up and draws within {MODULE_DEFAULTS.fallback_budget:.3g}× MALA's "
             "gradient evaluations before it went on) on trained MLPs: MALA alone (going on up to "
             f"{MODULE_DEFAULTS.extend_unmixed} times while unmixed and more draws could mend it), then the defaults"]
    for row in rows:
        lines.append(f"  {row['network']} (d = {row['parameters']:,})")
        for label in ("mala_alone", "defaults"):
            run = row[label]
            value = "none kept" if run["llc"] is None else f"{run['llc']:.4g} ± {run['se']:.2g}"
            rhat = "—" if run["rhat"] is None else f"{run['rhat']:.3f}"
            ess = "—" if run["ess"] is None else f"{run['ess']:.0f}"
            lines.append(f"    {label.replace('_', ' '):10} {run['sampler']:4} λ̂ = {value:16} R-hat {rhat:6} "
                         f"ESS {ess:>5}  gate {'passed' if run['passes_gate'] else 'FAILED'}  {run['seconds']:6.1f} s")
        note = row["defaults"]["fallback"]
        if note is not None and note.startswith("the fallback"):
            lines.append(f"    ({note})")
    passed = [sum(row[label]["passes_gate"] for row in rows) for label in ("mala_alone", "defaults")]
    lines.append(f"  the mixing gate passed on {passed[0]} of {len(rows)} networks under MALA alone, "
                 f"on {passed[1]} under the defaults")
    return "\n".join(lines)
