"""Export a run: a merged Hugging Face model (`hf`), the portable adapter (`adapter`), or a GGUF file
with an Ollama Modelfile (`gguf`), each with a model card. What `workbench export` and the Train
pane's export dialog run; the writers live in `workbench.export`.

Every export is built in a hidden staging directory beside the target and renamed into place at
the end (`workbench.staging`), so a killed export never looks complete; a target that exists and
is not empty is refused unless `force`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from workbench import __version__
from workbench.errors import WorkbenchError
from workbench.export.adapter import write_adapter
from workbench.export.card import CARD_FILE, build_card, write_run_card
from workbench.export.chat_turns import end_of_turn_token, stop_sequences, turn_format
from workbench.export.gguf_file import GgufTokenizer, adds_special_tokens, check_convertible, write_gguf
from workbench.export import hf
from workbench.export.hf import weights_size
from workbench.export.hub import push_folder
from workbench.export.merge import merged_model
from workbench.export.ollama import MODELFILE, create_command, go_template, modelfile_text, ollama_model_name
from workbench.export.options import ExportOptions, default_output_dir, equivalent_command
from workbench.export.source import choose_weights, export_source, is_adapter, load_export_tokenizer
from workbench.io_checks import check_output_dir
from workbench.models import ProgressCallback
from workbench.runs.results import read_results, write_results
from workbench.runs.run_lock import run_dir_lock
from workbench.runs.rundir import CONFIG_FILE
from workbench.staging import check_target, staged_directory

Report = Callable[[str], None]
MANIFEST_FILE = "workbench.json"


def _no_progress(stage: str, fraction: float | None) -> None:
    pass


@dataclass
class ExportResult:
    """What an export wrote."""

    path: Path
    options: ExportOptions
    command: str
    weights_bytes: int = 0
    seconds: float = 0.0
    next_steps: list[str] = field(default_factory=list)
    hub_url: Optional[str] = None


def export(
    run_dir: Path | str, options: ExportOptions, *, report: Report = print, progress: ProgressCallback = _no_progress
) -> ExportResult:
    """Write the export `options` describe; raises WorkbenchError for anything the user can fix.

    The run directory's lock is held meanwhile (workbench/runs/run_lock.py): no trainer or
    resume starts on it, and an export refuses to start while one trains.
    """
    if not (Path(run_dir) / CONFIG_FILE).is_file():
        return _export(run_dir, options, report=report, progress=progress)  # export_source says what is wrong
    with run_dir_lock(Path(run_dir), "an export"):
        return _export(run_dir, options, report=report, progress=progress)


def _export(run_dir: Path | str, options: ExportOptions, *, report: Report, progress: ProgressCallback) -> ExportResult:
    started = time.monotonic()
    run_dir = Path(run_dir)
    options = options.checked()
    source = export_source(run_dir, options.checkpoint)
    target = Path(options.output) if options.output is not None else default_output_dir(run_dir, options)
    check_output_dir(target, option=f"-o {target}" if options.output is not None else f"the export folder {target}")
    check_target(target, options.force)
    results = read_results(run_dir)
    if results is None:
        write_results(run_dir)
        results = read_results(run_dir)
    tokenizer = load_export_tokenizer(source)
    _check_convertible(source, tokenizer, options)
    details: list[tuple[str, str]] = [("format", options.format), ("weights", source.weights_label)]
    card_files: dict[str, str] = {}
    next_steps: list[str] = []
    with staged_directory(target, force=options.force) as staging:
        if options.format == "adapter":
            write_adapter(source, tokenizer, staging)
            report(f"adapter from {source.weights_label}, on base {source.base_reference}")
            if source.base_hub_id is None:
                report("note: the base is a local directory; on another machine, edit base_model_name_or_path in adapter_config.json")
        elif options.format == "hf":
            dtype = options.dtype or hf.base_dtype(source)
            model = merged_model(source, progress)
            progress(f"Writing {dtype} safetensors", None)
            hf.write_hf(model, tokenizer, staging, dtype)
            details.append(("dtype", dtype))
            report(f"merged {source.weights_label} into {source.base_display_name}, saved in {dtype}")
        else:
            card_files, next_steps = _write_gguf_export(source, tokenizer, staging, options, report, progress)
            details.append(("quantization", options.quant))
        location = options.push_to_hub or str(target)
        card = build_card(
            run_dir, options.format, location, results=results, base_hub_id=source.base_hub_id,
            base_path=source.base_path, export_details=details, files=card_files,
        )
        card.save(staging / CARD_FILE)
        command = equivalent_command(run_dir, options)
        _write_manifest(staging, source, dict(details), command)
        weights_bytes = weights_size(staging)
    try:
        write_run_card(run_dir)
    except Exception as error:  # the export is whole; a stale run card must not fail it
        report(f"note: could not refresh {run_dir / CARD_FILE}: {error}")
    result = ExportResult(target, options, command, weights_bytes, time.monotonic() - started, next_steps)
    if options.push_to_hub:
        progress(f"Uploading to {options.push_to_hub}", None)
        result.hub_url = push_folder(target, options.push_to_hub)
        report(f"uploaded to {result.hub_url}")
    return result


def _check_convertible(source, tokenizer, options: ExportOptions) -> None:
    """Refuse what this export cannot do before anything is written."""
    if options.format == "adapter" and not source.is_adapter:
        raise WorkbenchError(
            f"{source.run_dir}: --format adapter: this run fine-tuned the whole model, so there is no adapter; "
            "use --format hf or gguf"
        )
    if options.format == "gguf":
        from transformers import AutoConfig

        config_dir = source.base_path if source.is_adapter else source.weights
        check_convertible(AutoConfig.from_pretrained(config_dir, trust_remote_code=source.config.model.trust_remote_code), tokenizer)


def _write_gguf_export(source, tokenizer, staging: Path, options: ExportOptions, report: Report, progress: ProgressCallback):
    """The GGUF file and its Modelfile; returns (card file names, next-step lines)."""
    turns = turn_format(tokenizer)
    eot = end_of_turn_token(turns, tokenizer) if turns else None
    name = ollama_model_name(source.config.name)
    gguf_name = f"{name}-{options.quant}.gguf"
    model = merged_model(source, progress)
    write_gguf(
        model, tokenizer, staging / gguf_name, options.quant, GgufTokenizer(tokenizer.chat_template, eot),
        name=source.config.name, base_hub_id=source.base_hub_id, report=report, progress=progress,
    )
    adds_bos = adds_special_tokens(tokenizer)[0]
    if turns is not None:
        template = go_template(turns, drop_head=adds_bos and turns.head == (tokenizer.bos_token or ""))
        system, stops = turns.default_system, stop_sequences(turns, tokenizer)
    else:
        template, system, stops = None, source.system_prompt, [tokenizer.eos_token] if tokenizer.eos_token else []
    if template is None:
        report("note: the chat template could not be written as an Ollama template; the Modelfile leaves TEMPLATE out")
    (staging / MODELFILE).write_text(modelfile_text(gguf_name, template, system, stops), encoding="utf-8")
    report(f"gguf {options.quant}: {gguf_name} and a {MODELFILE}")
    target = Path(options.output) if options.output is not None else default_output_dir(source.run_dir, options)
    ollama = create_command(target, name)
    return {"gguf": gguf_name, "ollama_name": name}, [ollama, f"llama-cli -m {target / gguf_name} -cnv"]


def _write_manifest(folder: Path, source, details: dict[str, str], command: str) -> None:
    """workbench.json: where the export came from (the local base path lives here, not in the configs)."""
    manifest = {
        **details,
        "run_dir": str(source.run_dir.resolve()),
        "base_model": {"hub_id": source.base_hub_id, "local_path": str(source.base_path)},
        "system_prompt": source.system_prompt,
        "command": command,
        "workbench_version": __version__,
        "created_at": time.time(),
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_run(
    run_dir: Path | str,
    output_dir: Path | str | None = None,
    *,
    checkpoint: Optional[str] = None,
    merge: bool = False,
    report: Report = print,
) -> Path:
    """The older call: the adapter, or with `merge` (or for a full fine-tune) the merged model; returns the folder."""
    merge = merge or not is_adapter(choose_weights(Path(run_dir), checkpoint))
    options = ExportOptions(format="hf" if merge else "adapter", checkpoint=checkpoint,
                            output=Path(output_dir) if output_dir is not None else None)
    return export(run_dir, options, report=report).path
