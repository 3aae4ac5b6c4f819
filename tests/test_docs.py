"""Documentation checks that need no Sphinx build (the build itself runs in CI, ``.ci/run``).

* every public function and class of every module in the API reference (``docs/api.rst``,
  ``automodapi``) has a numpydoc docstring with an Examples section;
* the examples of the modules whose Examples the documentation relies on run (doctest);
* the README's figure and the pages the docs include exist.
"""

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"

#: Modules whose doctests are run here (the rest are run by their owners' tests or not yet).
DOCTESTED = ["astro_enhance.exceptions", "astro_enhance.io", "astro_enhance.surveys",
             "astro_enhance.normalize", "astro_enhance.visualization",
             "astro_enhance.sample_data", "astro_enhance.enhancers.base",
             "astro_enhance.enhancers.registry", "astro_enhance.weights",
             "astro_enhance.metrics", "astro_enhance.domain", "astro_enhance.cli",
             "astro_enhance.diagnostics", "astro_enhance.tiling", "astro_enhance.models",
             "astro_enhance.training.data", "astro_enhance.training.recipes",
             "astro_enhance.training.loops", "astro_enhance.stars.core",
             "astro_enhance.stars.psf", "astro_enhance.stars.decide",
             "astro_enhance.stars.matching", "astro_enhance.stars.preview"]

_SECTION = re.compile(r"^(?P<name>[A-Z][A-Za-z ]+)\n-{3,}\s*$", re.M)


def _api_modules():
    text = (DOCS / "api.rst").read_text()
    mods = re.findall(r"^\.\. automodapi:: (\S+)", text, re.M)
    assert len(mods) > 10, "docs/api.rst lists no automodapi modules"
    return mods


def _problems(obj):
    """What is wrong with the docstring of ``obj`` (empty list when fine)."""
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        return ["no docstring"]
    problems = []
    sections = {m.group("name"): m.end() for m in _SECTION.finditer(doc)}
    if "Examples" not in sections:
        problems.append("no Examples section")
    else:
        rest = doc[sections["Examples"]:]
        nxt = _SECTION.search(rest)
        body = rest[:nxt.start()] if nxt else rest
        if ">>>" not in body:
            problems.append("Examples section without a '>>>' example")
    if inspect.isfunction(obj):
        params = [p for p in inspect.signature(obj).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if params and "Parameters" not in sections:
            problems.append("no Parameters section")
    return problems


def _missing():
    out = {}
    for modname in _api_modules():
        mod = importlib.import_module(modname)
        names = getattr(mod, "__all__", None)
        assert names is not None, f"{modname} has no __all__"
        for name in names:
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue  # constants are documented by their comments
            problems = _problems(obj)
            if problems:
                out.setdefault(modname, {})[name] = problems
    return out


def test_api_names_have_numpydoc_examples():
    missing = _missing()
    assert not missing, "public names without a proper numpydoc docstring: " + "; ".join(
        f"{mod}.{n}: {', '.join(p)}" for mod, names in missing.items() for n, p in names.items())


def test_problems_detects_a_missing_examples_section():
    def documented(x):
        """Do nothing.

        Parameters
        ----------
        x : int
            Anything.

        Examples
        --------
        >>> documented(1)
        """

    def undocumented(x):
        """Do nothing.

        Parameters
        ----------
        x : int
            Anything.
        """

    assert _problems(documented) == []
    assert _problems(undocumented) == ["no Examples section"]
    assert _problems(lambda: None) == ["no docstring"]


@pytest.mark.parametrize("modname", DOCTESTED)
def test_docstring_examples_run(modname, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, modname) if t.examples]
    assert tests, f"{modname} has no doctest examples"
    for test in tests:
        runner.run(test, out=lambda s: None)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} examples of {modname} failed " \
                        f"(run python -m pytest --doctest-modules on it to see them)"


def test_pages_and_figures_exist():
    readme = (ROOT / "README.md").read_text()
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (ROOT / rel).is_file(), f"README figure {rel} is missing"
    index = (DOCS / "index.rst").read_text()
    for page in ("getting_started", "devices", "metrics", "plugins", "caveats",
                 "performance", "enhancers", "batch", "cli", "api"):
        assert (DOCS / f"{page}.rst").is_file()
        assert re.search(rf"^\s+{page}$", index, re.M), f"{page} is not in the toctree"
    assert (DOCS / "_static" / "benchmarks" / "performance.rst").is_file()
    tutorials = sorted(p.name for p in (DOCS / "tutorials_src").glob("plot_*.py"))
    assert len(tutorials) >= 6, tutorials
