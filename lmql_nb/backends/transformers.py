"""The in-process backend: a transformers model on this machine (CPU or GPU via torch).

The model lives on one worker thread, which batches concurrent calls into shared
forward passes (see `lmql_nb.engine`). Sources: a `save_pretrained` folder, a `.gguf`
file (converted once into the user cache), a hub id already in the user's own hub cache
(nothing is downloaded), or the embedded Gemma 3 270M.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional

from .. import aio
from ..options import GenerateOptions, ScoreOptions
from ..results import Generation
from ..tokenizer import HFTokenizer, common_prefix_length, split_continuation, token_pieces
from .base import Backend, TokenCallback, ValueScores

DTYPES = ("float32", "bfloat16", "float16", "auto")


class TransformersBackend(Backend):
    """A transformers causal LM served from a worker thread.

    Options:
        dtype: "float32" (default: reproduces transformers' reference numbers),
            "bfloat16" (about twice as fast on CPUs with bf16 support), "float16", "auto".
        threads: torch's intra-op thread count (process-wide). None (the default) leaves
            one core free for the kernel and everything else: on a 2-core machine one
            thread gave 2-3x faster decode steps than two while anything else ran.
        batch_window: seconds the worker waits after a request for others to batch with.
        device: a torch device string ("cpu", "cuda", ...); default "cpu".
    """

    kind = "transformers"
    options = ("dtype", "threads", "batch_window", "device")

    def __init__(self, model_id: str, locate: Callable[[], str], dtype: str = "float32",
                 threads: Optional[int] = None, batch_window: float = 0.005,
                 device: str = "cpu"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"threads must be a positive int or None; got {threads!r}")
        if not isinstance(batch_window, (int, float)) or not 0 <= batch_window <= 1:
            raise ValueError(f"batch_window must be a number of seconds in [0, 1]; "
                             f"got {batch_window!r}")
        self.model_id = model_id
        self._locate = locate
        self._location: Optional[str] = None
        self.dtype = dtype
        self.threads = threads
        self.batch_window = float(batch_window)
        self.device = device
        self._lock = threading.RLock()
        self._tokenizer: Optional[HFTokenizer] = None
        self._model: Any = None
        self._worker: Any = None

    def __repr__(self) -> str:
        return f"TransformersBackend({self.model_id!r}, dtype={self.dtype!r})"

    def location(self) -> str:
        """The folder (or hub id) the model loads from, converting a GGUF first if needed."""
        with self._lock:
            if self._location is None:
                self._location = self._locate()
            return self._location

    def get_tokenizer(self) -> HFTokenizer:
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer, GenerationConfig

                location = self.location()
                hf_tokenizer = _load_or_explain(AutoTokenizer.from_pretrained, self.model_id,
                                                location, local_files_only=True)
                try:
                    generation_config = GenerationConfig.from_pretrained(
                        location, local_files_only=True)
                    eos = generation_config.eos_token_id
                except OSError:
                    eos = None
                eos_ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
                self._tokenizer = HFTokenizer(hf_tokenizer, eos_ids)
            return self._tokenizer

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM

            from ..engine.torch_model import TorchModel
            from ..engine.worker import ModelWorker

            tokenizer = self.get_tokenizer()
            torch.set_num_threads(self.threads or default_threads(torch.get_num_threads()))
            dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
            model = _load_or_explain(AutoModelForCausalLM.from_pretrained, self.model_id,
                                     self.location(), dtype=dtype,
                                     local_files_only=True)
            model.to(self.device).eval()
            self._model = TorchModel(model, _context_length(model.config, tokenizer))
            self._worker = ModelWorker(self._run, self.model_id, batch_window=self.batch_window)

    @property
    def context_length(self) -> Optional[int]:
        return self._model.context_length if self._model is not None else None

    def _run(self, requests) -> None:
        from ..engine.beam import run_beam
        from ..engine.generation import run_generate
        from ..engine.scoring import run_score

        kind = requests[0].batch_key[0]
        if kind == "score":
            run_score(self._model, requests)
        elif kind == "beam":
            for request in requests:
                run_beam(self._model, self._tokenizer, request)
        else:
            run_generate(self._model, self._tokenizer, requests)

    def _check_length(self, tokens: int, what: str) -> None:
        limit = self.context_length
        if limit is not None and tokens > limit:
            raise ValueError(f"{what} is {tokens} tokens long, more than the model's context "
                             f"of {limit} tokens; shorten it")

    async def _submit(self, batch_key, payload, on_progress=None) -> Any:
        from ..engine.worker import Request

        request = self._worker.submit(Request(batch_key, payload, on_progress))
        return await aio.wait(request.future, request.cancel)

    async def generate(self, prompt: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        from ..engine.generation import GenerateJob

        prompt_ids = self._tokenizer.encode_prompt(prompt)
        self._check_length(len(prompt_ids), "the prompt")
        room = self.context_length - len(prompt_ids) if self.context_length else None
        if options.max_tokens is not None and (room is None or options.max_tokens <= room):
            max_new, limited = options.max_tokens, False
        else:
            max_new, limited = room, True
        constraint = None
        if options.constraint is not None and options.constraint.shaped:
            # seconds the first time for a tokenizer: off the event loop
            constraint = await aio.wait(aio.run_in_thread(self._compile, options.constraint,
                                                          name="lmql_nb-constraint"))
        job = GenerateJob(prompt, prompt_ids, options, max_new, limited, constraint)
        # beam requests run alone; argmax and sampling requests batch together
        key = ("beam", id(job)) if options.decoder == "beam" else ("generate",)
        progress = None if on_token is None else (lambda item: on_token(*item))
        return await self._submit(key, job, progress)

    def _compile(self, spec: Any) -> Any:
        """The constraint `spec` compiled for this model's tokenizer and vocabulary."""
        from ..constraints.matcher import Constraint

        vocab_size = self._model.model.get_output_embeddings().weight.shape[0]
        return Constraint(spec, self._tokenizer, vocab_size)

    async def score(self, prompt: str, values: list[str], options: ScoreOptions) -> list[ValueScores]:
        from ..engine.scoring import ScoreJob

        tokenizer = self._tokenizer
        splits = [split_continuation(tokenizer, prompt, value) for value in values]
        first_context = splits[0][0]
        shared = min(common_prefix_length(context, first_context) for context, _ in splits)
        suffixes = [context[shared:] + value_ids for context, value_ids in splits]
        self._check_length(shared + max(len(s) for s in suffixes),
                           "the prompt with the longest value")
        job = ScoreJob(first_context[:shared], suffixes, [len(v) for _, v in splits],
                       use_prefix_cache=options.cache)
        logprobs = await self._submit(("score",), job)
        return [ValueScores(value_ids, token_pieces(tokenizer, context, value_ids), scores)
                for (context, value_ids), scores in zip(splits, logprobs)]


    def identity(self) -> str:
        """The model's weights as result caches should know them: a fingerprint of the
        folder's files (names, sizes, modification times) and the dtype."""
        location = self.location()
        return f"transformers|{folder_fingerprint(location)}|{self.dtype}"


def folder_fingerprint(location: str) -> str:
    """A hash of a model folder's file names, sizes and modification times (cheap: it
    reads no weights); for a hub id, the id itself."""
    import hashlib

    folder = Path(location)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(location, local_files_only=True))
        except Exception:  # not in the local hub cache: loading will say so
            return f"hub:{location}"
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def default_threads(torch_default: int) -> int:
    """torch's own choice, less one core (at least one thread)."""
    import os

    return max(1, min(torch_default, (os.cpu_count() or 1) - 1))


def _context_length(config: Any, tokenizer: HFTokenizer) -> Optional[int]:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer.hf, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 10**8 else None


def _load_or_explain(load: Callable, model_id: str, location: str, **kwargs: Any) -> Any:
    """Call a transformers loader; turn "not found" into an error that says what to do.

    transformers' own progress bars stay off: loading runs on a thread, and in a
    notebook a bar would land in whichever cell runs at that moment.
    """
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load(location, **kwargs)
    except OSError as error:
        if Path(location).exists():
            raise
        raise FileNotFoundError(
            f"cannot load {model_id!r}: {location!r} is neither a model folder nor a model "
            "in your local Hugging Face cache. lmql_nb never downloads weights at run time; "
            "download the model yourself, or pass a folder saved with save_pretrained, or a "
            ".gguf file") from error
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
