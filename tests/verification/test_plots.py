"""Theory figures are written as real PNG files, and bad arguments are refused."""

import pytest

from sltlab.verification.catalogue.figures import cell_edges, labels_fit, plot_phase, plot_staircase
from sltlab.verification.catalogue.transitions import label_heights

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


def test_a_figure_without_a_suffix_is_written_and_named_as_png_and_a_folder_is_refused(tmp_path):
    path = plot_staircase([4, 2, 4], tmp_path / "staircase")
    assert path == tmp_path / "staircase.png"
    assert_png(path)
    with pytest.raises(ValueError, match="is a folder: give the figure's file name"):
        plot_staircase([4, 2, 4], tmp_path)


def test_phase_writes_a_png_and_creates_parent_folders(tmp_path):
    path = plot_phase(depth=3, io=4, max_width=6, path=tmp_path / "figures" / "phase.png")
    assert_png(path)


def test_wide_phase_diagram_without_cell_labels_writes_a_png(tmp_path):
    assert_png(plot_phase(depth=2, io=2, max_width=30, path=tmp_path / "phase.png"))


def test_a_phase_diagram_of_thousands_of_widths_shows_its_cells_not_their_edges(tmp_path):
    from matplotlib.image import imread

    assert cell_edges(8, 4, 6.5, 4.5)["linewidth"] > 0 and cell_edges(3000, 4, 16, 4.5)["linewidth"] == 0
    pixels = imread(plot_phase(depth=2, io=3, max_width=3000, path=tmp_path / "phase.png"))
    height, width = pixels.shape[:2]
    inside = pixels[int(0.3 * height):int(0.7 * height), int(0.2 * width):int(0.6 * width), :3]
    assert (inside > 0.95).all(axis=-1).mean() < 0.01   # the white edges had covered every cell


def test_a_phase_diagram_of_one_width_colours_its_cells():
    """With "nearest" shading one column had no width: the figure was blank."""
    import tempfile
    from pathlib import Path

    from matplotlib.image import imread

    with tempfile.TemporaryDirectory() as folder:
        pixels = imread(plot_phase(depth=3, io=3, max_width=1, path=Path(folder) / "phase.png"))[..., :3]
    height, width = pixels.shape[:2]
    lowest = pixels[int(0.72 * height):int(0.78 * height), int(0.2 * width):int(0.6 * width)]   # the rank-0 cell
    assert (lowest.max(axis=-1) - lowest.min(axis=-1)).mean() > 0.2   # coloured, neither white nor grey


def test_labels_that_would_run_together_are_left_out_or_moved_to_another_height():
    assert labels_fit(["18", "24", "30", "36", "42", "48", "54"], 6.0)
    assert not labels_fit(["1467/2"] * 41, 6.0)   # [60, 40, 40, 60]'s 41 ranks: the labels had covered each other
    labels = ["rank 0 → rank 1\nn = 30", "rank 1 → rank 2\nn = 184", "rank 2 → rank 3\nn = 522",
              "rank 3 → rank 4\nn = 1373"]
    # on 3 decades a label of 15 characters spans about half a decade: 184 and 522 are too near
    assert label_heights([30, 184, 522, 1373], labels, 3.0) == [0.5, 0.5, 0.3, 0.5]
    assert label_heights([30, 3000], labels[:2], 3.0) == [0.5, 0.5]


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


def test_cases_at_the_same_position_are_spread_apart_symmetrically():
    from sltlab.verification.suite.figures import spread_apart

    spread = spread_apart([0.5, 0.5, 0.5, 2.0], 0.05)
    assert spread[3] == 2.0                                   # alone: not moved
    assert len(set(spread[:3])) == 3 and spread[1] == pytest.approx(0.5)
    assert spread[0] * spread[2] == pytest.approx(0.25)       # symmetric on a log axis


def test_a_log_axis_within_one_decade_has_labelled_ticks():
    from sltlab.verification.figure_style import label_log_axis, new_figure

    with new_figure() as figure:
        axes = figure.subplots()
        axes.set(xscale="log", xlim=(2, 40))
        label_log_axis(axes.xaxis)
        figure.canvas.draw()
        labels = [tick.get_text() for tick in axes.get_xticklabels() if tick.get_text()]
    assert {"2", "5", "10", "20"} <= set(labels)


def _drawn(monkeypatch, plot, lines, path):
    """What ``plot(lines, path)`` draws on its axes: the gate's grey bars as (low, high) and the
    finite-n truths' marks (not the error bars' caps, which are smaller), as y values."""
    from matplotlib.colors import to_rgba

    from sltlab.verification.figure_style import ACCEPTED
    from sltlab.verification.suite import figures

    seen = {}

    def keep(figure, path):
        marks = figure.axes[0].lines
        seen["bars"] = [tuple(float(y) for y in mark.get_ydata()) for mark in marks
                        if to_rgba(mark.get_color()) == to_rgba(ACCEPTED) and mark.get_linewidth() == 7]
        seen["truths"] = [float(mark.get_ydata()[0]) for mark in marks if mark.get_marker() == "_"
                          and mark.get_markersize() == figures.TRUTH_MARK["markersize"]]
        return figures.save(figure, path)

    monkeypatch.setattr(figures, "_save", keep)
    assert plot(lines, path).read_bytes().startswith(PNG_SIGNATURE)
    return seen


def test_the_suite_figures_draw_what_the_gate_accepts(tmp_path, monkeypatch):
    from sltlab.verification.suite.figures import plot_error_vs_dim, plot_estimate_vs_exact

    line = {"id": "dln[a]", "family": "dln", "tags": ["dln"], "dim": 30, "lambda_exact_float": 5.5, "llc_mean": 4.77,
            "llc_se": 0.02, "finite_n_truth": 4.78, "passed": True, "gates": {"accuracy": {"interval": [4.6, 4.95]}}}
    failed = {**line, "id": "dln[b]", "llc_mean": 4.0, "passed": False}
    drawn = _drawn(monkeypatch, plot_estimate_vs_exact, [line, failed], tmp_path / "a.png")
    assert drawn == {"bars": [(4.6, 4.95)] * 2, "truths": [4.78] * 2}
    drawn = _drawn(monkeypatch, plot_error_vs_dim, [line, failed], tmp_path / "b.png")
    percent = [100 * (value / 5.5 - 1) for value in (4.6, 4.95, 4.78)]
    assert drawn["bars"] == [pytest.approx(tuple(percent[:2]))] * 2
    assert drawn["truths"] == pytest.approx([percent[2]] * 2)
    without = [{key: value for key, value in case.items() if key not in ("gates", "finite_n_truth")}
               for case in (line, failed)]
    for plot in (plot_estimate_vs_exact, plot_error_vs_dim):
        assert _drawn(monkeypatch, plot, without, tmp_path / "c.png") == {"bars": [], "truths": []}
