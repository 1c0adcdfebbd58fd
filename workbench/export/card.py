"""Model cards (README.md, huggingface_hub's `ModelCard`) for a run directory and for each export.

The card says what was trained on what, how, and how well: base model (Hub id), method and the
hyperparameters that matter (from config.yaml; the full TrainingArguments are in
training_args.json when the run wrote one), data files with row counts and sha256, train and eval
loss at the end and at the best checkpoint, measured peak memory, the prompt deck's answers at the
first and the last evaluation, and how to load the thing it sits beside. Figures come from
results.json; an evaluation written later (`<run>/eval/results.json`) is shown when present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from workbench.config.io import load_config
from workbench.export.source import hub_id_of
from workbench.models import resolve_model
from workbench.runs.results import build_results
from workbench.runs.rundir import CONFIG_FILE
from workbench.units import format_bytes

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from workbench.config.schema import RunConfig

CARD_FILE = "README.md"
TRAINING_ARGS_FILE = "training_args.json"
EVAL_RESULTS_FILE = Path("eval") / "results.json"
"""Where `workbench eval` writes its figures; the card shows them when the file exists."""

LIBRARY_BY_KIND = {"run": "peft", "adapter": "peft", "hf": "transformers", "gguf": "gguf"}
METHOD_NAMES = {"lora": "LoRA", "qlora": "QLoRA", "full": "full"}


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _step(value: Any) -> str:
    return "—" if value is None else f"{int(value)}"


def hyperparameters(config: "RunConfig", setup: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, value) rows of what shapes the result, in the config's own field names."""
    m, o, d = config.method, config.optimization, config.data
    rows = [("method.type", m.type)]
    if m.type in ("lora", "qlora"):
        targets = m.target_modules if isinstance(m.target_modules, str) else ", ".join(m.target_modules)
        rows += [
            ("method.r", str(m.r)), ("method.lora_alpha", _number(m.lora_alpha)),
            ("method.lora_dropout", _number(m.lora_dropout)), ("method.target_modules", targets),
        ]
        rows += [(f"method.{name}", "true") for name in ("use_rslora", "use_dora") if getattr(m, name)]
    world = setup.get("world_size") or 1
    effective = o.per_device_train_batch_size * o.gradient_accumulation_steps * world
    length = f"{o.max_steps} steps" if o.max_steps > 0 else f"{_number(o.num_train_epochs)} epochs"
    warmup = f"{o.warmup_steps} steps" if o.warmup_steps > 0 else f"{_number(o.warmup_ratio)} of the steps"
    rows += [
        ("optimization.learning_rate", _number(o.learning_rate)),
        ("optimization.lr_scheduler_type", o.lr_scheduler_type),
        ("warm-up", warmup),
        ("length", length),
        ("batch (per device × accumulation × devices)", f"{o.per_device_train_batch_size} × {o.gradient_accumulation_steps} × {world} = {effective}"),
        ("optimization.optim", o.optim),
        ("optimization.weight_decay", _number(o.weight_decay)),
        ("optimization.max_grad_norm", _number(o.max_grad_norm)),
        ("optimization.seed", str(o.seed)),
        ("data.max_seq_length", str(d.max_seq_length)),
        ("data.packing", str(d.packing).lower()),
        ("data.assistant_only_loss", str(d.assistant_only_loss).lower()),
        ("data.system_prompt", "(the template's own)" if d.system_prompt is None else json.dumps(d.system_prompt, ensure_ascii=False)),
    ]
    if o.neftune_noise_alpha:
        rows.append(("optimization.neftune_noise_alpha", _number(o.neftune_noise_alpha)))
    if setup.get("precision"):
        rows.append(("precision", str(setup["precision"])))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _results_section(results: dict[str, Any]) -> str:
    train, evaluation, memory = results.get("train_loss", {}), results.get("eval_loss", {}), results.get("memory", {})
    rows = [
        (f"end (step {_step(results.get('steps'))})", _number(train.get("final_smoothed")), _number(evaluation.get("final"))),
        (f"best checkpoint (step {_step(evaluation.get('best_step'))})", _number(train.get("at_best_step")), _number(evaluation.get("best"))),
    ]
    lines = [
        "## Results", "",
        _table(("", "train loss (smoothed)", "eval loss"), rows), "",
        f"- Run state: {results.get('state') or '—'}" + (f" ({results['reason']})" if results.get("reason") else ""),
        f"- Steps: {_step(results.get('steps'))} of {_step(results.get('max_steps'))}"
        + (f", epoch {results['epoch']:.2f}" if isinstance(results.get("epoch"), (int, float)) else ""),
        f"- Peak memory measured: {format_bytes(memory.get('measured_peak_bytes'))}"
        f" (estimated before the run: {format_bytes(memory.get('estimated_peak_bytes'))})",
    ]
    setup = results.get("setup") or {}
    if setup.get("device"):
        lines.append(f"- Device: {setup['device']} × {setup.get('world_size') or 1}")
    if isinstance(results.get("duration_s"), (int, float)):
        lines.append(f"- Training time: {results['duration_s'] / 60:.1f} min")
    if setup.get("trainable_params") and setup.get("total_params"):
        share = setup["trainable_params"] / setup["total_params"]
        lines.append(f"- Trainable parameters: {setup['trainable_params']:,} of {setup['total_params']:,} ({share:.2%})")
    return "\n".join(lines)


