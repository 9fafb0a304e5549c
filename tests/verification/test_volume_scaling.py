"""sltlab.verification.reference.volume_scaling: V(ε) against closed forms, (λ, m) against exact values."""

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad

from sltlab.verification.reference.volume_scaling import (DEFAULT_EPSILONS, UnsettledFit, VolumeScaling, volume,
                                                          volume_scaling)
from sltlab.theory import newton

EPS = DEFAULT_EPSILONS
DELTA = np.sqrt(EPS)
W1, W2 = sympy.symbols("w1 w2")


def _quartic_slab() -> np.ndarray:
    """V for w1²w2² + w3⁴ on [−1, 1]³: 8 ∫_0^√ε (ε − p²)^{1/4} (−ln p) dp, p = |w1 w2|."""
    a = quad(lambda u: (1 - u * u) ** 0.25, 0, 1)[0]
    b = quad(lambda u: -((1 - u * u) ** 0.25) * np.log(u), 0, 1)[0]
    return 4 * EPS**0.75 * (a * np.log(1 / EPS) + 2 * b)


# (K, box, exact V, relative tolerance): the max relative error over ε = 1e-6 … 1e-10 measured
# when these tolerances were set is in each comment.
CLOSED_FORMS = [
    ("w1**2", 1.0, 2 * DELTA, 1e-12),  # 0: the one-variable case is exact
    ("w1**2*w2**2", 1.0, 4 * DELTA * (1 + np.log(1 / DELTA)), 1e-6),  # 1.8e-8
    ("w1**2*w2**2", 2.0, 4 * DELTA * (1 + np.log(4 / DELTA)), 1e-6),  # 1.2e-8
    ("w1**2 + w2**2", 1.0, np.pi * EPS, 1e-4),  # 2.4e-5
    ("w1**2 + w2**2", 0.5, np.pi * EPS, 1e-4),  # 2.5e-5
    ("(w1*w2*w3)**2", 1.0, 8 * DELTA * (1 + np.log(1 / DELTA) + np.log(1 / DELTA) ** 2 / 2), 5e-5),  # 8.4e-6
    ("w1**2 + w2**2 + w3**2", 1.0, 4 / 3 * np.pi * EPS**1.5, 2e-3),  # 5.2e-4
    ("w1**2*w2**2 + w3**4", 1.0, _quartic_slab(), 2e-4),  # 4.6e-5
]


@pytest.mark.parametrize("K, box, exact, tolerance", CLOSED_FORMS, ids=[f"{c[0]} b={c[1]}" for c in CLOSED_FORMS])
def test_volume_matches_closed_form(K, box, exact, tolerance):
    assert np.max(np.abs(volume(K, box=box) / exact - 1)) <= tolerance


# (K, λ, m). The last three are degenerate (the Newton polygon gives a wrong value), but their
# zero sets lie in the inner variable w2, which the method resolves exactly.
EXACT = [
    ("w1**2*w2**2", 1 / 2, 2),
    ("w1**4 + w2**2", 3 / 4, 1),
    ("w1**4 + w2**4", 1 / 2, 1),
    ("(w1**2 + w2**2)**2", 1 / 2, 1),
    ("w1**2 + w1**2*w2**2", 1 / 2, 1),
    ("(w1*w2)**2 + (w1*w2**2)**2", 1 / 2, 2),
    ("w1**6 + w2**4", 5 / 12, 1),
    ("(w1*w2*w3)**2", 1 / 2, 3),
    ("w1**2*w2**2 + w3**4", 3 / 4, 2),
    ("w1**2 + w2**2 + w3**2", 3 / 2, 1),
    ("(w1 + w2)**2", 1 / 2, 1),
    ("(w1 - w2**2)**2", 1 / 2, 1),
    ("(w1**2 - w2**2)**2", 1 / 2, 2),
]


@pytest.mark.parametrize("K, lam, multiplicity", EXACT, ids=[c[0] for c in EXACT])
def test_fit_recovers_exact_coefficient(K, lam, multiplicity):
    fit = volume_scaling(K)
    assert isinstance(fit, VolumeScaling)
    assert len(fit.residuals) == len(sympy.sympify(K).free_symbols)
    assert abs(fit.lam - lam) <= 0.02
    assert fit.multiplicity == multiplicity


