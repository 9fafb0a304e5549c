"""Wires theory, models and estimators together, in rooms:

- ``cli``: the ``sltlab`` command line, one module per subcommand;
- ``suite``: problems with exact answers, the registry of cases, the gates, the runner and the
  report of a verification suite;
- ``dynamics``: the LLC along training (saddle-to-saddle, grokking);
- ``bench``: speed and accuracy benchmarks;
- ``reference``: numerical truths the samplers are checked against;
- ``catalogue``: the theory report and theory figures.
"""
