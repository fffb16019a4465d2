"""Results as JSON-ready data and back (for the result cache, which stores JSON)."""

from __future__ import annotations

import dataclasses

from .results import Generation, TokenInfo, ValueScores


def generations_to_data(generations: list[Generation]) -> list[dict]:
    return [dataclasses.asdict(g) for g in generations]


def generations_from_data(data: list[dict]) -> list[Generation]:
    return [Generation(**{**g, "tokens": tuple(TokenInfo.from_data(t) for t in g["tokens"]),
                          "prefix_ids": tuple(g.get("prefix_ids", ())),
                          "messages": tuple(g.get("messages", ())),
                          "end_token": TokenInfo.from_data(g["end_token"])
                          if g.get("end_token") else None})
            for g in data]


def scores_to_data(scores: list[ValueScores]) -> list[dict]:
    return [dataclasses.asdict(s) for s in scores]


def scores_from_data(data: list[dict]) -> list[ValueScores]:
    return [ValueScores(**item) for item in data]