# Coefficients within a factor 4 of each other: with ratios near 100 the asymptotic regime
# starts below ε = 1e-10 for some polygons, and m (then λ, by ~0.035) is missed. All 576
# choices of 1–3 distinct exponent pairs with coefficients in {0.5, 2} were checked: 534 fitted, λ within
# 0.0058 and m right in every one; 42 refused as not settled (the former rule had read them within 0.0098).
TERMS = st.lists(
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)).filter(any), st.floats(0.5, 2.0)),
    min_size=1, max_size=3, unique_by=lambda term: term[0])


@given(TERMS)
def test_fit_agrees_with_the_newton_polyhedron_or_says_it_is_not_settled(terms):
    K = sum(c * W1 ** (2 * a) * W2 ** (2 * b) for (a, b), c in terms)
    exact = newton(K, [W1, W2])
    try:
        fit = volume_scaling(K, variables=(W1, W2))
    except UnsettledFit:
        return
    assert abs(fit.lam - float(exact.lam)) <= 0.02
    assert fit.multiplicity == exact.multiplicity


def test_default_variable_order_is_natural():
    assert np.array_equal(volume("w10**2 + w2**4"), volume("w10**2 + w2**4", variables=["w2", "w10"]))


@pytest.mark.parametrize("K, variables", [
    ("w1**2 +", None),
    ("sin(w1)", None),
    ("w1**2 + 1", None),
    ("w1**2 + w2**2 + w3**2 + w4**2", None),
    ("pi*w1**2", None),
    ("a*w1**2", ["w1"]),
])
def test_bad_input_raises_value_error(K, variables):
    with pytest.raises(ValueError) as error:
        volume(K, variables=variables)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("K, box, said", [
    ("(w1+w2)**2", 1e3, "the fit is not settled: λ reads 0.4999 on the larger half"),   # it had read 0.5658, m = 2
    ("(w1+w2)**2", 1e5, "the fit is not settled"),                                       # 0.2036
    ("w1**2*w2**2", 4, "the fit is not settled"),                                        # 0.4612, m = 1
    ("3.71*w1**6*w2**4", 1, "the fit is not settled"),    # 0.1540 for 1/6 (−7.6 %), halves 0.0056 apart
    ("(w1+w2)**2", 1e-3, "V(1e-06) is 75% of the box's volume"),                          # 0.6093, m = 2
    ("w1**4 + w2**2", 1e-3, "V(1e-06) is 100% of the box's volume"),                     # 0.5001 for 3/4
])
def test_a_box_where_v_is_no_small_eps_power_law_is_refused_not_fitted(K, box, said):
    with pytest.raises(ValueError) as error:
        volume_scaling(K, box=box)
    assert str(error.value).startswith(said) and "\n" not in str(error.value)


def test_a_fit_unsettled_at_the_default_eps_is_read_at_smaller_ones_when_asked():
    with pytest.raises(ValueError, match=r"^the fit is not settled: λ reads 0.3249 on the larger half of ε = 1e-06"):
        volume_scaling("w1**2*w2**4 + w1**4*w2**2")   # 0.3273 for 1/3, halves 1.4 % apart
    fit = volume_scaling("w1**2*w2**4 + w1**4*w2**2", epsilons=np.logspace(-8, -16, 9))
    assert (round(fit.lam, 4), fit.multiplicity) == (0.3318, 1)


@pytest.mark.parametrize("K, box, lam", [("(w1+w2)**2", 10.0, 0.5), ("w1**4 + w2**2", 1e5, 0.75),
                                         ("(w1**2 + w2**2)**2", 1e5, 0.5), ("w1**2 + w1**2*w2**2", 1e3, 0.5)])
def test_boxes_far_from_one_where_the_fit_holds_still_read_their_exact_value(K, box, lam):
    assert volume_scaling(K, box=box).lam == pytest.approx(lam, abs=1e-3)
