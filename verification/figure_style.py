"""How every sltlab figure is drawn and written: matplotlib's object-oriented API on an explicit
Agg canvas, so importing sltlab never changes the backend of a user's notebook, and figures
can be written on machines without a display."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DPI = 130
# Okabe & Ito's colour-blind-safe palette: the verdicts, and the grey of what a gate accepts
PASSED, FAILED, ACCEPTED = "#0072B2", "#D55E00", "0.82"
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
    """Write ``figure`` (format from the suffix, ``.png`` when there is none, as matplotlib would add)
    and return the file written; parent folders are created. A folder is refused."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give the figure's file name (e.g. {path / 'figure.png'})")
    path = path if path.suffix else path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def label_log_axis(axis) -> None:
    """Ticks at 1, 2 and 5 times each power of ten, every one labelled as a plain number, so a
    log axis that spans less than a decade still reads (matplotlib would label only 10ⁿ)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_locator(NullLocator())


def text_points(text: str, fontsize: float) -> float:
    """About how wide ``text`` is set, in points: its longest line, each character taken as 0.6
    of the font size (about the mean width of the sans-serif faces' letters and digits)."""
    return 0.6 * fontsize * max(map(len, text.splitlines() or [""]))
