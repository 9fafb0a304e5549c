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
