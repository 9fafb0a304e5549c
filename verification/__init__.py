"""Wires theory, models and estimators together: reports, plots and the ``sltlab`` command line."""
