"""One training run, start to end: what `workbench train` executes (in each process, under torchrun).

Rank 0 alone writes status.json and events.jsonl; every rank trains. The run ends in one of
completed (all steps, or early stopping), stopped (SIGTERM / Ctrl-C: a checkpoint is saved first) or
failed (NaN loss, out of memory, bad input), and that state is always written before the process exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional

from workbench.config.attention import cpu_training_environment, run_attention
from workbench.config.checks import check_config
from workbench.config.distributed import launch_argv, num_machines, uses_launcher
from workbench.config.hf_arguments import (
    OVERRIDING_ENVIRONMENT,
    arguments_record,
    build_training_arguments,
    from_pretrained_kwargs,
    run_facts,
    tracking_environment,
    workbench_trainer_kwargs,
)
from workbench.config.io import ConfigError, save_config
from workbench.cpu_budget import trainer_share
from workbench.data.chat_templates import load_run_tokenizer
from workbench.errors import WorkbenchError
from workbench.evaluation.deck import deck_expectations
from workbench.export.card import write_run_card
from workbench.memory import estimate_training_memory, memory_budget, memory_inputs_from_config, resolve_model_spec
from workbench.memory.verdict import suggestions
from workbench.models import quiet_transformers, resolve_model
from workbench.precision import torch_dtype
from workbench.runs.results import write_results
from workbench.runs.rundir import (
    ACTIVE_STATES,
    CHECKPOINT_COMPLETE_MARKER,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    FINAL_ADAPTER_DIR,
    TRAINING_ARGS_FILE,
    EventLog,
    RunStatus,
    complete_checkpoints,
    pid_is_alive,
    read_status,
    write_status,
)
from workbench.training.callbacks import (
    RecorderInfo,
    RunOutcome,
    StopRequest,
    TrackerState,
    callback_classes,
    checkpoint_relpath,
    install_stop_handlers,
    is_resume_only_file,
    remove_incomplete_checkpoints,
    restore_signal_handlers,
)
from workbench.training.data_fingerprint import check_data_unchanged, should_check_here
from workbench.training.examples import prepare_data
from workbench.training.failures import describe_failure, exit_code_for, recorded_despite_full_disk, trainer_lock
from workbench.training.model_setup import build_training_model, check_method_supported, parameter_counts
from workbench.training.packing import RowCollator, pack_samples, single_sample_rows
from workbench.training.ranks import CHECKED_BY_LAUNCHER, distributed_rank, leave_process_group, under_launcher
from workbench.training.resources import ResourceProbe
from workbench.training.trainer import workbench_trainer_class
from workbench.units import format_bytes

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

Report = Callable[[str], None]


def report_line(line: str) -> None:
    print(line, flush=True)


def memory_estimate(config: "RunConfig"):
    """The memory estimator's (estimate, inputs) for this config, or None when it cannot tell."""
    try:
        name, inputs = memory_inputs_from_config(config)
        spec = resolve_model_spec(name, trust_remote_code=config.model.trust_remote_code)
        return estimate_training_memory(spec, inputs), inputs
    except Exception:  # an estimate is a nicety; it must never stop a run
        return None


def out_of_memory_advice(config: "RunConfig") -> str:
    """What to change after a CUDA out-of-memory: the estimator's suggestions, else general ones."""
    found = memory_estimate(config)
    if found is not None:
        estimate, inputs = found
        budget = memory_budget(inputs).bytes
        if budget:
            # The run needed more than its estimate, so ask for changes as if it did not fit.
            target = min(budget, int(estimate.total_bytes * 0.75))
            hints = [hint.text for hint in suggestions(estimate.spec, inputs, target)][:3]
            if hints:
                return f"estimated {format_bytes(estimate.total_bytes)} per device; try: " + "; ".join(hints)
    hints = []
    if config.optimization.per_device_train_batch_size > 1:
        hints.append("halve per_device_train_batch_size (and double gradient_accumulation_steps)")
    if not config.optimization.gradient_checkpointing:
        hints.append("turn on gradient_checkpointing")
    hints.append(f"lower data.max_seq_length (now {config.data.max_seq_length})")
    if config.method.type == "full":
        hints.append("use method.type: lora")
    elif config.method.type == "lora":
        hints.append("use method.type: qlora")
    return "try: " + "; ".join(hints)


