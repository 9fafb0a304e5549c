"""Studies of the LLC along training: saddle-to-saddle in deep linear networks and grokking on
modular addition, with their figures and a cache of checkpoints keyed by the settings."""

from sltlab.verification.dynamics.grokking import GrokkingSetup, SamplerSetting, grokking_study
from sltlab.verification.dynamics.saddle import SaddleSetup, saddle_study

__all__ = ["GrokkingSetup", "SamplerSetting", "grokking_study", "SaddleSetup", "saddle_study"]
