"""Every command that runs torch sets its thread count (default one, ``--threads N``) and
states it in its output."""

import json
import platform

import pytest
import torch

from sltlab.verification.cli import build_parser, main
from sltlab.verification.cli.bench import missed
from sltlab.verification.threads import (DEFAULT_THREADS, keep_freed_memory, threads_restored, threads_set_to,
                                         usable_cores, use_threads)

COMMANDS = (["verify"], ["estimate", "dln", "--widths", "2", "2", "--rank", "1"], ["estimate", "poly", "w1**2"],
            ["bench"], ["dynamics", "saddle", "--out", "x"], ["dynamics", "grokking", "--out", "x"],
            ["dynamics", "bayes", "--model", "tms", "--out", "x"])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda words: " ".join(words[:2]))
def test_every_torch_command_takes_threads_with_one_by_default(command):
    parser = build_parser()
    assert DEFAULT_THREADS == 1
    assert parser.parse_args(command).threads == 1
    assert parser.parse_args([*command, "--threads", "2"]).threads == 2


def test_threads_are_set_checked_and_restored():
    earlier = torch.get_num_threads()
    with threads_set_to(1 if earlier != 1 else 2) as chosen:
        assert torch.get_num_threads() == chosen != earlier
    assert torch.get_num_threads() == earlier
    with pytest.raises(ValueError, match="--threads must be at least 1"):
        use_threads(0)


def test_freed_memory_is_kept_where_the_c_library_is_glibc():
    """glibc accepts both mallopt settings; any other C library declines, and nothing is set."""
    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


@pytest.fixture
def two_threads():
    with threads_set_to(2):
        yield


def test_bench_sets_and_states_its_thread_count(capsys, two_threads):
    glibc = platform.libc_ver()[0] == "glibc"
    code = main(["bench", "--repeats", "1", "--only", "theory", "--json"])   # 1 where a timing target is missed
    result = json.loads(capsys.readouterr().out)
    assert code == int(missed(result))
    assert result["torch_threads"] == 1 and result["freed_memory_kept"] is glibc
    assert torch.get_num_threads() == 2   # the caller's count, given back
    threads = min(2, usable_cores())
    assert main(["bench", "--repeats", "1", "--only", "theory", "--threads", str(threads)]) in (0, 1)
    out = capsys.readouterr().out
    assert f"torch threads: {threads}" in out and torch.get_num_threads() == 2
    assert f"freed memory kept for reuse: {'yes' if glibc else 'no (not glibc)'}" in out


def test_estimate_states_its_thread_count(capsys, two_threads):
    assert main(["estimate", "poly", "w1**2", "--chains", "2", "--draws", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["torch_threads"] == 1
    assert torch.get_num_threads() == 2   # the caller's count, given back
    threads = min(2, usable_cores())
    assert main(["estimate", "poly", "w1**2", "--chains", "2", "--draws", "100", "--threads", str(threads)]) == 0
    assert f"{threads} torch thread(s)" in capsys.readouterr().out


def test_bad_thread_counts_are_refused_in_one_line(capsys):
    assert main(["verify", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    beyond = usable_cores() + 1
    with threads_restored():   # a Dask worker is not held to the cores of the machine that chose the count
        assert use_threads(beyond, at_most_cores=False) == beyond
    assert main(["estimate", "poly", "w1**2", "--threads", str(beyond)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"--threads {beyond} exceeds the {beyond - 1} core(s) this process "
                                                    "may run on: threads beyond the cores wait on each other (give at "
                                                    "most the core count)")