def launch_distributed(
    config: "RunConfig", config_path: Path, run_dir: Optional[Path], resume: bool, report: Report
) -> int:
    """Start this config's ranks with `accelerate launch` (the argv `config show --as command`
    prints) and wait for them.

    Until rank 0 takes over status.json, it names this process, so the run never looks dead while
    the ranks start. `run_dir` is None for a run on several machines: there global rank 0 creates
    the run directory and the ranks on every machine join it.
    """
    if run_dir is not None:
        status = read_status(run_dir, as_written=True) or RunStatus(name=config.name)
        status.state, status.reason, status.pid = "starting", None, os.getpid()
        write_status(run_dir, status)
    command = launch_argv(config, config_path, run_dir, resume, python=sys.executable)
    machines = num_machines(config)
    where = f" on {machines} machines" if machines > 1 else ""
    report(f"launching {config.devices.num_processes} training processes{where} (accelerate launch)")
    child = subprocess.Popen(command, env={**os.environ, CHECKED_BY_LAUNCHER: "1"})

    def forward_stop(signum, _frame):
        # Rank 0 owns the stop decision and shares it with the other ranks at the next step end.
        status = read_status(run_dir, as_written=True) if run_dir is not None else None
        target = status.pid if status and status.pid and status.pid != os.getpid() else child.pid
        try:
            os.kill(target, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C already reaches every rank
    code = child.wait()
    status = read_status(run_dir, as_written=True) if run_dir is not None else None
    if status is not None and status.state in ACTIVE_STATES and not pid_is_alive(status.pid):
        status.state = "failed"
        status.reason = f"a training process exited with code {code} before finishing; see trainer.log"
        write_status(run_dir, status)
        EventLog(run_dir).append("end", state=status.state, reason=status.reason, measured_peak_bytes=status.measured_peak_bytes)
    return exit_code_for(status.state) if code == 0 and status is not None else code  # ranks exit 0 when stopped


def run_training(
    config: "RunConfig", run_dir: Path, *, config_path: Optional[Path] = None, resume: bool = False,
    check_source: Optional[str] = None, report: Report = report_line,
) -> int:
    """Train `config` into `run_dir`; returns the exit code (workbench/training/failures.py: 0 completed, 1 failed, 3 stopped).

    Bad input (a WorkbenchError) is recorded as a failed run and then raised, for the CLI to print.

    Args:
        check_source: run the config checks first, naming this file in their messages.
    """
    run_dir = Path(run_dir)
    try:
        with trainer_lock(run_dir):  # before anything is written (workbench/runs/run_lock.py)
            if should_check_here():
                check_data_unchanged(run_dir, config, resume, report)
            return _run_training(config, run_dir, config_path=config_path, resume=resume, check_source=check_source, report=report)
    finally:
        leave_process_group()


def _run_training(
    config: "RunConfig", run_dir: Path, *, config_path: Optional[Path], resume: bool, check_source: Optional[str],
    report: Report,
) -> int:
    if check_source is not None and not under_launcher():
        try:
            preflight(config, check_source, report)
        except WorkbenchError as error:
            _record_failure(run_dir, config, str(error))
            raise

    if uses_launcher(config) and not under_launcher():
        return launch_distributed(config, config_path or run_dir / CONFIG_FILE, run_dir, resume, report)

    rank, world = distributed_rank()
    is_main = rank == 0
    request = StopRequest()
    previous_handlers = install_stop_handlers(request)
    outcome = RunOutcome()
    previous = read_status(run_dir, as_written=True) if resume else None
    status = previous or RunStatus(name=config.name)
    status.state, status.reason, status.pid = "starting", None, os.getpid()
    events = EventLog(run_dir)
    if is_main:
        if not (run_dir / CONFIG_FILE).is_file():
            save_config(config, run_dir / CONFIG_FILE)
        write_status(run_dir, status)
    probe = None
    user_error: Optional[WorkbenchError] = None
    try:
        with contextlib.ExitStack() as scope:
            probe = _train(config, run_dir, resume, status, request, outcome, report, rank, world, scope)
    except WorkbenchError as error:
        outcome.state, outcome.reason = "failed", str(error)
        user_error = error
    except KeyboardInterrupt:
        outcome.state, outcome.reason = "stopped", "interrupted (second Ctrl-C) without saving; resume from the last checkpoint"
    except Exception as error:  # the run must always end with a state and a reason
        known = describe_failure(error, run_dir, status.step)
        if known is not None:
            outcome.state, outcome.reason = "failed", known
        elif _is_out_of_memory(error):
            outcome.state = "failed"
            outcome.reason = f"CUDA out of memory at step {status.step}: {out_of_memory_advice(config)}"
        else:
            outcome.state = "failed"
            first_line = (str(error).strip().splitlines() or [""])[0]
            outcome.reason = f"{type(error).__name__}: {first_line}"
            traceback.print_exc()
    finally:
        restore_signal_handlers(previous_handlers)
    if is_main:
        if probe is not None:
            status.measured_peak_bytes = max(status.measured_peak_bytes or 0, probe.peak_bytes())
        status.state, status.reason = outcome.state, outcome.reason
        with recorded_despite_full_disk(run_dir, outcome.reason, report):
            write_status(run_dir, status)
            events.append("end", state=outcome.state, reason=outcome.reason, measured_peak_bytes=status.measured_peak_bytes)
            write_run_summary(run_dir, report)
        if user_error is None:
            report(f"run {outcome.state}" + (f": {outcome.reason}" if outcome.reason else ""))
    if user_error is not None:
        raise user_error  # the CLI prints it as one line and exits 2
    # A rank exits 0 when stopped: a launcher (torchrun, accelerate) takes any other code for a crash
    # and kills the other ranks; the process that started the ranks returns the stopped code.
    return exit_code_for(outcome.state) if not under_launcher() or outcome.state == "failed" else 0


def write_run_summary(run_dir: Path, report: Report) -> None:
    """results.json and the run's model card (README.md) at the run root; never fails the run."""
    try:
        write_results(run_dir)
        write_run_card(run_dir)
    except Exception as error:  # a summary is a nicety; the run's own state is already written
        report(f"note: could not write results.json and README.md: {type(error).__name__}: {error}")


def _record_failure(run_dir: Path, config: "RunConfig", reason: str) -> None:
    """Mark a run failed before training began (so it never reads as a dead "starting" run)."""
    status = read_status(run_dir, as_written=True) or RunStatus(name=config.name)
    status.state, status.reason, status.pid = "failed", reason, os.getpid()
    write_status(run_dir, status)
    EventLog(run_dir).append("end", state="failed", reason=reason, measured_peak_bytes=None)


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "CUDA out of memory" in str(error)


def _train(
    config: "RunConfig",
    run_dir: Path,
    resume: bool,
    status: RunStatus,
    request: StopRequest,
    outcome: RunOutcome,
    report: Report,
    rank: int,
    world: int,
    scope: contextlib.ExitStack,
):
    """Everything between start-up and the final adapter; returns the resource probe.

    `scope` holds what lasts until training ends (the trackers' environment).
    """
    import torch

    is_main = rank == 0
    quiet: Report = report if is_main else (lambda line: None)
    quiet_transformers()
    on_gpu = torch.cuda.is_available() and not config.devices.use_cpu
    cpu_share = None
    if not on_gpu:  # claimed from the start, so chat takes its smaller share while the model loads too

        cpu_share = scope.enter_context(trainer_share(processes=world))
        scope.enter_context(environment_set(cpu_training_environment()))
    check_method_supported(config, on_gpu)
    probe = ResourceProbe(on_gpu)
    estimate = memory_estimate(config)
    status.estimated_peak_bytes = estimate[0].total_bytes if estimate else None

    resolved = resolve_model(config.model.name_or_path)
    # data.chat_template applied, its missing tokens added; saved with every checkpoint (processing_class)
    prepared = load_run_tokenizer(config)
    tokenizer = prepared.tokenizer
    for note in prepared.notes():
        quiet(note)
    data = prepare_data(config, tokenizer, quiet)
    max_seq_length = config.data.max_seq_length
    if config.data.packing:
        train_rows, eval_rows = pack_samples(data.train, max_seq_length), pack_samples(data.eval, max_seq_length)
        quiet(f"packing: {len(data.train):,} samples into {len(train_rows):,} rows of up to {max_seq_length} tokens "
              f"({data.train_tokens / (len(train_rows) * max_seq_length):.0%} full)")
    else:
        train_rows, eval_rows = single_sample_rows(data.train), single_sample_rows(data.eval)

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    facts = run_facts(config, run_dir, on_gpu=on_gpu, world_size=world, has_eval=bool(eval_rows), local_rank=local_rank)
    precision = facts.precision
    quiet(f"model: {resolved.display_name} · {config.method.type} · {precision.label} · "
          f"{'GPU' if on_gpu else 'CPU'} × {world}")
    model = build_training_model(
        config, resolved, facts, vocab_size=len(tokenizer), new_token_ids=prepared.new_token_ids
    )
    trainable, total = parameter_counts(model)
    compute_dtype = torch_dtype(precision.compute)

    # the kernel the model was loaded with decides how packed rows mark their samples
    collator_options = {"attn_implementation": run_attention(config, facts), "mask_dtype": compute_dtype}
    train_collator = RowCollator(tokenizer.pad_token_id, packed=config.data.packing, **collator_options)
    eval_collator = RowCollator(tokenizer.pad_token_id, packed=config.data.packing, **collator_options)

    checkpoint = None
    tracker_state = TrackerState()
    if resume:
        checkpoint = _resume_checkpoint(run_dir, quiet)
        if checkpoint is not None:
            tracker_state = TrackerState.read(checkpoint)
        # What happened after the checkpoint (evals, a save cut short) is replayed, so forget it.
        best = tracker_state.best_step
        status.best_eval_loss = tracker_state.best_eval_loss
        status.best_checkpoint = checkpoint_relpath(best) if best is not None else None
        status.last_checkpoint = str(checkpoint.relative_to(run_dir)) if checkpoint else None
        status.step = _checkpoint_step(checkpoint)
    args = build_training_arguments(config, facts)
    own = workbench_trainer_kwargs(config, facts)

    trainer_class = workbench_trainer_class()
    scope.enter_context(tracking_environment_set(config, facts))
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        data_collator=train_collator,
        processing_class=tokenizer,
        eval_rows=eval_rows,
        eval_collator=eval_collator,
        neftune_alpha=own["neftune_alpha"],
    )
    if is_main:
        record_arguments(run_dir, config, facts, args, model, own)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    StopControl, EvalTracker, CheckpointKeeper, RunRecorder = callback_classes()
    trainer_ref = lambda: trainer  # noqa: E731 - callbacks are built before they can hold the trainer
    tracker = EvalTracker(own["early_stopping_patience"], outcome, tracker_state)
    info = RecorderInfo(
        start_fields={
            "num_train_samples": len(data.train),
            "num_eval_samples": len(data.eval),
            "num_train_rows": len(train_rows),
            "packing": config.data.packing,
            "train_tokens_per_epoch": data.train_tokens,
            "data_sources": data.sources,
            "world_size": world,
            "device": _device_label(on_gpu),
            "precision": precision.label,
            "method": config.method.type,
            "trainable_params": trainable,
            "total_params": total,
            "estimated_peak_bytes": status.estimated_peak_bytes,
            "resumed_from_step": _checkpoint_step(checkpoint),
            "chat_template": prepared.choice.name,
            "added_tokens": list(prepared.added_tokens),
        },
        prompts=list(config.prompts),
        system_prompt=config.data.system_prompt,
        sample_max_new_tokens=config.evaluation.sample_max_new_tokens,
        expected=deck_expectations(config.prompts, config.evaluation.deck_expected),
    )
    recorder = RunRecorder(run_dir, status, info, tracker, probe, trainer_ref, quiet)
    keeper = CheckpointKeeper(run_dir, tracker, own["keep_checkpoints"], recorder.checkpoint_complete)
    for callback in (StopControl(request, outcome, trainer_ref), tracker, keeper, recorder):
        trainer.add_callback(callback)
    if cpu_share is not None:
        trainer.add_callback(_follow_cpu_budget(cpu_share))

    if request.requested:
        outcome.state, outcome.reason = "stopped", "stopped on request before the first step"
        return probe
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if outcome.state != "failed":
        _write_final_model(trainer, run_dir, config, tracker.state.best_step, is_main, quiet)
    return probe


