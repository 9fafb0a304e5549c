"""The theory catalogue: every exact λ and m the lab derives, set beside published values and
the volume-scaling check, with the theory figures (staircase, phase diagram)."""

from sltlab.verification.catalogue.figures import plot_phase, plot_staircase
from sltlab.verification.catalogue.report import write_theory_report

__all__ = ["plot_phase", "plot_staircase", "write_theory_report"]
