"""LMQL query programs on lmql_nb: parser, runtime, decoders, trace data."""

from .result import LMQLResult
from .trace import (DistributionSegment, Event, EventCallback, HoleSegment, NestedSegment,
                    StepSegment, TextSegment, Trace)

__all__ = ["LMQLResult", "Trace", "TextSegment", "HoleSegment", "DistributionSegment",
           "NestedSegment", "StepSegment",
           "Event", "EventCallback"]