def _checkpoint_step(checkpoint: Optional[Path]) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0


def _device_label(on_gpu: bool) -> str:
    if not on_gpu:
        return "cpu"
    import torch

    index = torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}"


def _resume_checkpoint(run_dir: Path, report: Report) -> Optional[Path]:
    """The last complete checkpoint; folders of saves cut short are removed first (rank 0)."""
    rank, _ = distributed_rank()
    if rank == 0:
        for removed in remove_incomplete_checkpoints(run_dir):
            report(f"resume: removed incomplete checkpoint {removed.name}")
    complete = complete_checkpoints(run_dir)
    if not complete:
        report("resume: no complete checkpoint yet; training starts from step 0")
        return None
    report(f"resume: continuing from {complete[-1].relative_to(run_dir)}")
    return complete[-1]


@contextlib.contextmanager
def environment_set(wanted: Mapping[str, str]):
    """`wanted` in the process's environment while the block runs; what was there comes back afterwards."""
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def tracking_environment_set(config: "RunConfig", facts):
    """The trackers' environment (`hf_arguments.tracking_environment`) while training runs
    (TensorBoard's callback reads it when Trainer is built, W&B's and MLflow's when training
    begins)."""
    wanted = {
        name: value for name, value in tracking_environment(config, facts).items()
        if name in OVERRIDING_ENVIRONMENT or name not in os.environ
    }
    if wanted:
        Path(facts.logging_dir).mkdir(parents=True, exist_ok=True)
    return environment_set(wanted)


