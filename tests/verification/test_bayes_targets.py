"""The Bayes study's verdicts: a crossover the two starts see differently, and a k-gon's λ̂ whose
chains did not mix, are missed targets however close the numbers."""

from sltlab.verification.dynamics.bayes import llc_judgement, study_targets
from sltlab.verification.dynamics.bayes_problems import BayesSetup

DLN = BayesSetup("dln", widths=(6, 3, 6), singular_values=("1", "0.3"))


def _row(observed, by_start):
    return {"within_target": True, "observed_n": observed, "observed_by_start": by_start}


def test_both_starts_must_see_every_crossover_within_25_percent_of_it():
    agreeing = study_targets(DLN, {"transitions": [_row(200.0, [190.0, 215.0])]})
    assert agreeing == {"every_observed_crossover_within_25_percent": True,
                        "both_starts_see_every_crossover_within_25_percent_of_it": True}
    for by_start in ([90.0, 290.0], [None, 200.0]):
        targets = study_targets(DLN, {"transitions": [_row(200.0, by_start)]})
        assert not targets["both_starts_see_every_crossover_within_25_percent_of_it"]
    assert not any(study_targets(DLN, {"transitions": []}).values())


def test_a_kgon_whose_chains_did_not_mix_misses_its_target_however_close():
    row = {"k": 5, "positive_dead": 0, "llc_mean": 7.07, "rhat": 1.01, "ess": 900.0, "diverged_chains": []}
    assert llc_judgement(6, row)["within_target"] and llc_judgement(6, row)["mixed"]
    for unmixed in ({"rhat": 3.0}, {"ess": 4.0}, {"rhat": None}, {"diverged_chains": [2]}):
        judged = llc_judgement(6, {**row, **unmixed})
        assert not judged["mixed"] and not judged["within_target"] and abs(judged["relative_error"]) < 0.05
