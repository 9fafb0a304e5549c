"""``to_inference_data`` takes one estimate's result; anything else is a one-line error that says
what it takes (it had been an AttributeError on ``.trace``)."""

import pytest

from sltlab.estimators import LLCAlongTraining, to_inference_data


@pytest.mark.parametrize("given, said", [
    ([None], r"^to_inference_data takes one estimate's result \(an LLCResult\), got list$"),
    (None, r"got NoneType$"),
    (LLCAlongTraining((), None, None), r"got LLCAlongTraining; an along-training result holds one per checkpoint: "
                                       r"result\.results\[k\]$"),
])
def test_anything_but_one_result_is_refused_in_one_line(given, said):
    with pytest.raises(ValueError, match=said):
        to_inference_data(given)
