"""The views' shared seams: one registry of view names, data columns declared once (in
Python) and read as declared by the JS, one colour scale computed alike in Python and
JavaScript, displays that carry a static rendering, saved notebooks that keep it, and a
toy view that plugs in without editing anything else."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest
from toy.views import TOY, bundle, make_toy_view

from lmql_nb import Alternative, Generation, TokenInfo
from lmql_nb.notebook import saving
from lmql_nb.notebook.views import ScoringHeatmap, TokenView
from lmql_nb.notebook.views.base import STATIC, VIEWS, LmqlWidget
from lmql_nb.notebook.views.colours import logprob_colour, scale, table

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"
XSS = "<img src=x onerror=alert(1)>"
READ = re.compile(r"\b(?:d|columns)\.([a-z_][a-z0-9_]*)")


def _builtin_views() -> dict[str, type[LmqlWidget]]:
    return {name: cls for name, cls in VIEWS.items() if cls.__module__.startswith("lmql_nb.")}


def test_view_names_live_in_one_place():
    """A view is named only by its Python class; its source and bundle follow the name."""
    sources = {p.stem for p in (JS / "src" / "views").glob("*.js")}
    assert set(_builtin_views()) == sources >= {"token_view", "heatmap", "trace_view"}
    for name, cls in _builtin_views().items():
        assert str(cls._esm) == (STATIC / f"{name}.js").read_text()
    standalone = (JS / "src" / "standalone.js").read_text()
    assert not any(name in standalone for name in sources)  # no table of views there
    assert not any(name in (JS / "build.mjs").read_text() for name in sources)


def _reads(path: Path) -> set[str]:
    """The columns a JS module reads, with those of the shared modules it imports."""
    source = path.read_text()
    reads = set(READ.findall(source))
    for module in re.findall(r'from "\.\./(tokens)\.js"', source):
        reads |= _reads(JS / "src" / f"{module}.js")
    return reads


@pytest.mark.parametrize("name", sorted(p.stem for p in (JS / "src" / "views").glob("*.js")))
def test_js_views_read_exactly_the_declared_columns(name):
    """Python declares a view's columns once; the JS reads all of them and no other."""
    assert _reads(JS / "src" / "views" / f"{name}.js") == set(VIEWS[name].columns)


def test_a_view_sends_only_declared_columns():
    class Sloppy(TokenView):
        columns: ClassVar[dict[str, str]] = {"text": "str"}
    with pytest.raises(ValueError, match=r"undeclared \['allowed_count'"):
        Sloppy(Generation("a", (TokenInfo(1, "a", -1.0),), "stop"))


