"""ChatEngine: one base model, adapters attached to it, and answers for several sides at once.

Sides that use the base model or one of its attached LoRA adapters run in ONE batched `generate`,
so the weights exist once in memory. LoRA adapters are routed with a per-row mask: every adapter
of the batch is active, and each adapter's update is multiplied by 1 on its own rows and 0 on the
others. That costs one small multiply per layer, where PEFT's mixed-batch routing
(`adapter_names=["__base__", name]`) gathers and scatters the rows of every layer: on a CPU with
native bf16 the mask made a base + tuned pair's own time 3% shorter (docs/benchmarks.md, Chat).
DoRA and other LoRA variants cannot be masked (nor mixed by PEFT), nor can an adapter that carries
fully trained copies of modules (`modules_to_save`: the copy would answer the base rows too). Their
sides run one after the other under the same lock, each with its adapter switched on alone. A
separate full model runs in its own `generate`, in its own thread: a merged export, or an adapter
that trained the base layers' own biases (PEFT's bias="all"), which attaching would write into the
shared base, merged into a copy of the base instead. Every `generate` on the shared weights holds
the engine's lock, and attaching an adapter takes the same lock, so adapter state never changes
under a running generation.

Many prompts at once (decks, `workbench compare`, eval): `start(jobs, batch_size=N)` takes one job
per prompt × model and runs each model's rows as consecutive batches of at most N rows, each row
reported the moment it ends. Finished rows still ride along until their batch ends: `generate`
has no way to drop a row from its cache mid-batch, and writing our own decoding loop to do it
would trade transformers' tested one for a saving bounded by the longest answer in a batch. What
the engine does drop is an adapter whose rows have all finished: it is switched off for the rest
of the batch (the rows still decoding are the other models'; a finished row's tokens are ignored).
"""

from __future__ import annotations

import queue
import random
import threading
import time
import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from workbench.cpu_budget import chat_share
from workbench.data.chat_templates import resize_embeddings_for
from workbench.devices import inference_placement
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line
from workbench.inference.prompt_limits import model_context_length, prompt_fit_problem
from workbench.inference.prompting import encode_prompt, load_saved_tokenizer
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import ModelSource, adapter_trains_base_biases
from workbench.inference.streaming import (
    BatchStreamer,
    CancelCriterion,
    PerRowSampling,
    RowLengthCriterion,
    SideFinished,
    StreamEvent,
)
from workbench.inference.timing import Answer
from workbench.models import load_model, load_tokenizer, resolve_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BASE_ADAPTER_NAME = "__base__"
MAX_ATTACHED_ADAPTERS = 8
"""LoRA adapters kept attached at once (r=16 on all linear layers of the default model is ~20 MB each);
the least recently used one is dropped beyond this."""


@dataclass(frozen=True)
class GenerationJob:
    """One side's request: which model, the full message list (system, history, new user message), settings."""

    source: ModelSource
    messages: list[dict[str, str]]
    settings: SamplingSettings = field(default_factory=SamplingSettings)


@dataclass
class _Group:
    """Rows that share one `generate` call."""

    model: Any
    lock: threading.Lock
    sides: list[int] = field(default_factory=list)
    prompts: list[list[int]] = field(default_factory=list)
    settings: list[SamplingSettings] = field(default_factory=list)
    adapter_names: list[str] = field(default_factory=list)
    lora_outputs: Optional[dict[str, list]] = None
    """For rows of several adapters on the shared weights: each adapter's lora_B modules to mask."""


@dataclass(frozen=True)
class _GroupEnded:
    error: Optional[BaseException]


