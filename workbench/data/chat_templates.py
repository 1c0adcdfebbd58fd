"""Which chat template a run uses (`data.chat_template`), and the tokenizer prepared for it.

The choice is one of:
- "auto": the tokenizer's own template. A base model's tokenizer has none, and then it is refused
  with the names to choose from.
- a built-in layout, shipped as a .jinja file in `workbench/data/templates/` (BUILTIN_TEMPLATES).
  None of them adds a default system message except alpaca's preamble; the run's system prompt
  rule (`workbench.data.system_prompt`) decides.
- a path to a .jinja file of the user's own.

`prepare_tokenizer` is the one place a tokenizer gets the chosen template, for the Data pane's
token view, `workbench data inspect|show`, the trainer and Chat. Besides setting the template it
adds the control tokens the layout is built from when the tokenizer lacks them (a turn marker
split into ordinary tokens is a stop signal the model never sees as one token), makes the
template's end-of-turn token the tokenizer's eos (generation stops there, as it trained to) and
gives it a pad token. The trainer resizes the model's embeddings for the added tokens and trains
their rows (`workbench.training.model_setup`).
"""

from __future__ import annotations

import copy
import functools
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.data.system_prompt import template_with_default_system
from workbench.data.token_lengths import load_data_tokenizer
from workbench.errors import WorkbenchError
from workbench.io_checks import MAX_TEMPLATE_BYTES, input_file_problem, read_input_text
from workbench.models import DEFAULT_MODEL_ALIASES, is_default_model_cached, load_tokenizer, resolve_model

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.config.schema import RunConfig

AUTO_TEMPLATE = "auto"
TEMPLATE_FIELD = "data.chat_template"
FALLBACK_EOS_TOKEN = "</s>"
# The control-token style most templates share (<|im_start|>, <|eot_id|>, <|end|>); in a user's
# own .jinja file these literals are the tokens its layout needs as single tokens.
_CONTROL_LITERAL = re.compile(r"<\|[^|\s<>]{1,40}\|>")
_PROBE = ({"role": "user", "content": "workbench-probe-question"}, {"role": "assistant", "content": "workbench-probe-answer"})


@dataclass(frozen=True)
class BuiltinTemplate:
    """A chat layout the workbench ships.

    Attributes:
        name: what `data.chat_template` names it by.
        description: one line for help texts.
        control_tokens: the turn markers the layout is built from; added as special tokens to a
            tokenizer that lacks them.
        renders_tools: the layout writes tool schemas and structured tool calls.
    """

    name: str
    description: str
    control_tokens: tuple[str, ...] = ()
    renders_tools: bool = False


