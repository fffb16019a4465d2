"""The dataset view's Python side: the data it sends, its display and its checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmql_nb
from lmql_nb import ScoringResult, ScoringTable
from lmql_nb.notebook import codec
from lmql_nb.notebook.views import DatasetView
from lmql_nb.notebook.views.dataset import COLUMNS

VALUES = [[" yes", " no"], [" no", " maybe"], [" yes", " no"]]
SCORES = [[-0.5, -1.5], [-2.0, -0.1], [-3.0, -0.2]]


def _table(finished: int = 3) -> ScoringTable:
    results = [ScoringResult(f"Q{i}", v, [[x] for x in v], [[1], [2]], [[s] for s in sc], "m")
               if i < finished else None
               for i, (v, sc) in enumerate(zip(VALUES, SCORES))]
    return ScoringTable([f"Q{i}" for i in range(3)], VALUES, "m", [" yes", " maybe", " yes"],
                        results)


def test_the_data_is_each_row_log_softmax_over_its_own_values():
    view = DatasetView(_table(finished=2))
    data = codec.unpack(view.data)
    assert set(data) == set(COLUMNS)
    assert data["value"] == [" yes", " no", " maybe"]
    grid = np.asarray(data["logprob"]).reshape(3, 3)
    for row, (values, scores) in enumerate(zip(VALUES[:2], SCORES[:2])):
        expected = np.array(scores) - math.log(sum(math.exp(s) for s in scores))
        for value, logprob in zip(values, expected):
            assert grid[row, data["value"].index(value)] == pytest.approx(logprob)
    assert math.isnan(grid[0, 2]) and np.isnan(grid[2]).all()  # no such value; unfinished
    assert list(data["argmax"]) == [0, 2, -1] and list(data["gold"]) == [0, 2, 0]
    assert view.accuracy() == 1.0  # of the two finished rows


def test_a_table_displays_as_the_view_with_its_static_rendering():
    table = _table()
    view = lmql_nb.show(table)
    assert isinstance(view, DatasetView)
    data, metadata = view.mimebundle()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "accuracy 66.7%" in data["text/html"] and "<script" not in data["text/html"]
    assert data["text/plain"] == repr(table)
    assert table._repr_mimebundle_() == {"text/plain": repr(table)}  # outside a kernel


def test_bad_options_are_named():
    with pytest.raises(TypeError, match="needs a ScoringTable"):
        DatasetView([1, 2])
    with pytest.raises(ValueError, match="accepted: sum, mean, normalized"):
        DatasetView(_table(), agg="max")
    with pytest.raises(Exception, match="sort must be"):
        DatasetView(_table(), sort="prob:up")
