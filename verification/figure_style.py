"""How every sltlab figure is drawn and written: matplotlib's object-oriented API on an explicit
Agg canvas, so importing sltlab never changes the backend of a user's notebook, and figures
can be written on machines without a display."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DPI = 130
FONT_SIZES = {"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 12,
              "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10}


@contextmanager
def new_figure(**options) -> Iterator:
    """A ``matplotlib.figure.Figure(**options)`` on its own Agg canvas, drawn under sltlab's font
    sizes; build and :func:`save` it inside the ``with`` block."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(FONT_SIZES):
        figure = Figure(**options)
        FigureCanvasAgg(figure)
        yield figure


def save(figure, path: str | Path) -> Path:
    """Write ``figure`` (format from the suffix); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path