BUILTIN_TEMPLATES: dict[str, BuiltinTemplate] = {
    template.name: template
    for template in (
        BuiltinTemplate("chatml", "ChatML: <|im_start|>role … <|im_end|>", ("<|im_start|>", "<|im_end|>")),
        BuiltinTemplate(
            "llama3",
            "Llama 3: <|start_header_id|>role<|end_header_id|> … <|eot_id|>, tools as JSON calls",
            ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
            renders_tools=True,
        ),
        BuiltinTemplate(
            "qwen2.5",
            "Qwen2.5: ChatML with tools in <tools> and calls in <tool_call>",
            ("<|im_start|>", "<|im_end|>"),
            renders_tools=True,
        ),
        BuiltinTemplate("mistral", "Mistral: [INST] … [/INST] answer</s>"),
        BuiltinTemplate("gemma", "Gemma: <start_of_turn>user|model … <end_of_turn>", ("<start_of_turn>", "<end_of_turn>")),
        BuiltinTemplate("phi3", "Phi-3: <|user|> … <|end|>", ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")),
        BuiltinTemplate("alpaca", "Alpaca, for base models: ### Instruction: … ### Response: … </s>"),
    )
}
BUILTIN_TEMPLATE_NAMES = tuple(BUILTIN_TEMPLATES)


def template_choices_text() -> str:
    """The accepted values, for messages: 'auto, chatml, llama3, …, or a path to a .jinja file'."""
    return f"{AUTO_TEMPLATE}, {', '.join(BUILTIN_TEMPLATE_NAMES)}, or a path to a .jinja file"


@dataclass(frozen=True)
class ChatTemplateChoice:
    """A resolved `data.chat_template` value.

    Attributes:
        name: "auto", a built-in's name, or the .jinja file's path.
        text: the template; None for "auto" (the tokenizer's own).
        control_tokens: tokens the layout needs as single tokens.
    """

    name: str
    text: str | None
    control_tokens: tuple[str, ...] = ()

    @property
    def is_auto(self) -> bool:
        return self.text is None


def builtin_template_text(name: str) -> str:
    """The .jinja text of a built-in layout."""
    if name not in BUILTIN_TEMPLATES:
        raise WorkbenchError(f"{TEMPLATE_FIELD}: {name!r} is not a built-in template; use {template_choices_text()}")
    return resources.files("workbench.data").joinpath("templates", f"{name}.jinja").read_text(encoding="utf-8")


def is_template_name(value: str | None) -> bool:
    """True for "auto" and the built-in names (anything else is taken as a file path)."""
    return value is None or value == AUTO_TEMPLATE or value in BUILTIN_TEMPLATES


def resolve_chat_template(choice: str | None, base_dir: str | os.PathLike | None = None) -> ChatTemplateChoice:
    """Turn a `data.chat_template` value into its template text.

    Args:
        choice: "auto" (or None), a built-in name, or a path to a .jinja file.
        base_dir: where a relative path starts (the current directory when None).

    Raises:
        WorkbenchError: an unknown name, or a file that does not exist or cannot be read.
    """
    if choice is None or choice == AUTO_TEMPLATE:
        return ChatTemplateChoice(AUTO_TEMPLATE, None)
    if choice in BUILTIN_TEMPLATES:
        return ChatTemplateChoice(choice, builtin_template_text(choice), BUILTIN_TEMPLATES[choice].control_tokens)
    from workbench.config.io import resolve_config_path  # cycle: config.io -> data.chat_templates

    path = resolve_config_path(choice, base_dir)
    problem = input_file_problem(path, max_bytes=MAX_TEMPLATE_BYTES)
    if problem:  # a FIFO, a loop, a folder: named, never opened
        raise WorkbenchError(f"{TEMPLATE_FIELD}: {choice!r}: {problem}; use {template_choices_text()}")
    text = read_input_text(path, label=f"{TEMPLATE_FIELD}: {path}", max_bytes=MAX_TEMPLATE_BYTES)
    if not text.strip():
        raise WorkbenchError(f"{TEMPLATE_FIELD}: {path}: the template file is empty")
    tokens = tuple(dict.fromkeys(_CONTROL_LITERAL.findall(text)))
    return ChatTemplateChoice(str(path), text, tokens)


def model_dir_lacks_chat_template(model_dir: str | os.PathLike) -> bool:
    """True when a model directory has a tokenizer and it carries no chat template (read from its
    files, nothing loaded); False when it has one, or when there is no tokenizer to tell by."""
    import json

    directory = Path(model_dir)
    if (directory / "chat_template.jinja").is_file() or (directory / "chat_template.json").is_file():
        return False
    try:
        config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return not (isinstance(config, dict) and config.get("chat_template"))


def missing_template_message(tokenizer: "PreTrainedTokenizerBase") -> str:
    """What to say when a tokenizer has no template and the choice is auto."""
    name = getattr(tokenizer, "name_or_path", "") or "the model"
    return (
        f"model tokenizer {name!r} has no chat template (a base model); "
        f"set data.chat_template (or --chat-template) to one of {', '.join(BUILTIN_TEMPLATE_NAMES)} or a .jinja file"
    )


@dataclass
class PreparedTokenizer:
    """A tokenizer ready for a run's chat template.

    Attributes:
        tokenizer: the tokenizer (a copy when `prepare_tokenizer` had to change anything and was
            asked not to change the one given).
        choice: the template choice it was prepared for.
        added_tokens: control tokens the template needed and the tokenizer lacked, now added.
        new_token_ids: ids beyond the original vocabulary (the embedding rows to add and train).
        eos_changed_from: the eos token before it became the template's end-of-turn token (None: unchanged).
    """

    tokenizer: "PreTrainedTokenizerBase"
    choice: ChatTemplateChoice
    added_tokens: tuple[str, ...] = ()
    new_token_ids: tuple[int, ...] = ()
    eos_changed_from: str | None = None

    def notes(self) -> list[str]:
        """One line per change made to the tokenizer (for the trainer's log and `data show`)."""
        lines = []
        if self.added_tokens:
            lines.append(
                f"chat template {self.choice.name}: added {len(self.added_tokens)} special token(s) the tokenizer "
                f"lacked: {' '.join(self.added_tokens)} (their embedding rows are trained)"
            )
        if self.eos_changed_from is not None:
            lines.append(
                f"chat template {self.choice.name}: end-of-turn token {self.tokenizer.eos_token} is the eos token "
                f"(was {self.eos_changed_from})"
            )
        return lines


def _single_tokens(tokenizer: "PreTrainedTokenizerBase") -> set[str]:
    """Texts the tokenizer never splits (its added tokens)."""
    return {token.content for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values()}


def end_of_turn_token(tokenizer: "PreTrainedTokenizerBase") -> str | None:
    """The control token that closes an assistant turn in the tokenizer's template (None: none found).

    Found by rendering a probe exchange and reading what follows the answer, so it works for any
    template, built-in or not.
    """
    try:
        text = tokenizer.apply_chat_template(list(_PROBE), tokenize=False)
    except Exception:
        return None
    answer = _PROBE[1]["content"]
    at = text.find(answer)
    if at < 0:
        return None
    following = text[at + len(answer) :]
    candidates = sorted(_single_tokens(tokenizer), key=len, reverse=True)
    return next((token for token in candidates if following.startswith(token)), None)


def prepare_tokenizer(
    tokenizer: "PreTrainedTokenizerBase",
    chat_template: str | ChatTemplateChoice | None = AUTO_TEMPLATE,
    *,
    system_prompt: str | None = None,
    base_dir: str | os.PathLike | None = None,
    in_place: bool = False,
) -> PreparedTokenizer:
    """The tokenizer with the chosen chat template, its control tokens and a sensible eos/pad.

    "auto" leaves the tokenizer as it is (refused when it has no template). Any other choice sets
    the template, adds the control tokens it needs that the tokenizer lacks, adds an eos token
    when there is none ("</s>"), and makes the template's end-of-turn token the eos token (the
    old eos becomes the pad token when there was none).

    Args:
        tokenizer: a loaded tokenizer.
        chat_template: a `data.chat_template` value or a resolved choice.
        system_prompt: when not None, the template is rewritten so a conversation without a system
            message gets this one (`template_with_default_system`): what is saved with a run.
        base_dir: where a relative template path starts.
        in_place: change `tokenizer` itself; otherwise a copy is changed when anything changes
            (the app shares one tokenizer between panes).

    Raises:
        WorkbenchError: the choice cannot be resolved, or it is "auto" and the tokenizer has no template.
    """
    choice = chat_template if isinstance(chat_template, ChatTemplateChoice) else resolve_chat_template(chat_template, base_dir)
    if choice.is_auto and not getattr(tokenizer, "chat_template", None):
        raise WorkbenchError(missing_template_message(tokenizer))
    if choice.is_auto and system_prompt is None:
        return PreparedTokenizer(tokenizer, choice)
    prepared = tokenizer if in_place else copy.deepcopy(tokenizer)
    result = PreparedTokenizer(prepared, choice)
    if not choice.is_auto:
        original_size = len(prepared)
        present = _single_tokens(prepared)
        missing = [token for token in choice.control_tokens if token not in present]
        if missing:
            prepared.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
        if prepared.eos_token is None:  # templates close answers with eos_token; it must exist
            prepared.add_special_tokens({"eos_token": FALLBACK_EOS_TOKEN})
            missing.append(FALLBACK_EOS_TOKEN)
        prepared.chat_template = choice.text
        result.added_tokens = tuple(dict.fromkeys(missing))
        result.new_token_ids = tuple(range(original_size, len(prepared)))
        end = end_of_turn_token(prepared)
        if end is not None and end != prepared.eos_token:
            result.eos_changed_from = prepared.eos_token
            if prepared.pad_token is None:
                prepared.pad_token = prepared.eos_token
            prepared.eos_token = end
    if prepared.pad_token is None:
        prepared.pad_token = prepared.eos_token
    if system_prompt is not None:
        prepared.chat_template = template_with_default_system(prepared.chat_template, system_prompt)
    return result


def chosen_template_text(tokenizer: "PreTrainedTokenizerBase", chat_template: str | None = AUTO_TEMPLATE, *, base_dir=None) -> str:
    """The text of the chosen template for this tokenizer (its own for "auto"), without a default system."""
    choice = resolve_chat_template(chat_template, base_dir)
    if choice.is_auto:
        if not getattr(tokenizer, "chat_template", None):
            raise WorkbenchError(missing_template_message(tokenizer))
        return tokenizer.chat_template
    return choice.text


def load_run_tokenizer(config: "RunConfig", *, base_dir: str | os.PathLike | None = None) -> PreparedTokenizer:
    """The prepared tokenizer of a RunConfig, as training uses and saves it: the model's tokenizer
    with `data.chat_template` applied and `data.system_prompt` as the template's default system message."""
    resolved = resolve_model(_model_name(config, base_dir))
    tokenizer = load_tokenizer(resolved, trust_remote_code=config.model.trust_remote_code)
    return prepare_tokenizer(
        tokenizer, config.data.chat_template, system_prompt=config.data.system_prompt, base_dir=base_dir, in_place=True
    )


def _model_name(config: "RunConfig", base_dir) -> str:
    from workbench.config.io import resolve_config_path  # cycle: config.io -> data.chat_templates

    name = config.model.name_or_path
    local = resolve_config_path(name, base_dir)
    return str(local) if not Path(name).is_absolute() and local.is_dir() else name


def new_token_count(model_name: str, chat_template: str | None, *, base_dir=None, trust_remote_code: bool = False) -> int:
    """How many tokens `chat_template` adds to the model's tokenizer (the embedding rows the run
    adds and trains); 0 for "auto". Cached per tokenizer files and template."""
    if chat_template in (None, AUTO_TEMPLATE):
        return 0

    if model_name in DEFAULT_MODEL_ALIASES and not is_default_model_cached():
        return 0  # converting the default model takes ~25 s; its tokenizer has ChatML's tokens anyway

    model_dir = resolve_model(model_name).path
    choice = resolve_chat_template(chat_template, base_dir)
    stamp = tuple(_mtime(Path(model_dir) / name) for name in ("tokenizer.json", "tokenizer_config.json"))
    return _cached_new_token_count(str(model_dir), stamp, choice.name, choice.text, choice.control_tokens, trust_remote_code)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=16)
