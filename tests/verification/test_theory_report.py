"""The theory report reproduces every published value and refuses the degenerate potentials."""

import json
from functools import partial

import pytest

from sltlab.theory import deep_linear, newton
from sltlab.verification.catalogue.report import (CATALOGUE, CatalogueEntry, Expected, evaluate,
                                        write_theory_report)

DEGENERATE = ("(w1 + w2)**2", "(w1 - w2**2)**2", "(w1**2 - w2**2)**2")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report")
    written = write_theory_report(out_dir)
    assert written.failures == 0
    paths = written.paths
    rows = json.loads(paths["json"].read_text(encoding="utf-8"))["rows"]
    return out_dir, paths, rows, paths["markdown"].read_text(encoding="utf-8")


def test_every_written_file_is_in_the_output_folder(report):
    out_dir, paths, _, _ = report
    assert {"markdown", "json"} <= set(paths)
    for path in paths.values():
        assert path.parent == out_dir and path.stat().st_size > 0
    figures = [path for path in paths.values() if path.suffix == ".png"]
    assert len(figures) == 4
    for figure in figures:
        assert figure.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_one_row_per_catalogue_entry(report):
    _, _, rows, _ = report
    assert [row["case"] for row in rows] == [entry.case_id for entry in CATALOGUE]
    assert len({row["case"] for row in rows}) == len(rows)


def test_every_expected_value_is_reproduced(report):
    _, _, rows, markdown = report
    checked = [row for row in rows if row["expected"] is not None]
    assert len([row for row in checked if row["expected"]["kind"] == "published"]) >= 40
    assert [row["case"] for row in checked if not row["agrees"]] == []
    assert "✗" not in markdown
    assert "All checks pass." in markdown


@pytest.mark.parametrize("case, lam, multiplicity", [
    ("dln [2, 2, 2] r=0", "3/2", 1),
    ("dln [2, 2, 2, 2] r=0", "3/2", 3),
    ("dln [2, 1, 2] r=0", "1", 2),
    ("dln [1, 1, 1, 1] r=0", "1/2", 3),
    ("newton (w1*w2)**2 + (w1*w2**2)**2", "1/2", 2),
    ("tanh H=10", "11/7", 1),
])
def test_published_examples_appear_with_their_values(report, case, lam, multiplicity):
    _, _, rows, _ = report
    row = next(row for row in rows if row["case"] == case)
    assert (row["lambda"], row["multiplicity"], row["agrees"]) == (lam, multiplicity, True)


def test_degenerate_potentials_are_marked_refused(report):
    _, _, rows, markdown = report
    for potential in DEGENERATE:
        row = next(row for row in rows if row["case"] == f"newton {potential}")
        assert row["refused"] and row["lambda"] is None and row["agrees"] is True
        assert f"| newton {potential} | refused: " in markdown


def test_markdown_embeds_the_figures_with_relative_links(report):
    out_dir, paths, _, markdown = report
    for path in paths.values():
        if path.suffix == ".png":
            assert f"]({path.name})" in markdown
            assert (out_dir / path.name).exists()


def test_a_wrong_expected_value_is_reported_as_disagreeing():
    wrong = CatalogueEntry("dln wrong", partial(deep_linear, (2, 2, 2), 0), Expected("2", None, "test"))
    wrong_m = CatalogueEntry("dln wrong m", partial(deep_linear, (2, 2, 2), 0), Expected("3/2", 2, "test"))
    assert evaluate(wrong)["agrees"] is False
    assert evaluate(wrong_m)["agrees"] is False


def test_a_missing_refusal_is_reported_as_disagreeing():
    entry = CatalogueEntry("newton w1**2", partial(newton, "w1**2"),
                           Expected(None, None, "test", kind="refusal"))
    row = evaluate(entry)
    assert row["refused"] is None and row["agrees"] is False


def test_volume_scaling_confirms_exact_and_true_values(report):
    _, paths, _, markdown = report
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    volume = data["volume_check"]
    assert data["summary"]["volume"] == {"checked": len(volume), "agree": len(volume)}
    refused = {row["potential"]: row for row in volume if "newton refuses" in row["source"]}
    assert set(refused) == set(DEGENERATE)
    assert all(abs(row["lambda_fit"] - 0.5) <= 0.02 for row in refused.values())
    assert "## Numerical cross-check: volume scaling" in markdown
