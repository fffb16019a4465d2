"""The trace view's Python side and its streaming collector (no kernel).

Traces are built by hand here, so what the view must send is known independently of the
query runtime."""

from __future__ import annotations

import base64
import json
import re
import threading

import pytest

import lmql_nb
from lmql_nb import Alternative, TokenInfo
from lmql_nb.notebook import codec
from lmql_nb.notebook.magics.trace_streaming import TraceCollector
from lmql_nb.notebook.texts import trace_text
from lmql_nb.notebook.views import TraceView
from lmql_nb.query import (DistributionSegment, HoleSegment, LMQLResult, TextSegment, Trace)
from lmql_nb.query import trace as tr

XSS = "<script>alert(1)</script>"


def token(token_id, text, logprob, top=()):
    return TokenInfo(token_id, text, logprob, 1, 0.5, tuple(top))


ANSWER = HoleSegment("ANSWER", " Paris.", (
    token(5, " Paris", -0.25, [Alternative(5, " Paris", -0.25), Alternative(9, " Lyon", -2.0)]),
    token(7, ".", -1.5),
), value=" Paris.")
MOOD = DistributionSegment("MOOD", ("happy", "sad", XSS), (0.7, 0.2, 0.1), "happy")
TRACE = Trace([TextSegment("Q: capital of France?\nA:"), ANSWER, TextSegment("\nMood: "), MOOD])
RESULT = LMQLResult(TRACE.prompt, {"ANSWER": " Paris.", "MOOD": "happy",
                                   "P(MOOD)": list(zip(MOOD.values, MOOD.probs))},
                    trace=TRACE)


def test_trace_view_sends_segments_tokens_and_distributions():
    other = Trace([TextSegment("x"), HoleSegment("N", XSS, (token(3, XSS, -3.0),))])
    view = TraceView([RESULT, LMQLResult(other.prompt, {"N": XSS}, trace=other)])
    d = codec.unpack(view.data)
    assert d["row_segments"].tolist() == [4, 2]
    assert d["row_score"].tolist() == [-1.75, -3.0]
    assert d["row_dropped"].tolist() == [0, 0]
    assert d["seg_kind"].tolist() == [0, 1, 0, 2, 0, 1]
    assert d["seg_name"] == ["", "ANSWER", "", "MOOD", "", "N"]
    assert d["seg_text"] == ["Q: capital of France?\nA:", " Paris.", "\nMood: ", "happy", "x", XSS]
    assert d["seg_tokens"].tolist() == [0, 2, 0, 0, 0, 1]
    assert d["seg_values"].tolist() == [0, 0, 0, 3, 0, 0]
    # the token view's columns, so hovering works the same
    assert d["text"] == [" Paris", ".", XSS]
    assert d["logprob"].tolist() == [-0.25, -1.5, -3.0]
    assert d["alt_count"].tolist() == [2, 0, 0]
    assert d["alt_text"] == [" Paris", " Lyon"]
    assert d["dist_value"] == ["happy", "sad", XSS]
    assert d["dist_prob"].tolist() == [0.7, 0.2, 0.1]
    assert repr(view) == "TraceView(2 rows, 1–2 holes filled per row, done)"  # one count, per row


def test_show_and_to_html_of_a_result():
    view = lmql_nb.show(RESULT)
    assert isinstance(view, TraceView) and view.traces == [TRACE]
    assert isinstance(lmql_nb.show([RESULT, RESULT]), TraceView)
    page = view.to_html(title="trace")
    [state] = re.findall(r'<script type="application/vnd.lmql-nb.state\+json">(.*?)</script>',
                         page, re.S)
    payload = json.loads(state)
    assert payload["view"] == "trace_view"
    assert codec.unpack(base64.b64decode(payload["data"]))["dist_value"][2] == XSS
    assert XSS not in page  # model text only inside escaped JSON
    with pytest.raises(TypeError, match="LMQLResult"):
        lmql_nb.show(object())
    with pytest.raises(TypeError, match="LMQLResults or Traces"):
        TraceView([RESULT, "text"])


def test_result_shows_its_repr_as_text_outside_a_kernel():
    assert RESULT._repr_mimebundle_() == {"text/plain": repr(RESULT)}


def test_collector_follows_the_runtime_events():
    collector = TraceCollector()
    collector(0, tr.SequenceStarted(Trace()))
    collector(0, tr.TextAppended("Q: capital of France?\nA:"))
    collector(0, tr.HoleStarted("ANSWER"))
    collector(0, tr.TokenAppended("ANSWER", ANSWER.tokens[0]))
    _, [partial] = collector.snapshot()
    assert partial.segments[-1] == HoleSegment("ANSWER", " Paris", ANSWER.tokens[:1])
    collector(0, tr.TokenAppended("ANSWER", ANSWER.tokens[1]))
    collector(0, tr.HoleFinished(ANSWER))
    collector(0, tr.TextAppended("\nMood: "))
    collector(0, tr.DistributionScored(MOOD))
    version, [trace] = collector.snapshot()
    assert trace.segments == TRACE.segments
    # a beam forks: row 1 starts from a copy of row 0's segments, row 0 is dropped
    collector(1, tr.SequenceStarted(Trace(TRACE.segments[:2]), parent=0))
    collector(0, tr.SequenceDropped())
    later, traces = collector.snapshot()
    assert later > version
    assert [t.dropped for t in traces] == [True, False]
    assert traces[1].segments == TRACE.segments[:2]
    collector(0, tr.SequenceFinished(TRACE))
    _, traces = collector.snapshot()
    assert traces[0] == TRACE and not traces[0].dropped
    assert trace_text(traces) == f"[1] {TRACE.prompt}\n[2] {traces[1].prompt}"


def test_collector_snapshots_are_consistent_across_threads():
    collector = TraceCollector()
    collector(0, tr.HoleStarted("X"))

    def feed():
        for i in range(2000):
            collector(0, tr.TokenAppended("X", token(i, "a", -0.1)))

    thread = threading.Thread(target=feed)
    thread.start()
    while thread.is_alive():
        _, [trace] = collector.snapshot()
        hole = trace.segments[-1]
        assert hole.text == "a" * len(hole.tokens)
    thread.join()
    _, [trace] = collector.snapshot()
    assert len(trace.segments[-1].tokens) == 2000


def test_a_query_result_names_its_model_in_its_repr_and_its_view(tiny_gpt2_path):
    import lmql_nb

    model = lmql_nb.model(f"local:{tiny_gpt2_path}")
    result = lmql_nb.run_sync('"Say[X]" where len(TOKENS(X)) < 3', model=model)
    assert result.model == model.model_identifier
    assert f"model={model.model_identifier!r}" in repr(result)
    view = TraceView(result)  # as show(result) builds it, no model given
    assert view.model_identifier == model.model_identifier
    assert repr(view) == f"TraceView({model.model_identifier}, 1 row, 1 hole filled, done)"
    assert f"{model.model_identifier} · 1 hole filled" in view.static_html()