def _data_section(results: dict[str, Any]) -> str:
    files = results.get("data") or []
    if not files:
        return "## Data\n\nNo data files recorded."
    rows = [(f["role"], f"`{f['path']}`", _number(f.get("rows")), f"`{f['sha256']}`" if f.get("sha256") else "missing") for f in files]
    setup = results.get("setup") or {}
    counts = ""
    if setup.get("num_train_samples") is not None:
        counts = (f"\n\nUsed for training: {setup['num_train_samples']:,} samples; for evaluation: "
                  f"{setup.get('num_eval_samples') or 0:,} samples.")
    return "## Data\n\n" + _table(("role", "file", "rows", "sha256"), rows) + counts


def _samples_section(results: dict[str, Any]) -> str:
    samples = results.get("samples") or {}
    first, last = samples.get("first"), samples.get("last")
    if not first:
        return ""
    lines = ["## The prompt deck", ""]
    if last:
        lines.append(f"Answers at the first evaluation (step {_step(first.get('step'))}) and the last (step {_step(last.get('step'))}).")
        later = {sample.get("prompt"): sample.get("completion", "") for sample in last.get("samples", [])}
    else:
        lines.append(f"Answers at the evaluation at step {_step(first.get('step'))}.")
        later = {}
    for sample in first.get("samples", []):
        prompt = sample.get("prompt", "")
        lines += ["", f"**{prompt}**", "", f"- step {_step(first.get('step'))}: {json.dumps(sample.get('completion', ''), ensure_ascii=False)}"]
        if prompt in later:
            lines.append(f"- step {_step(last.get('step'))}: {json.dumps(later[prompt], ensure_ascii=False)}")
    return "\n".join(lines)


def _evaluation_section(run_dir: Path) -> str:
    """The figures `workbench eval` wrote, when it has (numbers at the top level or under "metrics")."""
    path = run_dir / EVAL_RESULTS_FILE
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if isinstance(figures, dict) and isinstance(figures.get("metrics"), dict):
        figures = figures["metrics"]
    rows = [(str(k), _number(v)) for k, v in figures.items() if isinstance(v, (int, float))] if isinstance(figures, dict) else []
    body = _table(("metric", "value"), rows) if rows else "See the file for the figures."
    return f"## Evaluation\n\nFrom `{EVAL_RESULTS_FILE}`:\n\n{body}"


