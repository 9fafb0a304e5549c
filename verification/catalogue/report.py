"""A report of every exact learning coefficient sltlab knows, checked against published values.

`CATALOGUE` is the list of cases; `write_theory_report` evaluates each one, compares it with
the value it must reproduce (published, or an independent formula for reduced-rank
regression) and writes markdown, JSON and figures.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple

import sympy

from sltlab.theory import (DegenerateError, LearningCoefficient, deep_linear, newton, normal_crossing,
                    reduced_rank, regular, tanh_network)
from sltlab.verification.reference.volume_check import volume_markdown, volume_rows


class Expected(NamedTuple):
    """What a case must reproduce: λ (exact string) and m where stated, or a refusal.

    ``kind`` is ``"published"`` (a value from the literature), ``"cross-check"`` (an
    independent formula or a hand calculation) or ``"refusal"`` (the theory must refuse).
    """

    lam: str | None
    multiplicity: int | None
    source: str
    kind: str = "published"


class CatalogueEntry(NamedTuple):
    """One case of the report: an id, how to compute it, and what it must reproduce."""

    case_id: str
    compute: Callable[[], LearningCoefficient]
    expected: Expected | None = None


THEORY_DLN = "Aoyagi 2024, Thm 1"
THEORY_TOY = "Watanabe 2009, §2.4; Aoyagi & Watanabe 2005"
STAIRCASES = {
    (10, 5, 5, 10): ("25/2", "35/2", "45/2", "55/2", "65/2", "75/2"),
    (12, 6, 6, 12): ("18", "24", "30", "36", "42", "48", "54"),
    (10, 10, 10, 10): ("67/2", "73/2", "79/2", "42") + (None,) * 7,  # published up to r = 3
}
TANH_PUBLISHED = ("1/2", "2/3", "5/6", "1", "11/10", "6/5", "13/10", "7/5", "3/2", "11/7")
COEFFICIENT_KEYS = ("model", "parameters", "lambda", "lambda_float", "multiplicity", "dim",
                    "regular_ratio")
EXPECTED_KINDS = {"published": "Published values reproduced",
                  "cross-check": "Cross-checks against an independent formula or hand calculation",
                  "refusal": "Degenerate potentials refused as required",
                  "volume": "Exact values confirmed by the volume-scaling fit"}
SECTIONS = {"dln": "Deep linear networks", "rrr": "Reduced-rank regression",
            "nc": "Normal crossings", "tanh": "One-hidden-layer tanh networks",
            "regular": "Regular model", "newton": "Newton polyhedra"}
PHASE_DIAGRAM = {"depth": 3, "io": 10, "max_width": 16}


def _dln_entry(widths: tuple[int, ...], rank: int, lam: str | None, m: int | None,
               source: str) -> CatalogueEntry:
    expected = None if lam is None else Expected(lam, m, source)
    return CatalogueEntry(f"dln {list(widths)} r={rank}", partial(deep_linear, widths, rank), expected)


def _rrr_entry(m: int, h: int, n: int, rank: int) -> CatalogueEntry:
    """Reduced-rank regression, checked against the deep-linear formula with widths [M, H, N]."""
    reference = deep_linear((m, h, n), rank)
    return CatalogueEntry(f"rrr M={m} H={h} N={n} r={rank}", partial(reduced_rank, m, h, n, rank),
                          Expected(str(reference.lam), reference.multiplicity,
                                   f"deep_linear([{m}, {h}, {n}], {rank}), an independent formula",
                                   kind="cross-check"))


def _newton_entry(potential: str, lam: str, m: int | None) -> CatalogueEntry:
    return CatalogueEntry(f"newton {potential}", partial(newton, potential),
                          Expected(lam, m, f"{THEORY_TOY} (Newton polyhedron)"))


def _refused_entry(potential: str, why: str) -> CatalogueEntry:
    return CatalogueEntry(f"newton {potential}", partial(newton, potential),
                          Expected(None, None, f"{THEORY_TOY}: must be refused ({why})", kind="refusal"))


CATALOGUE: tuple[CatalogueEntry, ...] = (
    _dln_entry((2, 2, 2), 0, "3/2", 1, THEORY_DLN),
    _dln_entry((2, 2, 2, 2), 0, "3/2", 3, THEORY_DLN),
    _dln_entry((2, 1, 2), 0, "1", 2, THEORY_DLN),
    _dln_entry((1, 1, 1, 1), 0, "1/2", 3, THEORY_DLN),
    *(_dln_entry(widths, rank, lam, None, f"staircase, {THEORY_DLN}")
      for widths, lams in STAIRCASES.items() for rank, lam in enumerate(lams)),
    _rrr_entry(2, 2, 2, 0),
    _rrr_entry(2, 1, 2, 0),
    _rrr_entry(10, 5, 10, 2),
    _rrr_entry(5, 3, 4, 1),
    _rrr_entry(1, 1, 4, 1),
    _rrr_entry(4, 1, 1, 1),
    _rrr_entry(1, 4, 1, 1),
    CatalogueEntry("nc w1²w2²", partial(normal_crossing, (1, 1)),
                   Expected("1/2", 2, f"Watanabe 2009, {THEORY_TOY}")),
    CatalogueEntry("nc (w1w2w3)²", partial(normal_crossing, (1, 1, 1)),
                   Expected("1/2", 3, f"Watanabe 2009, {THEORY_TOY}")),
    CatalogueEntry("nc w1²w2⁴, prior |w2|", partial(normal_crossing, (1, 2), (0, 1)),
                   Expected("1/2", 2, "Watanabe 2009 Thm 2.3: min(1/2, 2/4), by hand",
                            kind="cross-check")),
    *(CatalogueEntry(f"tanh H={hidden}", partial(tanh_network, hidden),
                     Expected(lam, None, f"Aoyagi & Watanabe 2005, {THEORY_TOY}"))
      for hidden, lam in enumerate(TANH_PUBLISHED, start=1)),
    CatalogueEntry("regular d=3", partial(regular, 3), Expected("3/2", 1, "Watanabe 2009 §1.4: d/2")),
    _newton_entry("w1**4 + w2**2", "3/4", None),
    _newton_entry("w1**4 + w2**4", "1/2", None),
    _newton_entry("(w1**2 + w2**2)**2", "1/2", None),
    _newton_entry("w1**2*w2**4 + w1**4*w2**2", "1/3", None),
    _newton_entry("w1**2 + w1**2*w2**2", "1/2", None),
    _newton_entry("(w1*w2)**2 + (w1*w2**2)**2", "1/2", 2),
    _newton_entry("w1**6 + w2**4", "5/12", None),
    _newton_entry("w1**2*w2**2 + w3**4", "3/4", 2),
    _refused_entry("(w1 + w2)**2", "naive 1, true 1/2"),
    _refused_entry("(w1 - w2**2)**2", "naive 3/4, true 1/2"),
    _refused_entry("(w1**2 - w2**2)**2", "λ right, but true m = 2"),
)


def evaluate(entry: CatalogueEntry) -> dict[str, Any]:
    """Compute one catalogue entry and compare it with its expected value.

    Returns
    -------
    dict
        JSON-ready row: ``case``, ``model``, ``parameters``, ``lambda``, ``lambda_float``,
        ``multiplicity``, ``dim``, ``regular_ratio``, ``derivation_case``, ``refused`` (the
        refusal message, or None), ``expected`` (or None) and ``agrees`` (None without an
        expected value).
    """
    row = {"case": entry.case_id, **dict.fromkeys(COEFFICIENT_KEYS), "derivation_case": None,
           "refused": None}
    try:
        lc = entry.compute()
    except DegenerateError as error:
        row["refused"] = " ".join(str(error).split())
    else:
        values = lc.as_dict()
        row.update({key: values[key] for key in COEFFICIENT_KEYS}, derivation_case=lc.derivation.case)
    expected = entry.expected
    row["expected"] = None if expected is None else expected._asdict()
    row["agrees"] = None if expected is None else _agrees(row, expected)
    return row


def _agrees(row: dict[str, Any], expected: Expected) -> bool:
    must_refuse = expected.kind == "refusal"
    if must_refuse or row["refused"] is not None:
        return must_refuse and row["refused"] is not None
    same_lam = sympy.Rational(row["lambda"]) == sympy.Rational(expected.lam)
    return same_lam and expected.multiplicity in (None, row["multiplicity"])


class TheoryReport(NamedTuple):
    """What `write_theory_report` wrote, and how many checks disagreed (0: all pass)."""

    paths: dict[str, Path]
    failures: int


def write_theory_report(out_dir: str | Path) -> TheoryReport:
    """Evaluate `CATALOGUE` and write ``theory_report.md``, ``theory_report.json`` and figures.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created if missing).

    Returns
    -------
    TheoryReport
        ``paths`` (``"markdown"``, ``"json"`` and one key per figure) and the number of
        ``failures``: checks that disagree with their expected value.
    """
    from sltlab.verification.catalogue.figures import plot_phase, plot_staircase  # matplotlib only when drawing

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [evaluate(entry) for entry in CATALOGUE]
    figures = {}
    for widths in STAIRCASES:
        name = "staircase_" + "_".join(map(str, widths))
        figures[name] = plot_staircase(widths, out_dir / f"{name}.png")
    phase_name = "phase_depth{depth}_io{io}_max{max_width}".format(**PHASE_DIAGRAM)
    figures[phase_name] = plot_phase(**PHASE_DIAGRAM, path=out_dir / f"{phase_name}.png")

    volume = volume_rows()
    paths = {"markdown": out_dir / "theory_report.md", "json": out_dir / "theory_report.json"}
    summary = _summary(rows, volume)
    paths["markdown"].write_text(_markdown(rows, summary, figures, volume), encoding="utf-8")
    paths["json"].write_text(json.dumps({"summary": summary, "rows": rows, "volume_check": volume,
                                         "figures": {k: p.name for k, p in figures.items()}},
                                        indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return TheoryReport({**paths, **figures}, _failures(summary))


def _summary(rows: list[dict[str, Any]], volume: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per kind of check: how many rows were checked and how many agree."""
    tally = {kind: {"checked": 0, "agree": 0} for kind in EXPECTED_KINDS}
    checks = [(row["expected"]["kind"], row["agrees"]) for row in rows if row["expected"] is not None]
    for kind, agrees in checks + [("volume", row["agrees"]) for row in volume]:
        tally[kind]["checked"] += 1
        tally[kind]["agree"] += agrees
    return tally


