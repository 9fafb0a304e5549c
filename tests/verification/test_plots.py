"""Theory figures are written as real PNG files, and bad arguments are refused."""

import pytest

from sltlab.verification.catalogue.figures import plot_phase, plot_staircase

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE)
    assert len(content) > 1000


@pytest.mark.parametrize("widths", [[10, 5, 5, 10], [2, 2, 2, 2], [1, 1]])
def test_staircase_writes_a_png(tmp_path, widths):
    path = plot_staircase(widths, tmp_path / "staircase.png")
    assert path == tmp_path / "staircase.png"
    assert_png(path)


def test_phase_writes_a_png_and_creates_parent_folders(tmp_path):
    path = plot_phase(depth=3, io=4, max_width=6, path=tmp_path / "figures" / "phase.png")
    assert_png(path)


def test_wide_phase_diagram_without_cell_labels_writes_a_png(tmp_path):
    assert_png(plot_phase(depth=2, io=2, max_width=30, path=tmp_path / "phase.png"))


@pytest.mark.parametrize("widths", [[], [4], [4, 0, 4], [4, 2.5, 4], "10 10"])
def test_staircase_refuses_bad_widths(tmp_path, widths):
    with pytest.raises(ValueError):
        plot_staircase(widths, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("depth, io, max_width", [(1, 3, 3), (3, 0, 3), (3, 3, 0), (2.5, 3, 3)])
def test_phase_refuses_bad_arguments(tmp_path, depth, io, max_width):
    with pytest.raises(ValueError):
        plot_phase(depth, io, max_width, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_the_calibration_figure_draws_swept_cases_only(tmp_path):
    from sltlab.verification.suite.figures import plot_calibration

    pilot = {"step_size": 1e-3, "estimate": 0.5, "standard_error": 0.01}
    swept = {"id": "dln[a]", "lambda_exact_float": 0.5,
             "calibration": {"chosen": 5e-4, "sweep": [pilot, {**pilot, "step_size": 5e-4}]}}
    exact = {"id": "newton[b]", "lambda_exact_float": 0.5, "calibration": {"chosen": 2.0, "sweep": []}}
    assert plot_calibration([exact], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    assert plot_calibration([exact, swept], tmp_path / "one.png").stat().st_size > 0
