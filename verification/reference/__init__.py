"""Numerical reference truths, independent of the samplers: the finite-temperature expectation
t·E_t[K] by quadrature, and λ, m read off the volume scaling V(ε) = vol{K < ε}."""

from sltlab.verification.reference.finite_truth import tempered_expectation
from sltlab.verification.reference.volume_scaling import VolumeScaling, volume, volume_scaling

__all__ = ["tempered_expectation", "VolumeScaling", "volume", "volume_scaling"]