def _failures(summary: dict[str, dict[str, int]]) -> int:
    return sum(counts["checked"] - counts["agree"] for counts in summary.values())


def _markdown(rows: list[dict[str, Any]], summary: dict[str, dict[str, int]],
              figures: dict[str, Path], volume: list[dict[str, Any]]) -> str:
    failures = _failures(summary)
    verdict = "All checks pass." if failures == 0 else f"**{failures} CHECKS FAIL.**"
    lines = ["# sltlab theory report", "", f"{len(rows)} cases. {verdict}", ""]
    for kind, counts in summary.items():
        mark = "✓" if counts["agree"] == counts["checked"] else "✗"
        lines.append(f"- {EXPECTED_KINDS[kind]}: {counts['agree']}/{counts['checked']} {mark}")
    for prefix in dict.fromkeys(row["case"].split()[0] for row in rows):
        section = [row for row in rows if row["case"].split()[0] == prefix]
        lines += ["", f"## {SECTIONS.get(prefix, prefix)}", "",
                  "| case | λ | λ (decimal) | m | d | λ/(d/2) | expected | agrees | source of expected "
                  "| derivation |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_escape(cell) for cell in _cells(row)) + " |" for row in section]
    lines += [""] + volume_markdown(volume)
    lines += ["", "## Figures", ""]
    for name, path in figures.items():
        lines += [f"![{name}]({path.name})", ""]
    return "\n".join(lines)


def _cells(row: dict[str, Any]) -> list[str]:
    expected = row["expected"]
    if expected is None:
        expected_text, source = "—", "—"
    elif expected["kind"] == "refusal":
        expected_text, source = "refused", expected["source"]
    else:
        stated_m = "" if expected["multiplicity"] is None else f", m={expected['multiplicity']}"
        expected_text, source = expected["lam"] + stated_m, expected["source"]
    agrees = {None: "", True: "✓", False: "✗"}[row["agrees"]]
    if row["refused"] is not None:
        return [row["case"], f"refused: {row['refused']}", "", "", "", "", expected_text, agrees,
                source, ""]
    return [row["case"], row["lambda"], f"{row['lambda_float']:.6g}", str(row["multiplicity"]),
            str(row["dim"]), f"{row['regular_ratio']:.3f}", expected_text, agrees, source,
            row["derivation_case"]]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")
