"""Where a running generation's tokens go: collected from the model's thread, shown
from the cell's thread (as a widget, as text, or as JSON at the end)."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ...core.results import Generation, TokenInfo
from ..texts import plain_text

if TYPE_CHECKING:
    from ...constraints import ConstraintSpec


class TokenCollector:
    """An `on_token` callback: keeps the tokens each sequence has so far.

    It is called from the model's thread; `snapshot` reads from any other thread. With a
    `constraint` that has stop strings, snapshots hold back the tokens a stop string may
    still cut (see `decided_tokens`), so what is shown never has to be taken back.
    """

    def __init__(self, constraint: Optional["ConstraintSpec"] = None) -> None:
        self._stops = constraint if constraint is not None and constraint.stops else None
        self._lock = threading.Lock()
        self._sequences: list[list[TokenInfo]] = []
        self._version = 0

    def __call__(self, index: int, token: TokenInfo) -> None:
        with self._lock:
            while len(self._sequences) <= index:
                self._sequences.append([])
            self._sequences[index].append(token)
            self._version += 1

    def snapshot(self) -> tuple[int, list[list[TokenInfo]]]:
        """A change counter and a copy of the tokens that may be shown so far."""
        with self._lock:
            version, sequences = self._version, [list(s) for s in self._sequences]
        if self._stops is not None:
            from ...constraints.stops import decided_tokens

            sequences = [decided_tokens(tokens, self._stops) for tokens in sequences]
        return version, sequences

    def partial(self, prompt: str, sequences: int) -> list[Generation]:
        """What was generated so far, as cancelled `Generation`s (one per sequence)."""
        _, collected = self.snapshot()
        collected += [[] for _ in range(sequences - len(collected))]
        return [Generation("".join(t.text for t in tokens), tuple(tokens), "cancelled", prompt)
                for tokens in collected]


class WidgetOutput:
    """Shows a `TokenView` that says when the model is loading and grows while
    generating (with tokens per second); at the end the display is updated once more, so
    its static rendering and text/plain hold the completion (what nbconvert, nbval and
    text front ends see)."""

    def __init__(self, prompt: str, color_by: str = "prob",
                 loaded: Callable[[], bool] = lambda: True, model_identifier: str = "",
                 model: Any = None, branch_options: Optional[dict] = None) -> None:
        from IPython.display import display

        from ..views import TokenView

        self._loaded = loaded
        loading = not loaded()
        self.view = TokenView(prompt=prompt, status="loading" if loading else "generating",
                              color_by=color_by,
                              stage=f"loading {model_identifier or 'the model'}" if loading else "",
                              model=model, branch_options=branch_options)
        self._started: Optional[float] = None if loading else time.monotonic()
        data, metadata = self.view.mimebundle("(generating)")
        self._handle = display(data, metadata=metadata, raw=True, display_id=True)
        if self._handle is not None:  # branches update this display too
            self.view.display_handles.append(self._handle)
        self._version = 0

    def _elapsed(self) -> Optional[float]:
        return None if self._started is None else time.monotonic() - self._started

    def update(self, collector: TokenCollector) -> None:
        if self._started is None:
            if not self._loaded():
                return
            self._started = time.monotonic()
            self.view.status = "generating"
        version, sequences = collector.snapshot()
        if version != self._version:
            self._version = version
            self.view.set_tokens(sequences, elapsed=self._elapsed())

    def finish(self, generations: Sequence[Generation], interrupted: bool = False,
               cached_at: Optional[float] = None) -> None:
        """Show the finished `generations`; `cached_at`: when the result cache computed
        them (time.time()), if they came from it."""
        self.view.set_generations(generations, "interrupted" if interrupted else "done",
                                  elapsed=self._elapsed(), cached_at=cached_at)
        if self._handle is not None:
            data, metadata = self.view.mimebundle(plain_text(generations))
            self._handle.update(data, metadata=metadata, raw=True)


class TextOutput:
    """Prints the completion as it arrives (for one sequence), or all of them at the end."""

    def __init__(self, stream_sequences: bool) -> None:
        self._streaming = stream_sequences
        self._printed = 0

    def update(self, collector: TokenCollector) -> None:
        if not self._streaming:
            return
        _, sequences = collector.snapshot()
        tokens = sequences[0][self._printed:] if sequences else []
        if tokens:
            # count first: an interrupt during the write must not print these twice
            self._printed += len(tokens)
            sys.stdout.write("".join(t.text for t in tokens))
            sys.stdout.flush()

    def finish(self, generations: Sequence[Generation], interrupted: bool = False,
               cached_at: Optional[float] = None) -> None:
        if self._streaming:
            rest = generations[0].tokens[self._printed:]
            sys.stdout.write("".join(t.text for t in rest) + "\n")
        else:
            sys.stdout.write(plain_text(generations) + "\n")
        sys.stdout.flush()


class JsonOutput:
    """Prints the generations with their per-token data as JSON when they are done."""

    def __init__(self, model_identifier: str) -> None:
        self.model_identifier = model_identifier

    def update(self, collector: TokenCollector) -> None:
        pass

    def finish(self, generations: Sequence[Generation], interrupted: bool = False,
               cached_at: Optional[float] = None) -> None:
        payload = {"model": self.model_identifier,
                   "generations": [dataclasses.asdict(g) for g in generations]}
        print(json.dumps(payload, indent=1, ensure_ascii=False))


def make_output(format: str, prompt: str, model_identifier: str, n: int,
                decoder: Optional[str], loaded: Callable[[], bool] = lambda: True,
                model: Any = None, branch_options: Optional[dict] = None) -> Any:
    """The output for `--format` `format` (text where widgets cannot be shown);
    `loaded()` tells whether the model is loaded yet (the widget says so until it is); a
    widget given the `model` (an `LLM`) offers branching with `branch_options`."""
    from ..kernel import in_kernel

    if format == "json":
        return JsonOutput(model_identifier)
    if format == "widget" and in_kernel():
        return WidgetOutput(prompt, loaded=loaded, model_identifier=model_identifier,
                            model=model, branch_options=branch_options)
    return TextOutput(stream_sequences=(n == 1 and decoder not in ("beam", "beam_sample")))
