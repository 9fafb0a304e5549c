"""What bounds the along row's speed-up: the FLOPs of a chain-step counted exactly, and the
speed-up left were the batched sampling to run at the machine's matmul peak."""

import pytest

from sltlab.verification.bench import along

PEAK = 50.0   # GFLOP/s, given: the peak itself is measured by the sampling row


def test_the_bound_puts_the_batched_sampling_at_the_peak_and_keeps_the_rest(monkeypatch):
    monkeypatch.setattr(along, "matmul_peak_gflops", lambda device: PEAK if device == "cpu" else None)   # where it ran
    row = along.along_row(1, checkpoints=2, chains=2, draws=8)
    # embedding 32, hidden 64, p = 53, batches of 128: two input layers and the unembedding, then twice that back
    assert row["flops_per_chain_step"] == 128 * (2 * 2 * 32 * 64 + 2 * 64 * 53) * 3
    assert row["matmul_peak_gflops"] == PEAK
    gflop = row["flops_per_chain_step"] * row["checkpoints"] * row["chains"] * row["steps"] / 1e9
    rest = row["batched_seconds"] - gflop / row["batched_sampling_gflops"]
    assert row["speed_up_with_sampling_at_peak"] == pytest.approx(row["sequential_seconds"] / (rest + gflop / PEAK))
    assert "against a matmul peak of 50.0" in along.format_along(row)


def test_the_peak_is_measured_on_the_device_asked_for(monkeypatch):
    import torch

    from sltlab.verification.bench.sampling import matmul_peak_gflops
    made, draw = [], torch.randn

    def recording(*shape, **options):
        made.append(options.get("device"))
        return draw(*shape, **options)
    monkeypatch.setattr(torch, "randn", recording)
    assert matmul_peak_gflops(sizes=(64,), repeats=1, device="cpu") > 0 and made == ["cpu", "cpu"]
