"""The widgets' Python side: the data they send, their reprs and exports (no kernel).

Results are built by hand here, so the expected numbers are known independently of the
engine."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import traitlets

import lmql_nb
from lmql_nb import Alternative, Generation, ScoringResult, TokenInfo
from lmql_nb.notebook import codec
from lmql_nb.notebook.views import ScoringHeatmap, TokenView

XSS = "<img src=x onerror=alert(1)>"


@dataclasses.dataclass(frozen=True)
class BlockedAlternative(Alternative):
    """What constrained decoding will report: an alternative the constraint refused."""

    blocked: bool = True


def token(token_id, text, logprob, rank=None, entropy=None, top=()):
    return TokenInfo(token_id, text, logprob, rank, entropy, tuple(top))


GEN_A = Generation(" Paris.", (
    token(5, " Paris", -0.25, 1, 1.5, [Alternative(5, " Paris", -0.25),
                                       BlockedAlternative(9, " Lyon", -2.0)]),
    token(7, ".", -1.5, 2, 0.75, [Alternative(8, "\n", -0.5), Alternative(7, ".", -1.5)]),
), "length", "The capital of France is")
GEN_B = Generation(XSS, (token(3, XSS, -3.0),), "stop", "The capital of France is")

RESULT = ScoringResult("The capital of France is", [" Paris", " Berlin", XSS],
                       [[" Paris"], [" Ber", "lin"], ["<", "img", " src=x onerror=alert(1)>"]],
                       [[1], [2, 3], [4, 5, 6]],
                       [[-2.5], [-4.0, -1.0], [-9.0, -3.0, -6.0]], "test-model")


def test_token_view_sends_every_token_and_alternative():
    view = TokenView([GEN_A, GEN_B])
    d = codec.unpack(view.data)
    assert d["text"] == [" Paris", ".", XSS]
    assert d["seq_length"].tolist() == [2, 1]
    assert d["logprob"].tolist() == [-0.25, -1.5, -3.0]
    assert d["rank"].tolist() == [1, 2, 0]  # 0: unknown
    assert d["entropy"][:2].tolist() == [1.5, 0.75] and math.isnan(d["entropy"][2])
    assert d["alt_count"].tolist() == [2, 2, 0]
    assert d["alt_text"] == [" Paris", " Lyon", "\n", "."]
    assert d["alt_token_id"].tolist() == [5, 9, 8, 7]
    assert d["alt_logprob"].tolist() == [-0.25, -2.0, -0.5, -1.5]
    assert d["alt_blocked"].tolist() == [0, 1, 0, 0]
    assert view.prompt == "The capital of France is"
    assert view.finish_reasons == ["length", "stop"]
    assert repr(view) == "TokenView(2 sequences, 3 tokens, done)"


def test_token_view_data_is_binary_not_json_lists():
    view = TokenView(GEN_A)
    assert isinstance(view.data, bytes)
    state = view.get_state()
    assert isinstance(state["data"], (bytes, memoryview))


def test_token_view_grows_while_generating():
    view = TokenView(prompt="p", status="generating")
    assert view.data == b""
    view.set_tokens([GEN_A.tokens[:1]])
    assert codec.unpack(view.data)["text"] == [" Paris"]
    assert view.status == "generating"
    view.set_tokens([GEN_A.tokens], "interrupted", ["cancelled"])
    assert codec.unpack(view.data)["text"] == [" Paris", "."]
    assert (view.status, view.finish_reasons) == ("interrupted", ["cancelled"])


def test_token_view_color_by_accepts_only_known_metrics():
    view = TokenView(GEN_A, color_by="entropy")
    assert view.color_by == "entropy"
    with pytest.raises(traitlets.TraitError):
        view.color_by = "latency"


def test_token_view_to_pandas():
    frame = TokenView([GEN_A, GEN_B]).to_pandas()
    assert frame["sequence"].tolist() == [0, 0, 1]
    assert frame["token"].tolist() == [" Paris", ".", XSS]
    assert frame["prob"].tolist() == pytest.approx([math.exp(-0.25), math.exp(-1.5), math.exp(-3)])
    assert frame["top"][1] == [("\n", -0.5), (".", -1.5)]


def test_heatmap_sends_tokens_and_totals():
    view = ScoringHeatmap(RESULT)
    d = codec.unpack(view.data)
    assert d["value"] == [" Paris", " Berlin", XSS]
    assert d["token_count"].tolist() == [1, 2, 3]
    assert d["token"] == [" Paris", " Ber", "lin", "<", "img", " src=x onerror=alert(1)>"]
    assert d["token_logprob"].tolist() == [-2.5, -4.0, -1.0, -9.0, -3.0, -6.0]
    assert d["score_sum"].tolist() == [-2.5, -5.0, -18.0]
    assert d["score_mean"].tolist() == [-2.5, -2.5, -6.0]
    assert d["score_normalized"].tolist() == pytest.approx([-2.5, -5.0 / 2**0.7, -18.0 / 3**0.7])
    assert (view.prompt, view.model_identifier, view.agg) == (RESULT.prompt, "test-model", "sum")
    assert view.argmax() == " Paris"
    assert repr(view) == "ScoringHeatmap(3 values, agg='sum', argmax=' Paris')"


def test_heatmap_aggregation_switches_the_argmax():
    view = ScoringHeatmap(RESULT, agg="mean")
    # mean: Paris -2.5, Berlin -2.5 (tie: the first wins, as numpy and the view do)
    assert view.argmax() == " Paris"
    result = ScoringResult("p", ["a", "b"], [["a"], ["b", "c"]], [[1], [2, 3]],
                           [[-3.0], [-2.0, -2.0]], "m")
    view = ScoringHeatmap(result)
    assert view.argmax() == "a"       # sum: -3 > -4
    view.agg = "mean"
    assert view.argmax() == "b"       # mean: -2 > -3
    with pytest.raises(traitlets.TraitError):
        view.agg = "max"


def test_heatmap_alpha_and_sort():
    view = ScoringHeatmap(RESULT, alpha=0.5, sort="prob:desc")
    d = codec.unpack(view.data)
    assert d["score_normalized"].tolist() == pytest.approx([-2.5, -5.0 / 2**0.5, -18.0 / 3**0.5])
    frame = view.to_pandas()
    assert frame["normalized"].tolist() == pytest.approx(d["score_normalized"].tolist())
    view.agg = "mean"
    means = np.array([-2.5, -2.5, -6.0])
    expected = np.exp(means - means.max()) / np.exp(means - means.max()).sum()
    assert view.to_pandas()["prob"].tolist() == pytest.approx(expected.tolist())
    view.sort = "value:asc"
    for bad in ("prob", "prob:up", "latency:asc"):
        with pytest.raises(traitlets.TraitError, match="column one of"):
            view.sort = bad


def test_heatmap_handles_hundreds_of_values_as_compact_binary():
    rng = np.random.default_rng(0)
    values = [f" value {i}" for i in range(500)]
    scores = [rng.uniform(-10, 0, size=8) for _ in values]
    result = ScoringResult("p", values, [[f"t{j}" for j in range(8)] for _ in values],
                           [list(range(8)) for _ in values], scores, "m")
    view = ScoringHeatmap(result)
    assert len(view.data) < 500 * 8 * (8 + 8) + 500 * 64  # no JSON-sized blow-up
    assert codec.unpack(view.data)["token_logprob"].tolist() == np.concatenate(scores).tolist()


def test_show_picks_the_widget_and_refuses_plain_text():
    assert isinstance(lmql_nb.show(RESULT), ScoringHeatmap)
    assert isinstance(lmql_nb.show(GEN_A), TokenView)
    assert isinstance(lmql_nb.show([GEN_A, GEN_B]), TokenView)
    with pytest.raises(TypeError, match="return_details=True"):
        lmql_nb.show(" Paris.")
    with pytest.raises(TypeError, match="ScoringResult"):
        lmql_nb.show(42)


def test_scoring_result_keeps_its_text_form_outside_a_kernel():
    assert RESULT._repr_mimebundle_() == {"text/plain": repr(RESULT)}
    assert repr(RESULT).splitlines()[0] == "lmql_nb.ScoringResult(model='test-model')"


def _embedded_state(page: str) -> dict:
    match = re.search(r'<script type="application/vnd.lmql-nb.state\+json">(.*?)</script>',
                      page, re.S)
    return json.loads(match.group(1))


@pytest.mark.parametrize("widget", [ScoringHeatmap(RESULT), TokenView([GEN_A, GEN_B])])
def test_to_html_embeds_untrusted_text_inertly(widget):
    widget.prompt = "</script><script>alert(1)</script>"
    page = widget.to_html(title="<b>t</b>")
    # exactly our three script elements: the state, the view's module and the renderer
    assert page.count("<script") == 3 and page.lower().count("</script") == 3
    assert XSS not in page and "<b>t</b>" not in page
    state = _embedded_state(page)
    assert state["state"]["prompt"] == "</script><script>alert(1)</script>"
    assert base64.b64decode(state["data"]) == widget.data
    data = codec.unpack(widget.data)
    assert XSS in (data.get("value") or data.get("text"))


def test_import_lmql_nb_stays_light():
    code = ("import sys, lmql_nb; heavy = [m for m in ('torch', 'transformers', 'anywidget', "
            "'IPython', 'ipywidgets', 'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_show_draws_a_result_type_that_a_view_registered_without_editing_show():
    from lmql_nb.notebook.views import registry

    class Thing:
        pass

    class ThingView:
        def __init__(self, result, **options):
            self.result, self.options = result, options

    registry.shows(Thing, many=True)(ThingView)
    try:
        one = lmql_nb.show(Thing(), colour="red")
        assert isinstance(one, ThingView) and one.options == {"colour": "red"}
        assert isinstance(lmql_nb.show([Thing(), Thing()]), ThingView)
        with pytest.raises(TypeError, match="Thing \\(or a list of them\\)"):
            lmql_nb.show([Thing(), 3])  # a list of different results has no one view
        with pytest.raises(ValueError, match="drawn by"):
            registry.shows(Thing)(TokenView)  # one view per result type
    finally:
        registry._VIEWS_OF.pop(Thing)
