"""The result cache: memory, disk across processes, corruption, concurrent writers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

import lmql_nb
from lmql_nb.generations import result_cache


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A cache folder of this test's own, and an empty memory cache."""
    monkeypatch.setenv("LMQL_NB_CACHE_DIR", str(tmp_path))
    result_cache.results.memory.clear()
    result_cache.results.disk_cache.close()
    yield tmp_path / "results" / "results.sqlite"
    result_cache.results.disk_cache.close()
    result_cache.results.memory.clear()


def _in_new_process(cache_dir, code: str) -> dict:
    """Run `code` in a fresh interpreter with the given cache folder; it prints JSON."""
    env = {**os.environ, "LMQL_NB_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_new_process_gets_the_result_from_disk_without_loading_the_model(
        tiny_gpt2_path, fresh_cache):
    model_id = f"local:{tiny_gpt2_path}"
    text = lmql_nb.model(model_id).generate_sync("Remember me", max_tokens=6)
    scores = lmql_nb.model(model_id).score_sync("Remember", [" me", " you"]).scores().tolist()
    code = f"""
import json, sys, time, lmql_nb
m = lmql_nb.model({model_id!r})
started = time.perf_counter()
text = m.generate_sync("Remember me", max_tokens=6)
elapsed = time.perf_counter() - started
scores = m.score_sync("Remember", [" me", " you"]).scores().tolist()
print(json.dumps(dict(text=text, scores=scores, elapsed=elapsed,
                      torch="torch" in sys.modules)))
"""
    found = _in_new_process(fresh_cache.parent.parent, code)
    assert found["text"] == text
    assert found["scores"] == scores
    assert found["torch"] is False  # answered from disk: the model never loaded


def test_a_weights_change_is_a_different_model(tiny_gpt2_path, fresh_cache, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_gpt2_path, folder)
    llm = lmql_nb.model(f"local:{folder}")
    before = llm.backend.identity()
    weights = next(folder.glob("*.safetensors"))
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert llm.backend.identity() != before


def test_a_corrupt_cache_file_is_moved_aside_and_rebuilt(tiny_gpt2_path, fresh_cache):
    fresh_cache.parent.mkdir(parents=True)
    fresh_cache.write_bytes(b"this is not a database" * 100)
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        text = llm.generate_sync("Corrupt", max_tokens=4)
    assert text == llm.generate_sync("Corrupt", max_tokens=4, cache=False)
    assert list(fresh_cache.parent.glob("results.sqlite.broken-*"))
    with sqlite3.connect(fresh_cache) as connection:
        assert connection.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1


def test_a_foreign_database_is_not_used(tiny_gpt2_path, fresh_cache):
    fresh_cache.parent.mkdir(parents=True)
    with sqlite3.connect(fresh_cache) as connection:
        connection.execute("CREATE TABLE results (key TEXT, value TEXT, created REAL)")
        connection.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO meta VALUES ('schema', 'someone-else')")
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.warns(RuntimeWarning, match="not an lmql_nb result cache"):
        llm.generate_sync("Foreign", max_tokens=3)


def test_processes_opening_a_new_cache_at_once_lose_nothing(fresh_cache):
    # The writers wait on a start file so they create the database at the same moment:
    # switching a new file to WAL then returns "database is locked" to all but one, which
    # must be waited out, not mistaken for corruption.
    code = """
import sys, time
from pathlib import Path
from lmql_nb.generations import result_cache
while not Path(sys.argv[2]).exists():
    pass  # spin: a sleep would stagger the writers and hide the race
for i in range(150):
    result_cache.results.put(f"{sys.argv[1]}-{i}", [i], lambda v: v)
"""
    start = fresh_cache.parent.parent / "start"
    env = {**os.environ, "LMQL_NB_CACHE_DIR": str(fresh_cache.parent.parent)}
    writers = [subprocess.Popen([sys.executable, "-W", "error", "-c", code, name, str(start)],
                                env=env) for name in "abcd"]
    time.sleep(1.0)  # let every interpreter start and reach the wait
    start.touch()
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0, 0]
    with sqlite3.connect(fresh_cache) as connection:
        assert connection.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 600
    assert not list(fresh_cache.parent.glob("*.broken-*"))


def test_a_locked_database_is_waited_for_not_moved_aside(fresh_cache, monkeypatch, caplog):
    fresh_cache.parent.mkdir(parents=True)
    result_cache.DiskCache(lambda: fresh_cache).put("kept", [1])
    monkeypatch.setattr(result_cache, "OPEN_TIMEOUT", 0.3)
    holder = sqlite3.connect(fresh_cache, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cache = result_cache.ResultCache(result_cache.MemoryCache(),
                                         result_cache.DiskCache(lambda: fresh_cache))
        cache.put("new", [2], lambda v: v)  # gives up after the timeout, with a log line
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "result cache write failed: database is locked" in caplog.text
    assert not list(fresh_cache.parent.glob("*.broken-*"))
    assert result_cache.DiskCache(lambda: fresh_cache).get("kept") == [1]


def test_switches_and_clear(tiny_gpt2_path, fresh_cache, monkeypatch):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    calls = []
    original = llm.backend.generate

    async def counting(*args, **kwargs):
        calls.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(llm.backend, "generate", counting)
    llm.generate_sync("Switch", max_tokens=3)
    llm.generate_sync("Switch", max_tokens=3)
    assert len(calls) == 1
    lmql_nb.clear_cache()
    llm.generate_sync("Switch", max_tokens=3)
    assert len(calls) == 2
    lmql_nb.set_cache(False)
    try:
        llm.generate_sync("Switch", max_tokens=3)
        assert len(calls) == 3
    finally:
        lmql_nb.set_cache(True)
    with pytest.raises(TypeError, match="enabled=True"):
        lmql_nb.set_cache("off")



def test_watch_hits_tells_when_a_remembered_result_was_computed(tiny_gpt2_path, fresh_cache):
    """A view says "from the result cache (computed N ago)": the time comes from the
    entry, in memory and on disk, and a computed result reports nothing."""
    import asyncio

    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    heard: list[float] = []

    async def generate() -> str:
        with result_cache.watch_hits(heard.append):
            return await llm.generate("Watch the cache", max_tokens=4)

    before = time.time()
    first = asyncio.run(generate())
    after = time.time()
    assert heard == []  # computed now
    time.sleep(0.05)
    assert asyncio.run(generate()) == first
    [created] = heard
    assert before <= created <= after  # when the first call computed it
    result_cache.results.memory.clear()  # from disk now: the stored time
    assert asyncio.run(generate()) == first
    assert heard[1] == pytest.approx(created, abs=1e-3)
    assert llm.generate_sync("Watch the cache", max_tokens=4) == first and len(heard) == 2
