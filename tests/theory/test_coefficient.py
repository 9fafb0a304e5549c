"""The LearningCoefficient value object."""

import dataclasses
import json

import pytest
import sympy

from sltlab.theory import deep_linear, newton


def test_as_dict_is_json_ready_and_exact():
    data = json.loads(json.dumps(deep_linear([10, 10, 10, 10], 2).as_dict()))
    assert data["lambda"] == "79/2" and data["lambda_float"] == 39.5
    assert data["parameters"] == {"widths": [10, 10, 10, 10], "rank": 2}
    assert data["dim"] == 300 and set(data["derivation"]) == {"formula", "case", "source"}


def test_newton_as_dict_records_the_potential():
    data = json.loads(json.dumps(newton("w1**4 + w2**2").as_dict()))
    assert data["parameters"] == {"K": "w1**4 + w2**2", "variables": ["w1", "w2"], "prior": ["0", "0"]}


def test_frozen_read_only_and_hashable():
    lc = deep_linear([3, 2, 3], 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lc.lam = sympy.Rational(1)
    with pytest.raises(TypeError):
        lc.parameters["rank"] = 2
    assert hash(lc) == hash(deep_linear((3, 2, 3), 1)) and lc == deep_linear((3, 2, 3), 1)
    assert "Aoyagi" in str(lc.derivation)
