"""The peer bench's times must be seconds it can divide by: a peer's time that is infinite, zero or
no number, a regular expression without a group, and a sampling time longer than the whole process
are one-line errors (exit 2); an infinite time had read as an infinite speed-up that met its target."""

import pytest

from sltlab.verification.cli import main


@pytest.mark.parametrize("printed, regex, said", [
    ("1e999", r"wall time = (\S+) s", "is 1e999: it must be a positive, finite number of seconds"),
    ("0", r"wall time = (\S+) s", "is 0: it must be a positive, finite number of seconds"),
    ("nan", r"wall time = (\S+) s", "is nan: it must be a positive, finite number of seconds"),
    ("x", r"wall time = (\S+) s", "matched 'x' in the peer's output, not a number of seconds"),
    ("1", "wall time", "has no group: put the seconds in"),
])
def test_a_peer_time_that_is_no_positive_finite_number_is_refused(printed, regex, said, capsys):
    assert main(["bench", "--only", "peer", "--repeats", "1", "--peer-command", f"echo 'wall time = {printed} s'",
                 "--peer-sampling-regex", regex]) == 2
    assert said in capsys.readouterr().err


def test_given_peer_seconds_are_whole_then_sampling(capsys):
    assert main(["bench", "--only", "peer", "--repeats", "1", "--peer-seconds", "5", "10"]) == 2
    assert "gives the peer's sampling (10 s) as longer than its whole process (5 s)" in capsys.readouterr().err