def _cached_new_token_count(model_dir: str, _stamp, name: str, text: str, tokens: tuple[str, ...], trust_remote_code: bool) -> int:
    tokenizer = load_tokenizer(model_dir, trust_remote_code=True) if trust_remote_code else load_data_tokenizer(model_dir)[1]
    return len(prepare_tokenizer(tokenizer, ChatTemplateChoice(name, text, tokens), in_place=True).new_token_ids)


def resize_embeddings_for(model, vocab_size: int | None) -> int:
    """Grow the model's input embeddings (and an untied output layer) to `vocab_size` rows when the
    prepared tokenizer has tokens the model has no rows for; returns the rows added (0: none).

    New rows start at the mean of the old ones (transformers' mean resizing), so a new token
    starts as an average token rather than as noise; training then moves them. Loading an adapter
    trained with new tokens needs the same size first (its saved rows replace the new ones).
    """
    rows = model.get_input_embeddings().weight.shape[0]
    if vocab_size is None or vocab_size <= rows:
        return 0
    model.resize_token_embeddings(vocab_size, mean_resizing=True)
    return vocab_size - rows


def new_token_peft_kwargs(model, new_token_ids) -> dict:
    """LoraConfig arguments that train the rows of the tokens a chat template added (PEFT's
    `trainable_token_indices`): the input embedding's rows and, when it is not tied to the
    embedding, the output layer's (the model must learn to *predict* a new end-of-turn token).
    PEFT saves those rows in the adapter, and `merge_and_unload` writes them into the model."""
    ids = sorted(set(new_token_ids))
    if not ids:
        return {}
    names = {module: name for name, module in model.named_modules()}
    embedding = model.get_input_embeddings()
    output = model.get_output_embeddings()
    indices = {names[embedding]: ids}
    if output is not None and output.weight is not embedding.weight:
        indices[names[output]] = ids
    return {"trainable_token_indices": indices}
