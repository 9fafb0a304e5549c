"""One source of defaults: the help of every `sltlab estimate` option prints the family's
default read from sltlab.verification.defaults (and a bare LLCConfig()'s where they differ),
and the README states the same numbers."""

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from sltlab.estimators.adapt import ANNEAL_STAGES, MALA_TARGET_ACCEPTANCE
from sltlab.estimators.config import HMC_TRAJECTORIES, LLCConfig
from sltlab.estimators.hmc_tuning import HMC_TARGET_ACCEPTANCE
from sltlab.verification.cli import build_parser
from sltlab.verification.cli.estimate import RESOLVED_AT_RUN_TIME
from sltlab.verification.defaults import DLN_DEFAULTS, DLN_ESTIMATE_DEFAULTS, POTENTIAL_DEFAULTS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
FAMILIES = {"dln": DLN_ESTIMATE_DEFAULTS, "poly": POTENTIAL_DEFAULTS}
CONFIG_FIELDS = {field.name for field in fields(LLCConfig)}


def _estimate_parser(name: str) -> argparse.ArgumentParser:
    top = build_parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    estimators = next(a for a in commands.choices["estimate"]._actions if isinstance(a, argparse._SubParsersAction))
    return estimators.choices[name]


def _read(text: str, field: str):
    """A default as printed in help back into a value: a number, a name, or a resolving rule."""
    text = text.strip()
    if text == RESOLVED_AT_RUN_TIME.get(field) or (field == "fallback" and text == "none"):
        return None
    if text in ("on", "off"):
        return text == "on"
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return text


@pytest.mark.parametrize("command", sorted(FAMILIES))
def test_every_estimate_option_prints_its_default_from_the_one_source(command):
    family, bare = FAMILIES[command], LLCConfig()
    parser = _estimate_parser(command)
    shown = " ".join(parser.format_help().split())
    options = [action for action in parser._actions
               if action.option_strings and not action.required and action.dest not in ("help", "json")]
    assert len(options) >= 17
    for action in options:
        assert "(default: " in action.help, action.dest
        assert " ".join(action.help.split()) in shown
        if action.dest not in CONFIG_FIELDS:
            continue
        printed = re.search(r"\(default: ([^;)]*)(?:; LLCConfig\(\) alone: ([^)]*))?\)", action.help)
        family_value, bare_value = getattr(family.config, action.dest), getattr(bare, action.dest)
        assert _read(printed[1].split(" for ")[0], action.dest) == family_value, action.dest
        if family_value == bare_value:
            assert printed[2] is None, action.dest
        else:
            assert _read(printed[2], action.dest) == bare_value, action.dest
    n_help = next(action.help for action in options if action.dest == "n")
    assert _read(re.search(r"\(default: ([^;)]*)", n_help)[1], "n") == family.n


def test_the_deep_linear_help_says_where_it_differs_from_a_bare_config():
    draws_help = next(a.help for a in _estimate_parser("dln")._actions if a.dest == "draws")
    assert draws_help.endswith(f"(default: {DLN_DEFAULTS.config.draws:,} for deep linear networks; "
                               f"LLCConfig() alone: {LLCConfig().draws:,})")


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("10⁴", "10000"))


def test_the_readme_states_the_same_defaults():
    bare = re.search(r"`LLCConfig\(\)` in Python has its own: (\w+), (\d+) chains × ([\d,]+) draws, burn-in "
                     r"draws/4 \([^)]*\), thin (\d+),\s+γ = ([\d.]+), (float\d+)", README)
    config = LLCConfig()
    assert bare is not None
    assert (bare[1].lower(), _number(bare[2]), _number(bare[3]), _number(bare[4]), _number(bare[5]), bare[6]) == (
        config.sampler, config.chains, config.draws, config.thin, config.localization, config.dtype)
    assert config.burnin is None and config.nbeta is None and config.step_size is None

    dln = re.search(r"\*\*Deep linear networks\*\*: n = (10⁴) Gaussian rows, nβ = n/log n, γ = ([\d.]+), (\d+) "
                    r"(\w+) chains: a\s+warm-up of ([\d,]+) steps that tunes the step to acceptance ([\d.]+) and, over "
                    r"its first half, cools\s+(\w+) of the chains from nβ/(\d+) to nβ in ten stages while the other "
                    r"(\w+) start at w\* at nβ\s+\(`anneal=(\d+), cooled_share=([\d.]+)`: chains from both sides, "
                    r"above\), then ([\d,]+) burn-in steps and ([\d,]+) draws\s+thinned by (\d+)", README)
    config = DLN_DEFAULTS.config
    assert dln is not None
    assert (_number(dln[1]), _number(dln[2]), _number(dln[3]), dln[4].lower()) == (
        DLN_DEFAULTS.n, config.localization, config.chains, config.sampler)
    words = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
    cooled = round(config.chains * config.cooled_share)
    assert (_number(dln[5]), float(dln[6]), _number(dln[8]), _number(dln[10]), ANNEAL_STAGES) == (
        max(200, config.burnin), MALA_TARGET_ACCEPTANCE, config.anneal, config.anneal, 10)
    assert (words[dln[7]], words[dln[9]], float(dln[11])) == (cooled, config.chains - cooled, config.cooled_share)
    assert (_number(dln[12]), _number(dln[13]), _number(dln[14])) == (config.burnin, config.draws, config.thin)
    fallback = re.search(r"HMC estimates anew from w\*\s+\(`fallback=\"(\w+)\"`, (\d+) trajectories after (\d+), "
                         r"each of at most π/\(4√γ\), its step\s+dual-averaged to acceptance ([\d.]+)\)", README)
    assert fallback is not None
    assert (fallback[1], int(fallback[2]), int(fallback[3]), float(fallback[4])) == (
        config.fallback, HMC_TRAJECTORIES["draws"], HMC_TRAJECTORIES["burnin"], HMC_TARGET_ACCEPTANCE)

    potentials = re.search(r"\*\*Potentials\*\* \(and the tanh network\): coordinate-wise (\w+) sampling \(exact, "
                           r"no step to\s+tune\), (\d+) chains × ([\d,]+) draws, burn-in draws/4, γ = ([\d.]+), "
                           r"(float\d+), n = (10⁴)", README)
    config = POTENTIAL_DEFAULTS.config
    assert potentials is not None
    assert (potentials[1], _number(potentials[2]), _number(potentials[3]), _number(potentials[4]), potentials[5],
            _number(potentials[6])) == (config.sampler, config.chains, config.draws, config.localization,
                                        config.dtype, POTENTIAL_DEFAULTS.n)
    assert config.burnin is None