class GenerationStream:
    """The running generation of a set of sides.

    Iterate it (or call `drain`) for TextDelta and SideFinished events; it ends when every side is
    done. If a `generate` raised, the error is raised to the consumer after the remaining events
    (the other groups are cancelled), so a consumer never waits forever. `cancel()` stops every
    side at its next token.
    """

    def __init__(self, side_count: int) -> None:
        self.answers: list[Optional[Answer]] = [None] * side_count
        self._queue: "queue.SimpleQueue[StreamEvent | _GroupEnded]" = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []
        self._groups_left = 0
        self._error: Optional[BaseException] = None

    def _launch(self, work) -> None:
        def run() -> None:
            error = None
            try:
                work(self._queue.put, self._cancel)
            except BaseException as caught:  # noqa: BLE001 - every failure must reach the consumer
                error = caught
            finally:
                self._queue.put(_GroupEnded(error))

        thread = threading.Thread(target=run, name="workbench-generate", daemon=True)
        self._threads.append(thread)
        self._groups_left += 1
        thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self._groups_left == 0

    def _take(self, item: "StreamEvent | _GroupEnded", into: list[StreamEvent]) -> None:
        if isinstance(item, _GroupEnded):
            self._groups_left -= 1
            if item.error is not None and self._error is None:
                self._error = item.error
                self._cancel.set()
            return
        if isinstance(item, SideFinished):
            self.answers[item.side] = item.answer
        into.append(item)

    def drain(self, timeout: Optional[float] = None) -> list[StreamEvent]:
        """Events that have arrived, waiting up to `timeout` s (None: forever) for the first one.

        Returns [] once finished; raises the generation's error when the last group has ended.
        """
        events: list[StreamEvent] = []
        if self._groups_left:
            try:
                self._take(self._queue.get(timeout=timeout), events)
            except queue.Empty:
                return events
            while self._groups_left:
                try:
                    self._take(self._queue.get_nowait(), events)
                except queue.Empty:
                    break
        if not self._groups_left:
            for thread in self._threads:
                thread.join()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
        return events

    def __iter__(self) -> Iterator[StreamEvent]:
        while not self.finished:
            yield from self.drain()

    def result(self) -> list[Answer]:
        """Wait for every side and return the answers (in side order)."""
        for _ in self:
            pass
        return [answer for answer in self.answers if answer is not None]


