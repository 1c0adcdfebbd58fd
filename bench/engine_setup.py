"""What the engine benchmarks share: an engine on a base model with a random LoRA adapter attached,
and the demo deck's prompts.

The adapter: r=16 on every linear layer with non-zero B, so it changes every answer and costs what a
trained one costs to run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_adapter(model_dir: Path, out_dir: Path) -> Path:
    """A LoRA adapter on every linear layer with non-zero B, so it changes every answer."""
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.models import load_model

    torch.manual_seed(0)
    model = get_peft_model(load_model(model_dir), LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    model.save_pretrained(out_dir)
    return out_dir


def engine_with_random_adapter(model: str, prefix: str):
    """(engine, the adapter's source): the process prepared as the workbench's commands prepare it
    (before torch loads), the model loaded in the Chat pane's dtype, the adapter made and attached."""
    from workbench.cpu_budget import prepare_process

    prepare_process()
    from transformers.utils import logging as hf_logging

    from workbench.inference.engine import ChatEngine
    from workbench.inference.sources import source_from_directory

    hf_logging.disable_progress_bar()
    engine = ChatEngine.load(model)
    tuned = source_from_directory(make_adapter(engine.model_path, Path(tempfile.mkdtemp(prefix=prefix))))
    engine.attach(tuned)
    return engine, tuned


def demo_prompts() -> list[str]:
    """The demo deck's prompts (sample_data/demo_prompts.txt), one per non-empty line."""
    return [line for line in (ROOT / "sample_data" / "demo_prompts.txt").read_text().splitlines() if line.strip()]