def record_arguments(run_dir: Path, config: "RunConfig", facts, args, model, own: dict) -> None:
    """training_args.json: what the Trainer got, as JSON (Trainer's own training_args.bin in each
    checkpoint is a pickle). The LoraConfig and quantization config are read back from the model."""
    import json

    lora = getattr(model, "peft_config", {}).get("default")
    loading = dict(from_pretrained_kwargs(config, facts))
    quantization = getattr(model.config, "quantization_config", None)
    if quantization is not None:
        loading["quantization_config"] = quantization
    record = arguments_record(args, lora, loading, own)
    target = run_dir / TRAINING_ARGS_FILE
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)


def _write_final_model(trainer, run_dir: Path, config: "RunConfig", best_step: Optional[int], is_main: bool, report: Report) -> None:
    """adapter/: the best checkpoint's weights when load_best_model_at_end, else the current ones.

    Built in a temporary folder and renamed into place, so adapter/ is always whole.
    """
    final = run_dir / FINAL_ADAPTER_DIR
    staging = run_dir / f".{FINAL_ADAPTER_DIR}.partial"
    best = run_dir / CHECKPOINTS_DIR / f"checkpoint-{best_step}" if best_step is not None else None
    use_best = config.evaluation.load_best_model_at_end and best is not None and (best / CHECKPOINT_COMPLETE_MARKER).is_file()
    if is_main:
        shutil.rmtree(staging, ignore_errors=True)
    if use_best:
        if is_main:
            shutil.copytree(best, staging, ignore=lambda _folder, names: [n for n in names if is_resume_only_file(n)])
    else:
        trainer.save_model(str(staging))  # every rank calls it; only rank 0 writes
    if not is_main:
        return
    previous = run_dir / f".{FINAL_ADAPTER_DIR}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    if final.exists():
        os.replace(final, previous)  # a directory cannot be renamed over a non-empty one
    os.replace(staging, final)
    shutil.rmtree(previous, ignore_errors=True)
    source = f"best checkpoint (step {best_step})" if use_best else "final weights"
    report(f"saved {FINAL_ADAPTER_DIR}/ from the {source}")


def preflight(config: "RunConfig", source: str, report: Report) -> None:
    """Refuse a config that cannot train here before any run directory exists; print its warnings."""
    problems = check_config(config)
    errors = [problem.line(source) for problem in problems if problem.is_error]
    if errors:
        raise ConfigError(errors)
    for problem in problems:
        report(problem.line(source))


def _follow_cpu_budget(share):
    """A callback that re-reads the CPU budget at every step (workbench/cpu_budget.py), so the
    trainer gives chat its share while chat answers and takes every core back after."""
    from transformers import TrainerCallback

    class FollowCpuBudget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            share.refresh(force=True)

        def on_step_begin(self, args, state, control, **kwargs):
            share.refresh()

        on_substep_end = on_prediction_step = on_step_begin

    return FollowCpuBudget()