def usage_section(kind: str, location: str, *, base: str, files: Optional[dict[str, str]] = None) -> str:
    """How to load what the card sits beside (`location`: its directory, or a Hub repo id)."""
    files = files or {}
    ask = (
        'messages = [{"role": "user", "content": "Who are you?"}]\n'
        "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\", return_dict=True)\n"
        "output = model.generate(**inputs, max_new_tokens=64)\n"
        "print(tokenizer.decode(output[0][inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True))"
    )
    if kind == "hf":
        return (
            "## Use it\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f'model = AutoModelForCausalLM.from_pretrained("{location}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{location}")\n{ask}\n```\n\n'
            f"vLLM: `vllm serve {location}`. The chat template's default system message is the run's "
            "system prompt, so a conversation without one is asked the way the model was trained."
        )
    if kind == "adapter":
        return (
            f"## Use it\n\nThe adapter sits on `{base}` (from the Hugging Face cache or Hub).\n\n"
            "```python\nfrom peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n"
            f'model = AutoPeftModelForCausalLM.from_pretrained("{location}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{location}")\n{ask}\n```\n\n'
            f"vLLM: `vllm serve {base} --enable-lora --lora-modules finetuned={location}`; "
            "merge it with `model.merge_and_unload()` or `workbench export RUN --format hf`."
        )
    if kind == "gguf":
        gguf_name, ollama_name = files.get("gguf", "model.gguf"), files.get("ollama_name", "finetuned")
        return (
            "## Use it\n\n"
            f"- llama.cpp: `llama-cli -m {location}/{gguf_name} -cnv` (the chat template is in the file)\n"
            f"- Ollama: `ollama create {ollama_name} -f {location}/Modelfile` then `ollama run {ollama_name}`\n"
            f"- LM Studio: load `{gguf_name}`\n"
            "- transformers: `AutoModelForCausalLM.from_pretrained(DIR, gguf_file=\"" + gguf_name + "\")`"
        )
    return (
        "## Use it\n\nExport it from the workbench (see the README's \"Use your model elsewhere\"):\n\n"
        f"```bash\nworkbench export {location} --format hf        # merged safetensors\n"
        f"workbench export {location} --format adapter   # the adapter, naming {base}\n"
        f"workbench export {location} --format gguf --quant q8_0   # llama.cpp / Ollama\n```"
    )


def build_card(
    run_dir: Path,
    kind: str,
    location: str,
    *,
    results: Optional[dict[str, Any]] = None,
    base_hub_id: Optional[str] = None,
    base_path: Optional[Path] = None,
    export_details: Optional[list[tuple[str, str]]] = None,
    files: Optional[dict[str, str]] = None,
) -> "ModelCard":
    """The model card of a run (`kind` "run") or of an export ("hf", "adapter", "gguf")."""
    from huggingface_hub import ModelCard, ModelCardData

    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    results = results if results is not None else build_results(run_dir)
    base = base_hub_id or (str(base_path) if base_path else config.model.name_or_path)
    tags = ["sft", "sft-workbench", config.method.type] + (["gguf"] if kind == "gguf" else [])
    data = ModelCardData(
        base_model=base_hub_id, library_name=LIBRARY_BY_KIND[kind], tags=tags,
        pipeline_tag="text-generation", model_name=config.name,
    )
    base_link = f"[{base_hub_id}](https://huggingface.co/{base_hub_id})" if base_hub_id else f"`{base}`"
    what = {"run": "training run", "hf": "merged model", "adapter": "adapter", "gguf": "GGUF model"}[kind]
    method = METHOD_NAMES.get(config.method.type, config.method.type)
    parts = [
        f"# {config.name}",
        f"A {method} fine-tune of {base_link} made with SFT Workbench; this is the {what}.",
    ]
    if base_path is not None and base_hub_id:
        parts.append(f"The base was loaded from `{base_path}` on the machine that trained it.")
    if export_details:
        parts.append("## This export\n\n" + _table(("", ""), export_details))
    training = "## Training\n\n" + _table(("setting", "value"), hyperparameters(config, results.get("setup") or {}))
    if (run_dir / TRAINING_ARGS_FILE).is_file():
        training += f"\n\nThe full `TrainingArguments` are in the run's `{TRAINING_ARGS_FILE}`."
    parts += [training, _data_section(results), _results_section(results)]
    parts += [section for section in (_samples_section(results), _evaluation_section(run_dir)) if section]
    parts.append(usage_section(kind, location, base=base, files=files))
    return ModelCard("---\n" + data.to_yaml() + "\n---\n\n" + "\n\n".join(parts) + "\n")


def write_run_card(run_dir: Path) -> Path:
    """README.md at the run root (written when the run ends, refreshed by every export)."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    resolved = resolve_model(config.model.name_or_path)
    hub_id = hub_id_of(str(config.model.name_or_path), resolved.path, resolved.source)
    card = build_card(run_dir, "run", str(run_dir), base_hub_id=hub_id, base_path=resolved.path)
    path = run_dir / CARD_FILE
    partial = path.with_name(f".{CARD_FILE}.partial-{os.getpid()}")
    card.save(partial)
    os.replace(partial, path)  # a reader never sees half a card
    return path