def test_the_colour_scale_is_the_same_in_python_and_javascript(tmp_path):
    entry = tmp_path / "entry.js"
    entry.write_text(f'import {{ TABLE, binOf }} from "{JS / "src" / "colours.js"}";\n'
                     'const values = [-Infinity, -20, -8, -7.9, -4.6, -2.3, -0.25, -1e-9, 0, 3];\n'
                     'console.log(JSON.stringify({table: TABLE, bins: values.map((v) => binOf(v))}));\n')
    out = bundle(entry, tmp_path / "colours.mjs")
    result = json.loads(subprocess.run(["node", str(out)], capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    assert [tuple(row) for row in result["table"]] == list(table())
    values = [-math.inf, -20, -8, -7.9, -4.6, -2.3, -0.25, -1e-9, 0, 3]
    assert [table().index(logprob_colour(v)) for v in values] == result["bins"]


def test_the_colour_scale_is_sequential_in_lightness_and_legible():
    def lightness(hex_colour):
        r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    backgrounds = [bg for bg, _ in table()]
    assert all(lightness(a) < lightness(b) for a, b in itertools.pairwise(backgrounds))
    assert backgrounds[0] == scale()["stops"][0] and backgrounds[-1] == scale()["stops"][-1]
    # white text on the dark end, dark text on the light end
    assert table()[0][1] == "#ffffff" and table()[-1][1] == "#111111"
    assert logprob_colour(math.nan) is None


GEN = Generation(" yes\nno", (
    TokenInfo(5, " yes", math.log(0.25), 2, 1.2, (Alternative(6, " no", math.log(0.5)),
                                                 Alternative(5, " yes", math.log(0.25)))),
    TokenInfo(7, "\n", -9.0), TokenInfo(8, XSS, -0.1)), "stop", "Answer:")


def test_displays_carry_a_static_rendering_and_the_text():
    data, metadata = TokenView(GEN).mimebundle()
    assert data["text/plain"] == " yes\n" + XSS  # the generated text, not a summary
    assert "application/vnd.jupyter.widget-view+json" in data
    assert metadata[saving.METADATA_KEY] == {"view": "token_view"}
    page = data["text/html"]
    assert "<script" not in page and XSS not in page and "&lt;img src=x" in page
    background, text = logprob_colour(math.log(0.25))
    assert f'background-color: {background}; color: {text}' in page
    assert "p 25.0% · logprob −1.3863 · rank 2" in page  # the widget's number format
    assert " yes" in page and "\n" in page  # natural text: real spaces and line breaks


def test_heatmap_static_rendering_has_the_numbers():
    from lmql_nb import ScoringResult
    result = ScoringResult("Q", [" a", " bb"], [[" a"], [" b", "b"]], [[1], [2, 3]],
                           [[-1.0], [-0.5, -0.25]], "model-x")
    data, _ = ScoringHeatmap(result, agg="mean").mimebundle()
    page = data["text/html"]
    assert "−0.7500" in page and "−0.3750" in page and "P(value) by mean" in page
    assert "model-x" in page and "<script" not in page
    assert data["text/plain"] == repr(result)


def test_saving_keeps_the_static_rendering_where_no_widget_state_is_saved():
    live, _ = TokenView(GEN).mimebundle()
    saved, _ = TokenView(GEN).mimebundle()
    other = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "s"}
    notebook = {"metadata": {"widgets": {saving.WIDGET_STATE: {"state": {
        saved["application/vnd.jupyter.widget-view+json"]["model_id"]: {}}}}},
        "cells": [{"cell_type": "code", "outputs": [
            {"output_type": "display_data", "data": dict(live), "metadata": {"lmql_nb": {}}},
            {"output_type": "display_data", "data": dict(saved), "metadata": {"lmql_nb": {}}},
            {"output_type": "display_data", "data": dict(other), "metadata": {}}]},
            {"cell_type": "markdown", "source": "x"}]}
    assert saving.static_outputs(notebook) == 1
    outputs = notebook["cells"][0]["outputs"]
    assert set(outputs[0]["data"]) == {"text/html", "text/plain"}
    assert outputs[1]["data"] == saved  # its state is saved: it stays live
    assert outputs[2]["data"] == other  # not ours
    model = {"type": "notebook", "content": {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": dict(live), "metadata": {"lmql_nb": {}}}]}]}}
    saving.pre_save_hook(model=model, path="x.ipynb", contents_manager=None)
    assert set(model["content"]["cells"][0]["outputs"][0]["data"]) == {"text/html", "text/plain"}


def test_the_server_extension_is_enabled_by_the_installed_config():
    config = json.loads((ROOT / "jupyter-config" / "jupyter_server_config.d" /
                         "lmql_nb.json").read_text())
    assert config["ServerApp"]["jpserver_extensions"]["lmql_nb.notebook.saving"] is True
    assert saving._jupyter_server_extension_points() == [{"module": "lmql_nb.notebook.saving"}]


def test_a_toy_view_plugs_in_without_editing_anything(tmp_path):
    ToyView = make_toy_view(tmp_path)
    assert VIEWS["toy_view"] is ToyView
    toy = ToyView({"alpha": -0.5, XSS: -6.0})
    data, metadata = toy.mimebundle()
    assert metadata["lmql_nb"] == {"view": "toy_view"} and "&lt;img" in data["text/html"]
    page = toy.to_html()
    assert "lmnb-toy" in page and "toy_view" in page
    source = (TOY / "toy_view.js").read_text()
    assert set(READ.findall(source)) == set(ToyView.columns)
