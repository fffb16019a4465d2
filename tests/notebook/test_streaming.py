"""Streaming without a kernel: tokens reported from another thread reach the view in
batches paced by time, and an interrupt cancels the work behind the magic."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from lmql_nb import Generation, TokenInfo
from lmql_nb.notebook import codec
from lmql_nb.notebook.magics.running import run_with_ticks
from lmql_nb.notebook.magics.streaming import TokenCollector, WidgetOutput

INTERVAL = 0.05


async def produce(collector: TokenCollector, count: int, delay: float) -> str:
    """Report `count` tokens, one every `delay` seconds, from a thread as the model does."""
    for i in range(count):
        await asyncio.to_thread(collector, 0, TokenInfo(i, f"t{i} ", -0.5))
        await asyncio.sleep(delay)
    return "done"


def test_updates_are_batched_by_time_not_sent_per_token(capsys):
    output = WidgetOutput(prompt="p")
    shown: list[int] = []
    output.view.observe(lambda change: shown.append(len(codec.unpack(change["new"])["text"])),
                        "data")
    collector = TokenCollector()
    start = time.monotonic()
    assert run_with_ticks(produce(collector, 200, 0.002), lambda: output.update(collector),
                          INTERVAL) == "done"
    elapsed = time.monotonic() - start
    assert 2 <= len(shown) <= elapsed / INTERVAL + 1  # at most one update per interval
    assert len(shown) < 200 // 4
    assert shown == sorted(shown) and shown[-1] <= 200
    _, sequences = collector.snapshot()
    output.finish([Generation("", tuple(sequences[0]), "length", "p")])
    assert codec.unpack(output.view.data)["text"] == [f"t{i} " for i in range(200)]
    assert output.view.status == "done"


def test_the_view_says_the_model_is_loading_then_counts_tokens_per_second():
    loaded = [False]
    output = WidgetOutput(prompt="p", loaded=lambda: loaded[0], model_identifier="local:m")
    assert (output.view.status, output.view.stage) == ("loading", "loading local:m")
    collector = TokenCollector()
    collector(0, TokenInfo(1, "a", -0.5))
    output.update(collector)
    assert output.view.status == "loading" and output.view.data == b""  # still loading
    loaded[0] = True
    time.sleep(0.05)
    output.update(collector)
    assert output.view.status == "generating"
    assert 0 < output.view.elapsed < 1  # counted from the end of loading
    output.finish([Generation("a", (TokenInfo(1, "a", -0.5),), "length", "p")])
    assert output.view.status == "done" and output.view.elapsed >= 0.0


@pytest.mark.parametrize("stops, shown", [
    (dict(stops_before=["\n"]), ["Hello", " world"]),
    (dict(stops_at=["\n"]), ["Hello", " world", "\n"]),
    (dict(stops_before=["ld\nN"]), ["Hello"]),  # " world" may be cut: held back
    (dict(stops_before=["ld!"]), ["Hello", " world", "\n", "Next"]),  # "ld" was not cut
    ({}, ["Hello", " world", "\n", "Next"]),
])
def test_streamed_tokens_are_never_taken_back(stops, shown):
    # tokens that a stop string may still cut are held back; what is shown only grows,
    # and is always the start of the final result
    from lmql_nb.constraints import parse_constraints
    from lmql_nb.constraints.stops import cut_stop

    spec = parse_constraints(stops)
    collector = TokenCollector(spec)
    tokens = [TokenInfo(i, text, -0.5) for i, text in enumerate(["Hello", " world", "\n", "Next"])]
    snapshots = []
    for token in tokens:
        collector(0, token)
        snapshots.append(collector.snapshot()[1][0])
    for before, after in zip(snapshots, snapshots[1:]):
        assert after[:len(before)] == before
    assert [t.text for t in snapshots[-1]] == shown
    final = cut_stop(tokens, spec) if spec is not None else tuple(tokens)
    assert "".join(t.text for t in final).startswith("".join(shown))
    assert [t.text for t in collector.partial("p", 1)[0].tokens] == shown


def test_interrupt_cancels_the_work_and_propagates():
    cancelled = threading.Event()

    async def endless() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    ticks = []

    def tick() -> None:
        ticks.append(1)
        if len(ticks) == 3:
            raise KeyboardInterrupt  # what the notebook's interrupt button does

    with pytest.raises(KeyboardInterrupt):
        run_with_ticks(endless(), tick, 0.01)
    assert cancelled.is_set()


def test_partial_keeps_every_sequence_in_order():
    collector = TokenCollector()
    collector(1, TokenInfo(1, "b", -1.0))
    collector(0, TokenInfo(2, "a", -1.0))
    collector(0, TokenInfo(3, "c", -1.0))
    partial = collector.partial("p", sequences=3)
    assert [g.text for g in partial] == ["ac", "b", ""]
    assert {g.finish_reason for g in partial} == {"cancelled"}


@pytest.mark.parametrize("format, kind", [("widget", "TextOutput"), ("text", "TextOutput"),
                                          ("json", "JsonOutput")])
def test_outside_a_kernel_a_widget_falls_back_to_text(format, kind):
    from lmql_nb.notebook.magics.streaming import make_output

    assert type(make_output(format, "p", "m", 1, "argmax")).__name__ == kind
