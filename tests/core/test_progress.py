"""`progress.stage`: a slow step is announced, says it is still running with the seconds
so far (no silent stretch longer than the heartbeat), and says how long it took; nested
stages speak one at a time (the innermost)."""

from __future__ import annotations

import re
import time

import pytest

from lmql_nb.core.progress import stage


def test_a_stage_ticks_while_it_runs_and_says_when_it_is_done(capsys):
    with stage("reading the tokenizer", heartbeat=0.1):
        time.sleep(0.55)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "lmql_nb: reading the tokenizer..."
    ticks = [line for line in lines if re.fullmatch(r"lmql_nb: reading the tokenizer\.\.\. \d+ s",
                                                    line)]
    assert len(ticks) >= 3, lines  # every 0.1 s over 0.55 s, on a busy machine too
    assert re.fullmatch(r"lmql_nb: reading the tokenizer: done in 0\.\d s", lines[-1]), lines


def test_only_the_innermost_stage_ticks(capsys):
    with stage("converting", heartbeat=0.1):
        with stage("de-quantising", heartbeat=0.1):
            time.sleep(0.35)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("lmql_nb: de-quantising... ") for line in lines)
    assert not any(re.fullmatch(r"lmql_nb: converting\.\.\. \d+ s", line) for line in lines)
    assert lines[-1].startswith("lmql_nb: converting: done in")


def test_a_failing_stage_stops_ticking_and_claims_nothing(capsys):
    with pytest.raises(RuntimeError):
        with stage("saving", heartbeat=0.05):
            raise RuntimeError("disk full")
    time.sleep(0.2)
    err = capsys.readouterr().err
    assert "done in" not in err and err.count("lmql_nb: saving") == 1
