"""One rule for every place that sets defaults: no chain is said to cool where no warm-up cools it."""

import pytest

from sltlab.estimators.config import LLCConfig
from sltlab.estimators.cooled_share import without_idle_cooling
from sltlab.estimators.module import MODULE_DEFAULTS, module_defaults

COOLING = LLCConfig(sampler="mala", anneal=10.0, cooled_share=0.5)


@pytest.mark.parametrize("sampler, anneal, cools", [("mala", 10.0, True), ("mala", 1.0, False), ("mala", 0.5, False),
                                                    ("sgld", 10.0, False), ("hmc", 10.0, False), ("mala", 1.01, True)])
def test_cooling_stays_only_for_mala_with_anneal_above_one(sampler, anneal, cools):
    settings = without_idle_cooling(COOLING, sampler, anneal)
    assert (settings.anneal, settings.cooled_share) == ((10.0, 0.5) if cools else (1.0, 1.0))


@pytest.mark.parametrize("anneal", ["10", None, True])
def test_an_anneal_that_is_no_number_is_left_to_the_settings_check(anneal):
    assert without_idle_cooling(COOLING, "mala", anneal) == COOLING


def test_the_one_calls_defaults_cool_half_the_chains_unless_anneal_is_one():
    assert module_defaults(None, {}) == MODULE_DEFAULTS and MODULE_DEFAULTS.cooled_share == 0.5
    uncooled = module_defaults(None, {"anneal": 1})
    assert (uncooled.anneal, uncooled.cooled_share) == (1.0, 1.0)