class ChatEngine:
    """The base model loaded once, adapters attached on demand, answers streamed for several sides."""

    def __init__(
        self,
        model: "PreTrainedModel",
        tokenizer: "PreTrainedTokenizerBase",
        *,
        model_path: Optional[Path] = None,
        model_name: str = "base model",
    ) -> None:
        self.tokenizer = tokenizer
        self.model_path = Path(model_path) if model_path else None
        self.model_name = model_name
        self._base = model.eval()
        self._peft = None
        self._lock = threading.Lock()
        self._separate_models_lock = threading.Lock()
        self._adapter_names: dict[tuple[Path, int], str] = {}
        self._adapter_use: dict[str, float] = {}
        self._adapter_counter = 0
        self._separate_models: dict[Path, tuple[Any, threading.Lock]] = {}
        # A run's adapter or export answers through the tokenizer saved with it (its chat template).
        self._saved_tokenizers: dict[Path, Any] = {}
        self._adapter_tokenizers: dict[str, Any] = {}
        self._model_tokenizers: dict[int, Any] = {}
        self._base_fallback: Any = None
        config_eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos = set(config_eos if isinstance(config_eos, list) else [config_eos] if config_eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        self.eos_token_ids = eos
        """Every stop token: the base's and those of the tokenizers sides answer through."""
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos), 0)
        self.context_length = model_context_length(model)
        """The longest prompt + answer the base model was built for (None when its config does not say)."""

    @classmethod
    def load(
        cls,
        name_or_path: Optional[str] = None,
        *,
        trust_remote_code: bool = False,
        placement: Optional[tuple[str, str]] = None,
    ) -> "ChatEngine":
        """Resolve and load a base model and its tokenizer (the CLI's way in; the app shares its loaded model).

        placement: (dtype, device); default devices.inference_placement() (bf16 where native).
        """
        resolved = resolve_model(name_or_path)
        tokenizer = load_tokenizer(resolved, trust_remote_code=trust_remote_code)
        dtype, device = inference_placement() if placement is None else placement
        model = load_model(resolved, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, model_path=resolved.path, model_name=resolved.display_name)

    # -- attaching -----------------------------------------------------------------------------

    def attach(self, source: ModelSource) -> None:
        """Make `source` ready to answer: attach a LoRA adapter to the base, or load a separate model.

        Raises WorkbenchError when the directory does not fit the base model.
        """
        if source.is_base:
            return
        if source.path is None:
            raise WorkbenchError(f"{source.label}: has no directory")
        if self._answers_separately(source):
            self._load_separate_model(source)
        else:
            self._drop_least_used(keep={self._adapter_name(source)})

    def _weights_stamp(self, directory: Path) -> int:
        stamps = [p.stat().st_mtime_ns for p in directory.glob("adapter_model.*")]
        return max(stamps, default=0)

    def _adapter_name(self, source: ModelSource) -> str:
        """The PEFT name of a source's adapter, loading it once (reloaded when its weights file changes)."""
        key = (source.path, self._weights_stamp(source.path))
        self.tokenizer_for(source)  # loads it outside the lock (it may take the lock to grow the base)
        with self._lock:
            name = self._adapter_names.get(key)
            if name is None:
                name = self._load_adapter(source)
                self._adapter_names[key] = name
            self._adapter_use[name] = time.monotonic()
        return name

    def tokenizer_for(self, source: Optional[ModelSource]) -> "PreTrainedTokenizerBase":
        """The tokenizer a side answers through: the one saved with its adapter or model (the run's
        chosen chat template, with the tokens it added), else the base model's.

        A base model without a chat template of its own (a base model trained with a chosen
        template) answers through the template of the last run tokenizer loaded, so the two
        sides of a comparison get the same prompt; its embeddings have grown to that tokenizer."""
        if source is None or source.is_base or source.path is None:
            if getattr(self.tokenizer, "chat_template", None) or self._base_fallback is None:
                return self.tokenizer
            return self._base_fallback
        if source.path not in self._saved_tokenizers:
            saved = load_saved_tokenizer(source.path)
            if saved is not None and saved.eos_token_id is not None:
                self.eos_token_ids.add(saved.eos_token_id)
            self._saved_tokenizers[source.path] = saved
            if saved is not None and saved.chat_template and not getattr(self.tokenizer, "chat_template", None):
                with self._lock:  # never under a running generation
                    resize_embeddings_for(self._base, len(saved))
                self._base_fallback = saved
        return self._saved_tokenizers[source.path] or self.tokenizer

    def _load_adapter(self, source: ModelSource) -> str:
        """Attach under the lock; PEFT injects the LoRA layers into the base model's modules in place.

        An adapter trained with tokens its chat template added carries their embedding rows; the
        shared base grows to its tokenizer's size first (the base side never uses the new ids)."""
        from peft import PeftModel

        tokenizer = self.tokenizer_for(source)
        resize_embeddings_for(self._base, len(tokenizer))
        self._check_adapter_fits(source.path)
        self._adapter_counter += 1
        name = f"adapter{self._adapter_counter}"
        try:
            with warnings.catch_warnings():
                # PEFT calls a transformers method deprecated in v5 (is_gradient_checkpointing); harmless here.
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                if self._peft is None:
                    self._peft = PeftModel.from_pretrained(
                        self._base, str(source.path), adapter_name=name, is_trainable=False
                    )
                else:
                    self._peft.load_adapter(str(source.path), adapter_name=name, is_trainable=False)
        except Exception as error:  # missing files, unsupported PEFT types
            if self._peft is not None and name in self._peft.peft_config:
                self._peft.delete_adapter(name)
            reason = first_line(error)
            raise WorkbenchError(
                f"adapter {source.path}: cannot attach to {self.model_name}: {reason[:300]} "
                "(was it trained on this base model?)"
            ) from None
        self._peft.eval()
        self._adapter_tokenizers[name] = tokenizer
        return name

    def _check_adapter_fits(self, directory: Path) -> None:
        """Compare the adapter's LoRA shapes with the base model's layers before PEFT touches the model:
        a failed load would leave half-injected LoRA layers in the shared base model."""
        from safetensors import safe_open

        weights = directory / "adapter_model.safetensors"
        if not weights.is_file():
            raise WorkbenchError(f"adapter {directory}: no adapter_model.safetensors (only safetensors adapters are loaded)")
        modules = dict(self._base.named_modules())
        with safe_open(str(weights), framework="pt") as handle:
            for key in handle.keys():
                if ".lora_A." not in key and ".lora_B." not in key:
                    continue
                module_name = key.split(".lora_")[0].removeprefix("base_model.model.")
                module = modules.get(module_name)
                module = getattr(module, "base_layer", module)
                shape = handle.get_slice(key).get_shape()
                expected = getattr(module, "in_features", None) if ".lora_A." in key else getattr(module, "out_features", None)
                actual = shape[-1] if ".lora_A." in key else shape[0]
                if module is None or expected != actual:
                    found = "missing" if module is None else f"{expected} wide"
                    raise WorkbenchError(
                        f"adapter {directory}: does not fit {self.model_name}: layer {module_name} is {found}, "
                        f"the adapter expects {actual} (was it trained on another base model?)"
                    )

    def _drop_least_used(self, keep: set[str]) -> None:
        """Detach the least recently used adapters beyond MAX_ATTACHED_ADAPTERS, never one in `keep`."""
        with self._lock:
            while len(self._adapter_use) > MAX_ATTACHED_ADAPTERS:
                candidates = [name for name in self._adapter_use if name not in keep]
                if not candidates:
                    return
                self._detach(min(candidates, key=self._adapter_use.__getitem__))

    def _detach(self, name: str) -> None:
        """Remove an adapter from the shared model; the caller holds the lock."""
        self._peft.delete_adapter(name)
        del self._adapter_use[name]
        self._adapter_tokenizers.pop(name, None)
        for key, value in list(self._adapter_names.items()):
            if value == name:
                del self._adapter_names[key]

    def _answers_separately(self, source: ModelSource) -> bool:
        """Whether `source` answers from a model of its own: a merged export, or an adapter that
        changes the base model's own weights when attached (PEFT's bias="all" or "lora_only" saves
        the base layers' biases with the adapter and loads them into the shared base, which would
        change the base side's answers too)."""
        if source.kind == "model":
            return True
        return source.kind == "adapter" and source.path is not None and adapter_trains_base_biases(source.path)

    def _load_separate_model(self, source: ModelSource) -> tuple[Any, threading.Lock]:
        """A second full model in the base's dtype and device, loaded once: a merged export, or a
        fresh copy of the base with the adapter merged into it."""
        with self._separate_models_lock:
            loaded = self._separate_models.get(source.path)
            if loaded is None:
                parameter = next(self._base.parameters())
                dtype = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}[str(parameter.dtype)]
                if source.kind == "adapter":
                    model = self._merged_copy(source, dtype, str(parameter.device))
                else:
                    model = load_model(source.path, dtype=dtype, device=str(parameter.device))
                self._model_tokenizers[id(model)] = self.tokenizer_for(source)
                loaded = (model, threading.Lock())
                self._separate_models[source.path] = loaded
        return loaded

    def _merged_copy(self, source: ModelSource, dtype: str, device: str):
        from peft import PeftModel

        if self.model_path is None:
            raise WorkbenchError(f"adapter {source.path}: it trains the base model's biases, which needs a copy of "
                                 f"{self.model_name} from its directory, and this engine has none")
        copy = load_model(self.model_path, dtype=dtype, device=device)
        resize_embeddings_for(copy, len(self.tokenizer_for(source)))
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                merged = PeftModel.from_pretrained(copy, str(source.path), is_trainable=False).merge_and_unload()
        except Exception as error:  # shapes that do not fit, unsupported PEFT types
            reason = first_line(error)
            raise WorkbenchError(
                f"adapter {source.path}: cannot merge into {self.model_name}: {reason[:300]} (was it trained on this base model?)"
            ) from None
        return merged.eval()

    # -- generating ----------------------------------------------------------------------------

    def prompt_ids(self, messages: Sequence[dict[str, str]], source: Optional[ModelSource] = None) -> list[int]:
        """The prompt's token ids through the side's own tokenizer and chat template (`tokenizer_for`)."""
        return encode_prompt(self.tokenizer_for(source), messages)

    def _decoding_tokenizer(self, group: "_Group") -> "PreTrainedTokenizerBase":
        """The tokenizer that decodes a batch: the largest of its rows' (each extends the base's)."""
        if group.model is not self._base:
            return self._model_tokenizers.get(id(group.model), self.tokenizer)
        tokenizers = [self._adapter_tokenizers.get(name, self.tokenizer) for name in group.adapter_names]
        return max(tokenizers, key=len, default=self.tokenizer)

    def start(
        self, jobs: Sequence[GenerationJob], *, force_length: bool = False, batch_size: Optional[int] = None
    ) -> GenerationStream:
        """Start answering every job (side i = jobs[i]); returns the stream at once.

        The batched way to answer many prompts (decks, `workbench compare`, eval): one job per
        prompt × model, any mix of base, adapters and separate models. Each row streams its own
        TextDelta events and its SideFinished the moment it ends, before the rest of its batch.

        Args:
            jobs: one per side; the sides on the shared weights share one batched `generate`
                (left-padded, adapters routed by row masks).
            force_length: never stop at the end-of-turn token, always write max_new_tokens
                (benchmarks use this to compare equal lengths).
            batch_size: the most rows one `generate` runs at once (None: all of a model's rows in
                one batch, as a chat turn does). More rows run as consecutive batches of at most
                this many, in job order, on one thread per model.

        Raises:
            WorkbenchError: a prompt cannot be rendered or an adapter cannot be attached (before
                anything starts). Errors while generating are raised by the stream.
        """
        if not jobs:
            raise ValueError("start() needs at least one job")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        groups: dict[int, _Group] = {}
        for job in jobs:  # every side's tokenizer first: a template-less base borrows a run's
            self.tokenizer_for(job.source)
        for side, job in enumerate(jobs):
            prompt = self.prompt_ids(job.messages, job.source)
            too_long = prompt_fit_problem(len(prompt), self.context_length)
            if too_long:  # refused before anything starts: generating past the context takes minutes, then garbles
                raise WorkbenchError(too_long if len(jobs) == 1 else f"prompt {side + 1} of {len(jobs)}: {too_long}")
            if self._answers_separately(job.source):
                model, lock = self._load_separate_model(job.source)
                group = groups.setdefault(id(model), _Group(model, lock))
                group.adapter_names.append(BASE_ADAPTER_NAME)
            else:
                name = BASE_ADAPTER_NAME if job.source.is_base else self._adapter_name(job.source)
                group = groups.setdefault(id(self._base), _Group(self._base, self._lock))
                group.adapter_names.append(name)
            group.sides.append(side)
            group.prompts.append(prompt)
            group.settings.append(job.settings)
        self._drop_least_used(keep=set(name for group in groups.values() for name in group.adapter_names))
        stream = GenerationStream(len(jobs))
        for group in groups.values():
            # One thread per model runs its batches in order (threads waiting on one lock would
            # take it in no particular order).
            batches = [part for batch in _split_rows(group, batch_size) for part in self._serialize_unmaskable([batch])]
            stream._launch(lambda emit, cancel, batches=batches: self._run_batches(batches, emit, cancel, force_length))
        return stream

    def _run_batches(self, batches: list[_Group], emit, cancel: threading.Event, force_length: bool) -> None:
        for batch in batches:
            self._run_group(batch, emit, cancel, force_length)

    def _serialize_unmaskable(self, groups: list[_Group]) -> list[_Group]:
        """Give each shared-weights group of several adapters the modules its row masks need; split
        one whose adapters cannot be masked (DoRA and other LoRA variants, which PEFT cannot mix in
        one batch either) into one group per adapter: they share the lock, so they run one after the
        other, each with its adapter switched on alone."""
        result = []
        for group in groups:
            if group.model is not self._base or len(set(group.adapter_names)) == 1:
                result.append(group)
                continue
            with self._lock:
                group.lora_outputs = self._plain_lora_outputs(set(group.adapter_names) - {BASE_ADAPTER_NAME})
            if group.lora_outputs is not None:
                result.append(group)
                continue
            by_name: dict[str, _Group] = {}
            for side, prompt, settings, name in zip(group.sides, group.prompts, group.settings, group.adapter_names):
                part = by_name.setdefault(name, _Group(group.model, group.lock))
                part.sides.append(side)
                part.prompts.append(prompt)
                part.settings.append(settings)
                part.adapter_names.append(name)
            result.extend(by_name.values())
        return result

    def generate(
        self, jobs: Sequence[GenerationJob], *, force_length: bool = False, batch_size: Optional[int] = None
    ) -> list[Answer]:
        """Blocking form of `start`: the answers in side order."""
        return self.start(jobs, force_length=force_length, batch_size=batch_size).result()

    @contextmanager
    def model_for(self, source: ModelSource):
        """The model that answers as `source`, held under its lock, for teacher-forced scoring
        (evaluation's loss and log-likelihoods): the shared weights with the source's adapter on
        alone (all off for the base), or the separate model of a merged export."""
        if self._answers_separately(source):
            model, lock = self._load_separate_model(source)
            group = _Group(model, lock, adapter_names=[BASE_ADAPTER_NAME])
        else:
            name = BASE_ADAPTER_NAME if source.is_base else self._adapter_name(source)
            self._drop_least_used(keep={name})
            group = _Group(self._base, self._lock, adapter_names=[name])
        # A CPU share of the budget, as a generation takes one (workbench/cpu_budget.py).
        with group.lock, self._cpu_share(group), self._adapter_routing(group) as (model, _after_step):
            yield model

    def _left_pad(self, prompts: list[list[int]]):
        import torch

        width = max(len(prompt) for prompt in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[row, width - len(prompt) :] = 1
        device = next(self._base.parameters()).device
        return input_ids.to(device), attention_mask.to(device)

    def _generation_config(self, settings: Optional[SamplingSettings], max_new: int, min_new: Optional[int]):
        """Every decoding field set explicitly, so nothing leaks in from the model's generation_config."""
        from transformers import GenerationConfig

        if settings is None:  # PerRowSampling decides per row
            sampling = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0)
        elif settings.greedy:
            # transformers' own neutral values: anything else makes it warn that greedy ignores them.
            sampling = dict(do_sample=False, temperature=1.0, top_k=50, top_p=1.0, repetition_penalty=settings.repetition_penalty)
        else:
            sampling = dict(
                do_sample=True,
                temperature=settings.temperature,
                top_k=settings.top_k,
                top_p=settings.top_p,
                repetition_penalty=settings.repetition_penalty,
            )
        return GenerationConfig(
            max_new_tokens=max_new,
            min_new_tokens=min_new,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.pad_token_id,
            num_beams=1,
            **sampling,
        )

    @contextmanager
    def _cpu_share(self, group: _Group):
        """This generation's share of the CPU budget (workbench/cpu_budget.py) when it runs on the
        CPU: claimed and applied in generate's thread, re-read at each step, released after."""
        if next(group.model.parameters()).device.type != "cpu":
            yield None
            return

        with chat_share() as share:
            yield share

    @contextmanager
    def _adapter_routing(self, group: _Group):
        """Route rows to adapters: all base -> adapters off; one adapter -> it active; mixed -> row masks.

        Yields (model, after_step): after_step takes every row's finished flag after each decoding
        step and switches off the adapters whose rows are all done (mixed batches only). Runs under
        the group's lock, so switching PEFT's shared adapter state here is safe.
        """
        names = group.adapter_names
        if group.model is not self._base or self._peft is None:
            yield group.model, _keep_routing
        elif all(name == BASE_ADAPTER_NAME for name in names):
            with self._peft.disable_adapter():
                yield self._peft, _keep_routing
        elif len(set(names)) == 1:
            self._peft.set_adapter(names[0], inference_mode=True)
            yield self._peft, _keep_routing
        else:
            with self._row_masks(names, group.lora_outputs) as retire_finished:
                yield self._peft, retire_finished

    def _plain_lora_outputs(self, adapters: set[str]) -> Optional[dict[str, list]]:
        """Each adapter's lora_B modules, when every one of its layers is a plain LoRA Linear (no DoRA or
        other variant, no embedding LoRA, no fully trained module copy), so masking lora_B's output
        removes its whole update; else None."""
        from peft.tuners.lora.layer import Linear as LoraLinear
        from peft.utils import ModulesToSaveWrapper

        outputs: dict[str, list] = {name: [] for name in adapters}
        for module in self._peft.modules():
            for name in adapters:
                if name in getattr(module, "lora_embedding_A", {}):
                    return None
                if name in getattr(getattr(module, "token_adapter", None), "trainable_tokens_delta", {}):
                    return None  # new-token rows: PEFT refuses two adapters' rows of the same ids at once
                if isinstance(module, ModulesToSaveWrapper) and name in module.modules_to_save:
                    return None  # its trained copy of the module would answer the base rows too
                if name not in getattr(module, "lora_A", {}):
                    continue
                if type(module) is not LoraLinear or name in module.lora_variant:
                    return None
                outputs[name].append(module.lora_B[name])
        return outputs

    @contextmanager
    def _row_masks(self, row_adapters: list[str], lora_outputs: dict[str, list]):
        """Activate every adapter of the batch, each one's update kept only on its own rows."""
        import torch

        parameter = next(self._base.parameters())
        handles = []
        retirement = None
        try:
            for name, modules in lora_outputs.items():
                rows = [1.0 if row_name == name else 0.0 for row_name in row_adapters]
                mask = torch.tensor(rows, dtype=parameter.dtype, device=parameter.device).view(-1, 1, 1)
                handles += [module.register_forward_hook(_mask_output(mask)) for module in modules]
            self._peft.base_model.set_adapter(sorted(lora_outputs), inference_mode=True)
            retirement = _AdapterRetirement(self._peft, row_adapters, lora_outputs)
            yield retirement
        finally:
            for handle in handles:
                handle.remove()
            if retirement is not None:
                retirement.restore()

    def _run_group(self, group: _Group, emit, cancel: threading.Event, force_length: bool) -> None:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        with group.lock:
            if cancel.is_set():  # a serialized group whose turn came after a stop or an error
                now = time.perf_counter()
                for side in group.sides:
                    emit(SideFinished(side, Answer(text="", finish_reason="cancelled", started_at=now, ended_at=now)))
                return
            started = time.perf_counter()
            input_ids, attention_mask = self._left_pad(group.prompts)
            limits = [settings.max_new_tokens for settings in group.settings]
            uniform = len({settings.decoding_key() for settings in group.settings}) == 1
            config = self._generation_config(
                group.settings[0] if uniform else None, max(limits), min(limits) if force_length else None
            )
            processors = LogitsProcessorList([] if uniform else [PerRowSampling(group.settings)])
            if any(not settings.greedy for settings in group.settings):
                seed = next((s.seed for s in group.settings if s.seed is not None), None)
                torch.manual_seed(seed if seed is not None else random.randrange(2**31))
            streamer = BatchStreamer(
                self._decoding_tokenizer(group), group.sides, limits, self.eos_token_ids, emit, cancel, started, stop_at_eos=not force_length
            )
            stopping = StoppingCriteriaList([CancelCriterion(cancel), RowLengthCriterion(input_ids.shape[1], limits)])
            with torch.inference_mode(), self._cpu_share(group) as share, self._adapter_routing(group) as (model, after_step):
                if share is not None:
                    streamer.on_step = share.refresh
                streamer.after_step = after_step
                model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    generation_config=config,
                    logits_processor=processors,
                    stopping_criteria=stopping,
                    streamer=streamer,
                )


