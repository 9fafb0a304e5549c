"""Sampling estimators of the local learning coefficient, and numerical checks of exact values."""
