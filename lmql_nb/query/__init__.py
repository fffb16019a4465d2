"""LMQL query programs on lmql_nb: parser, runtime, decoders, trace data."""

from .result import LMQLResult
from .trace import DistributionSegment, Event, EventCallback, HoleSegment, TextSegment, Trace

__all__ = ["LMQLResult", "Trace", "TextSegment", "HoleSegment", "DistributionSegment",
           "Event", "EventCallback"]