def _split_rows(group: _Group, batch_size: Optional[int]) -> list[_Group]:
    """The group's rows in order, in groups of at most `batch_size` (one group when None)."""
    if batch_size is None or len(group.sides) <= batch_size:
        return [group]
    parts = []
    for begin in range(0, len(group.sides), batch_size):
        rows = slice(begin, begin + batch_size)
        parts.append(
            _Group(
                group.model,
                group.lock,
                group.sides[rows],
                group.prompts[rows],
                group.settings[rows],
                group.adapter_names[rows],
            )
        )
    return parts


def _keep_routing(finished: list[bool]) -> None:
    """after_step for batches of one model: nothing to switch off while any row decodes."""


class _AdapterRetirement:
    """Switches off each adapter of a mixed batch once every row it answers has finished.

    Finished rows ride along until the batch ends (generate keeps them) and their tokens are
    ignored, so they need no adapter: the rows still decoding then pay only for the adapters they
    use, and the base rows of a base + tuned batch decode at the base model's cost once the tuned
    rows are done. Rows are independent in every layer, so switching an adapter off changes
    nothing for the others."""

    def __init__(self, peft, row_adapters: list[str], adapters: dict[str, list]) -> None:
        self.peft = peft
        self.row_adapters = row_adapters
        self.active = set(adapters)
        self.layers_off = False

    def __call__(self, finished: list[bool]) -> None:
        decoding = {name for name, done in zip(self.row_adapters, finished) if not done}
        retired = self.active - decoding
        if not retired or self.layers_off:
            return
        self.active -= retired
        if self.active:
            self.peft.base_model.set_adapter(sorted(self.active), inference_mode=True)
        else:
            self._switch_layers(on=False)

    def restore(self) -> None:
        if self.layers_off:
            self._switch_layers(on=True)

    def _switch_layers(self, on: bool) -> None:
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module in self.peft.modules():
            if isinstance(module, BaseTunerLayer):
                module.enable_adapters(on)
        self.layers_off = not on


def _mask_output(mask):
    def hook(module, inputs, output):
        return output * mask

    return hook


_ENGINES: "weakref.WeakKeyDictionary[Any, ChatEngine]" = weakref.WeakKeyDictionary()


def engine_for(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    *,
    model_path: Optional[Path] = None,
    model_name: str = "base model",
) -> ChatEngine:
    """The one engine of a loaded base model: attaching adapters changes the model's modules in
    place, so two engines must never wrap the same model."""
    engine = _ENGINES.get(model)
    if engine is None:
        engine = ChatEngine(model, tokenizer, model_path=model_path, model_name=model_name)
        _ENGINES[model] = engine
    return engine

