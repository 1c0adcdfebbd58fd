"""The messages and the exact prompt text a side sees, and warnings when chat differs from training.

System prompts follow the training config's rule, the one in `workbench.data.system_prompt`: None
leaves the chat template to add its default system message (SmolLM2's adds "You are a helpful AI
assistant named SmolLM..."), any string, "" included, becomes the first message.

A run's side answers through the tokenizer saved with its adapter (`load_saved_tokenizer`): the
chat template the run chose (with its system prompt as the default) and the tokens it added.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from workbench.config.io import load_config
from workbench.data.chat_templates import resolve_chat_template
from workbench.data.system_prompt import chat_with_system_prompt, template_with_default_system
from workbench.data.templating import render_chat_text
from workbench.errors import WorkbenchError
from workbench.inference.sources import ModelSource, adapter_base_model
from workbench.runs.rundir import CONFIG_FILE, FINAL_ADAPTER_DIR

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.config import RunConfig

Messages = list[dict[str, str]]


def build_messages(system_prompt: Optional[str], history: Sequence[dict[str, str]], user_text: str) -> Messages:
    """System prompt (training's rule: None leaves the template's default), earlier turns of this
    side, then the new user message."""
    turns = [{"role": m["role"], "content": m["content"]} for m in history]
    return chat_with_system_prompt([*turns, {"role": "user", "content": user_text}], system_prompt)


def render_prompt(tokenizer: "PreTrainedTokenizerBase", messages: Sequence[dict[str, str]]) -> str:
    """The exact text the model reads, ending with the assistant header it continues from."""
    return render_chat_text(tokenizer, messages, add_generation_prompt=True)


def encode_prompt(tokenizer: "PreTrainedTokenizerBase", messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids of the rendered prompt; the template already holds the special tokens, so none are added."""
    return list(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])


def read_run_config(run_dir: Path) -> Optional["RunConfig"]:
    """The RunConfig a run was trained with, or None when config.yaml is missing or unreadable."""
    try:
        return load_config(Path(run_dir) / CONFIG_FILE)
    except WorkbenchError:
        return None


def trained_system_prompt(source: ModelSource) -> tuple[bool, Optional[str]]:
    """(known, system prompt) the side's run was trained with; known is False outside a run."""
    if source.run_dir is None:
        return False, None
    config = read_run_config(source.run_dir)
    if config is None:
        return False, None
    return True, config.data.system_prompt


def load_saved_tokenizer(directory: Path) -> Optional["PreTrainedTokenizerBase"]:
    """The tokenizer saved beside an adapter or inside a model directory (the trainer saves the
    prepared one with every checkpoint), or None when the directory holds none."""
    directory = Path(directory)
    if not (directory / "tokenizer_config.json").is_file() or not (directory / "tokenizer.json").is_file():
        return None
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except Exception as error:  # a broken or foreign tokenizer folder: say which
        raise WorkbenchError(f"{directory}: the tokenizer saved here cannot be loaded: {str(error).splitlines()[0][:200]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _saved_chat_template(directory: Path) -> Optional[str]:
    """The chat template saved next to an adapter (chat_template.jinja or tokenizer_config.json)."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    template = config.get("chat_template")
    return template if isinstance(template, str) else None


def _template_text(choice: str) -> Optional[str]:
    try:
        return resolve_chat_template(choice).text
    except WorkbenchError:
        return None


def _describe(system_prompt: Optional[str]) -> str:
    if system_prompt is None:
        return "the template's default"
    if not system_prompt:
        return "an empty system message"
    shown = system_prompt if len(system_prompt) <= 60 else system_prompt[:57] + "…"
    return repr(shown)


def training_mismatches(
    source: ModelSource,
    tokenizer: "PreTrainedTokenizerBase",
    system_prompt: Optional[str],
    base_model_path: Optional[Path] = None,
) -> list[str]:
    """One line per way this chat differs from how the side was trained (empty when it matches
    or when nothing is known about its training).

    A side with a tokenizer saved beside its weights answers through that one (the run's own
    chat template), so only a side without one can chat through another template than it
    trained with: then `tokenizer` (the base model's) is compared with the run's choice.
    """
    if source.is_base or source.path is None:
        return []
    warnings = []
    known, trained = trained_system_prompt(source)
    candidates = [source.path]
    if source.run_dir is not None:
        candidates.append(source.run_dir / FINAL_ADAPTER_DIR)
    saved = next((t for t in (_saved_chat_template(d) for d in candidates) if t is not None), None)
    # A run saves its template with its system prompt as the default (template_with_default_system).
    carries_trained = trained is not None and saved is not None and saved.startswith(template_with_default_system("", trained))
    if known and trained != system_prompt and not (system_prompt is None and carries_trained):
        warnings.append(
            f"{source.label}: system prompt differs from training — trained with {_describe(trained)}, "
            f"chatting with {_describe(system_prompt)}"
        )
    config = read_run_config(source.run_dir) if source.run_dir is not None else None
    chosen = config.data.chat_template if config is not None else "auto"
    if saved is None and chosen != "auto" and _template_text(chosen) != getattr(tokenizer, "chat_template", None):
        warnings.append(
            f"{source.label}: trained with chat template {chosen}, but no tokenizer was saved with it; "
            "chatting through the base model's template"
        )
    trained_on = adapter_base_model(source)
    if trained_on and base_model_path is not None:
        trained_path = Path(trained_on).expanduser()
        if trained_path.is_dir() and trained_path.resolve() != Path(base_model_path).resolve():
            warnings.append(f"{source.label}: adapter was trained on {trained_on}, chatting on {base_model_path}")
    return warnings
