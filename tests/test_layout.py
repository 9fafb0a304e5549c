"""The installed layout: one import name (``sltlab.*``), imports that flow one way, no private
names across modules, every public name importable, no module over 300 lines, and a user's own
``models/`` or ``theory/`` package beside a notebook cannot shadow sltlab's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "models", "estimators", "verification")
# What each package may import of sltlab: theory and models and estimators stand alone.
ALLOWED = {"theory": {"theory"}, "models": {"models"}, "estimators": {"estimators"},
           "verification": set(PACKAGES)}


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _imported_modules(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import statement in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("path", _sources(*PACKAGES, "tests"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_import_of_the_project_goes_through_sltlab(path):
    bare = [module for module, _ in _imported_modules(path) if module.split(".")[0] in PACKAGES]
    assert not bare, f"{path.name} imports {bare}: use sltlab.<package>"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package):
    for path in _sources(package):
        for module, names in _imported_modules(path):
            parts = module.split(".")
            if parts[0] != "sltlab":
                continue
            used = {parts[1]} if len(parts) > 1 else set(names)
            assert used <= ALLOWED[package], f"{path.relative_to(ROOT)} imports sltlab.{'/'.join(sorted(used))}"
    if package == "theory":
        assert all(module.split(".")[0] != "torch" for path in _sources("theory")
                   for module, _ in _imported_modules(path))


def test_no_private_name_is_imported_across_modules():
    offenders = [f"{path.relative_to(ROOT)}: {module}.{name}" for path in _sources(*PACKAGES, "tests")
                 for module, names in _imported_modules(path) if module.startswith("sltlab")
                 for name in names if name.startswith("_")]
    assert not offenders


@pytest.mark.parametrize("package", [path.parent.relative_to(ROOT).as_posix().replace("/", ".")
                                     for path in _sources(*PACKAGES) if path.name == "__init__.py"])
def test_every_public_name_resolves(package):
    """``from sltlab.<package> import *`` works: every name of ``__all__`` is there, lazily or not."""
    import importlib

    module = importlib.import_module(f"sltlab.{package}")
    assert [name for name in getattr(module, "__all__", ()) if not hasattr(module, name)] == []


def test_no_module_is_over_300_lines():
    long = {str(path.relative_to(ROOT)): n for path in _sources(*PACKAGES, "tests")
            if (n := len(path.read_text().splitlines())) > 300}
    assert not long


def test_only_sltlab_is_installed_and_every_subpackage_is_listed():
    tomllib = pytest.importorskip("tomllib")   # Python ≥ 3.11
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {f"sltlab.{name}": name for name in PACKAGES}
    on_disk = {"sltlab." + ".".join(init.parent.relative_to(ROOT).parts)
               for package in PACKAGES for init in (ROOT / package).rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk


def _readme_python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_a_users_own_packages_do_not_shadow_sltlab(tmp_path):
    """From a folder holding its own models/, theory/, estimators/ and verification/ packages
    (each refusing to be imported), sltlab and the README's examples still work."""
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the user\\'s own {name}')\n")
    examples = _readme_python_examples()
    assert examples, "the README shows Python examples"
    script = "import sltlab.verification.cli, sltlab.estimators, sltlab.theory, sltlab.models\n" + "\n".join(
        textwrap.dedent(example) for example in examples)
    (tmp_path / "notebook.py").write_text(script)
    done = subprocess.run([sys.executable, "notebook.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
