"""An unadjusted step adds its whole move, drift and noise, to the position at once: added alone,
a drift below half the spacing of the position's numbers rounds away, and in float32 near a
centre of 10⁴ (spacing 9.8·10⁻⁴) SGLD read λ̂ = 3.2 and RMSProp-SGLD 18 for a regular model of
2 parameters whose finite-n LLC is 0.99. What rounding the positions still adds is said."""

import warnings

import pytest
import torch

from sltlab.estimators import LLCConfig, PrecisionWarning, estimate_llc_from_loss

N = 10 ** 6   # nβ = n/log n = 72,382; the finite-n LLC nβ/(nβ + γ) = 0.99999


@pytest.mark.parametrize("sampler, center, said", [("sgld", 0.0, False), ("sgld", 1e4, True),
                                                   ("rmsprop_sgld", 1e4, False)])
def test_chains_far_from_the_origin_in_float32_keep_their_drift(sampler, center, said):
    def loss(position, batch):
        return 0.5 * (position - center).square().sum(-1, keepdim=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = estimate_llc_from_loss(loss, torch.full((2,), center), (), n=N,
                                        config=LLCConfig(sampler=sampler, localize_at="true_parameter"))
    # These runs read 1.09 ± 0.05 (sgld at 0), 1.17 ± 0.05 (at 10⁴: the rounding's 5.8 % on top) and
    # 1.22 ± 0.07 (rmsprop_sgld at 10⁴, 1.10 at 0): SGLD's own step bias of up to 2.6 % and the rounding's
    # share, then 4 SE.
    assert abs(result.mean - 1.0) <= 0.09 + 0.06 * said + 4 * result.standard_error
    assert result.standard_error < 0.1   # RMSProp's chains had wandered: 18.1 ± 6.8
    rounding = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert bool(rounding) == said and all("rounding each step's position there adds" in text for text in rounding)


def test_only_the_coordinates_the_chains_move_are_weighed():
    from sltlab.estimators.rounding import rounded_steps

    center = torch.tensor([0.1, -0.2, 1e6], dtype=torch.float64)   # a frozen weight of 10⁶ beside a restriction's
    assert "rounding each step's position" in rounded_steps(center, 1e-4, "sgld", "float32")
    assert rounded_steps(center, 1e-4, "sgld", "float32", moving=torch.tensor([1.0, 1.0, 0.0])) is None   # had
    # said 325 %
