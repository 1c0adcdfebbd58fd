"""An Ollama Modelfile beside the GGUF file: FROM, TEMPLATE, SYSTEM and stop parameters.

TEMPLATE is the chat template the run trained with, translated into Ollama's Go template syntax
from its per-role pieces (`chat_turns.TurnFormat`). Ollama passes every message, system ones
included, in `.Messages`, and adds the Modelfile's SYSTEM as the first message when a request has
none, so the translation writes each message with its role's prefix and suffix and SYSTEM carries the
default system message -- the run's system prompt when it has one. That is what the GGUF's Jinja
template does too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from workbench.export.chat_turns import TurnFormat

MODELFILE = "Modelfile"
GO_ACTION = "{{"


def go_template(turns: TurnFormat, *, drop_head: bool) -> Optional[str]:
    """The Go template that writes conversations as `turns` does, or None when a piece cannot be
    written literally (it holds `{{`).

    Args:
        drop_head: leave out `turns.head` (the BOS token when llama.cpp adds BOS itself).
    """
    pieces = [turns.head, *turns.system, *turns.user, *turns.assistant, turns.generation_prompt]
    if any(GO_ACTION in piece for piece in pieces):
        return None
    branches = []
    for keyword, role in (("if", "system"), ("else if", "user"), ("else if", "assistant")):
        prefix, suffix = getattr(turns, role)
        branches.append(f'{{{{ {keyword} eq .Role "{role}" }}}}{prefix}{{{{ .Content }}}}{suffix}')
    head = "" if drop_head else turns.head
    return f"{head}{{{{ range .Messages }}}}{''.join(branches)}{{{{ end }}}}{{{{ end }}}}{turns.generation_prompt}"


def _quoted(text: str) -> str:
    """A Modelfile value: triple-quoted when it can be, else a JSON-style string."""
    if '"""' not in text and not text.endswith('"'):
        return f'"""{text}"""'
    return json.dumps(text, ensure_ascii=False)


def modelfile_text(gguf_name: str, template: Optional[str], system: Optional[str], stops: list[str]) -> str:
    """The Modelfile's text (FROM the GGUF file beside it)."""
    lines = [f"FROM ./{gguf_name}"]
    if template is not None:
        lines.append(f"TEMPLATE {_quoted(template)}")
    if system is not None:
        lines.append(f"SYSTEM {_quoted(system)}")
    for stop in stops:
        lines.append(f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def ollama_model_name(run_name: str) -> str:
    """A name `ollama create` accepts (lowercase letters, digits, - _ .)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", run_name.lower()).strip("-._")
    return name or "workbench-model"


def create_command(folder: Path, name: str) -> str:
    return f"ollama create {name} -f {Path(folder) / MODELFILE}"
