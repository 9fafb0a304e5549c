"""Outputs of a sequence whose class axis cannot be told from its shape: [b, C, T] with C = T is
torch's layout and a language model's [b, T, C] alike, and loss 'cross_entropy' says which it
reads."""

import warnings

import torch
from torch import nn

from sltlab.estimators import LLCConfig, estimate_llc
from sltlab.estimators.notices import EstimateWarning

SHORT = LLCConfig(chains=2, draws=20, burnin=10, step_size=1e-4, localize_at="true_parameter")


class TokenLogits(nn.Module):
    """Logits of a sequence of T tokens over V classes: [b, T, V], or torch's [b, V, T]."""

    def __init__(self, length: int, vocabulary: int, classes_first: bool):
        super().__init__()
        self.length, self.vocabulary, self.classes_first = length, vocabulary, classes_first
        self.layer = nn.Linear(3, length * vocabulary)

    def forward(self, x):
        logits = self.layer(x).reshape(len(x), self.length, self.vocabulary)
        return logits.transpose(1, 2) if self.classes_first else logits


def _notes(length: int, vocabulary: int, classes_first: bool = False) -> tuple[str, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=generator)
    tokens = torch.randint(0, min(length, vocabulary), (32, length), generator=generator)
    torch.manual_seed(0)
    with warnings.catch_warnings():   # a run this short fails the mixing gate; only the notes matter here
        warnings.simplefilter("ignore", EstimateWarning)
        result = estimate_llc(TokenLogits(length, vocabulary, classes_first), (x, tokens), loss="cross_entropy",
                              config=SHORT)
    return result.notes


def test_outputs_with_as_many_classes_as_positions_are_said_to_be_read_along_dimension_1():
    said = ("the outputs' shape [b, 5, 5] has as many entries along dimension 1 as along the last: loss "
            "'cross_entropy' reads the 5 classes along dimension 1, as torch does; if the module gives a sequence's "
            "outputs as [b, T, C] (a language model's), give them as [b, C, T] (outputs.transpose(1, 2)), or λ̂ is of "
            "another likelihood")
    assert said in _notes(5, 5) and said in _notes(5, 5, classes_first=True)   # the same shape either way
    assert not any("along dimension 1 as along the last" in note for note in _notes(5, 4, classes_first=True))
