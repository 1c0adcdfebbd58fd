"""The PEFT adapter directory, portable: `base_model_name_or_path` names the base by its Hub id, so
`AutoPeftModelForCausalLM.from_pretrained(DIR)` finds the base wherever it sits in a Hugging Face cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.export.source import ADAPTER_FILES, ExportSource

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def write_adapter(source: ExportSource, tokenizer: "PreTrainedTokenizerBase", target: Path) -> None:
    """Copy the adapter weights, rewrite its config's base reference, and save the tokenizer beside it
    (the source must be an adapter: `workbench.runs.export` refuses a full fine-tune first)."""
    for name in ADAPTER_FILES:
        if (source.weights / name).is_file():
            shutil.copy2(source.weights / name, target / name)
    config_path = target / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = source.base_reference
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tokenizer.save_pretrained(target)
