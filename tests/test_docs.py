"""Issue 33: the documentation a user finds their way in. The site builds with ``mkdocs build --strict`` (a broken
reference, a docstring griffe cannot read or a page missing from the navigation fails), every public name has a
reference entry with a one-line summary, every package has its API page, and the README's quick start runs."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["detinit", "detinit.init", "detinit.nn", "detinit.models", "detinit.symmetry", "detinit.diagnostics"]
PACKAGES += ["detinit.train", "detinit.data", "detinit.experiments"]


def _nav_pages(nav: object) -> list[str]:
    """Every page path of a mkdocs ``nav`` (nested lists of ``{title: page or list}``)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_one_line_summary(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        obj = getattr(module, name)
        if not (callable(obj) or inspect.ismodule(obj)):
            continue  # constants (ROLES, RELU_KINDS, __version__) are documented by their module
        doc = (obj.__doc__ or "").strip()
        generated = inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")  # a dataclass's signature
        assert doc and not generated, f"{package}.{name} has no docstring of its own"


def test_every_package_has_an_api_page_in_the_navigation():
    pages = set(_nav_pages(_config()["nav"]))
    for package in PACKAGES:
        page = f"api/{package}.md"
        assert page in pages and f"::: {package}" in (ROOT / "docs" / page).read_text(), package


def test_every_page_is_in_the_navigation():
    pages = set(_nav_pages(_config()["nav"]))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == pages, (on_disk - pages, pages - on_disk)


def test_the_readme_links_to_files_that_exist():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links and all((ROOT / link).exists() for link in links), [
        link for link in links if not (ROOT / link).exists()
    ]


def test_the_readme_quick_start_runs():
    pytest.importorskip("transformers")
    block = re.search(r"## Quick start\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    exec(compile(block.group(1), "README.md quick start", "exec"), {})  # noqa: S102 - our own README


def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (pip install -e '.[docs]'; make test installs it)")
    pytest.importorskip("mkdocstrings")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for package in PACKAGES:  # every public name has its entry (a module, a dunder: their own pages)
        html = (tmp_path / "site" / "api" / package / "index.html").read_text()
        module = importlib.import_module(package)
        names = [n for n in module.__all__ if not n.startswith("_") and not inspect.ismodule(getattr(module, n))]
        missing = [n for n in names if not re.search(rf'id="[\w.]*\.{re.escape(n)}"', html)]
        assert not missing, (package, missing)


RUNNABLE_PAGES = ["index.md", "guides/symmetry.md", "guides/diagnostics.md"]  # self-contained examples


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_the_examples_of_a_page_run(page):
    pytest.importorskip("transformers")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / page).read_text(), re.S)
    assert blocks, page
    for block in blocks:
        exec(compile(block, page, "exec"), {})  # noqa: S102 - our own documentation


def test_the_reference_fences_the_doctests_of_docstrings():
    """The API pages show a docstring's doctests as code (docs/griffe_doctests.py), not as quotes."""
    import doctest
    import importlib.util

    spec = importlib.util.spec_from_file_location("griffe_doctests", ROOT / "docs" / "griffe_doctests.py")
    pytest.importorskip("griffe")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert doctest.testmod(module).failed == 0
    text = "Ends.\n\n    >>> x = 1\n    ... # more\n    >>> x\n    1\n\nAfter."
    assert module.fence_doctests(text).split("\n") == [
        "Ends.", "", "    ```pycon", "    >>> x = 1", "    ... # more", "    >>> x", "    1", "    ```", "", "After.",
    ]  # fmt: skip
