"""The demo without a screen: clean the messy sample data, train the quick demo in a child process,
then ask the base and the fine-tuned model the same questions.

`workbench demo --headless` prints what `run_demo` reports; `bench/demo_identity.py` times it; the
guided tour in the TUI runs the same steps through the panes. Every stage reports through a
callback, so the caller decides where the words go.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from workbench.data.token_lengths import load_data_tokenizer
from workbench.demo.cleaning import clean_for_demo
from workbench.demo.heldout import HELDOUT_MAX_NEW_TOKENS, read_heldout, score_heldout
from workbench.errors import WorkbenchError
from workbench.evaluation.knowledge import read_choice_items
from workbench.evaluation.report import eval_dir
from workbench.inference.deck import read_prompt_file
from workbench.inference.engine import ChatEngine, GenerationJob
from workbench.inference.prompting import build_messages
from workbench.inference.settings import DEFAULT_DECK_BATCH_SIZE, SamplingSettings
from workbench.inference.sources import BASE_SOURCE, run_source
from workbench.paths import runs_dir
from workbench.runs.launch import start_run, stop_run, wait_for_end
from workbench.runs.monitor import RunView
from workbench.runs.rundir import ACTIVE_STATES, EventTail, read_status
from workbench.units import format_duration

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig
    from workbench.demo.cleaning import DemoCleaning
    from workbench.demo.heldout import HeldoutScore
    from workbench.runs.rundir import RunStatus

Report = Callable[[str], None]

SAMPLE_DATA_DIR = Path(__file__).resolve().parents[2] / "sample_data"
MESSY_DATA_FILE = SAMPLE_DATA_DIR / "messy_identity.jsonl"
DEMO_PROMPTS_FILE = SAMPLE_DATA_DIR / "demo_prompts.txt"
HELDOUT_FILE = SAMPLE_DATA_DIR / "identity_heldout.jsonl"
KNOWLEDGE_FILE = SAMPLE_DATA_DIR / "general_knowledge.jsonl"
DEMO_DATA_DIR_NAME = "demo-data"
"""The cleaned file and its recipe go to <runs dir>/demo-data/ (never next to the sample file)."""
DECK_MAX_NEW_TOKENS = 64
PROGRESS_EVERY_S = 10.0
"""A progress line at most this often (plus one per evaluation)."""
STOP_GRACE_S = 120.0
"""After asking the trainer to stop, how long it may take to save its checkpoint and adapter."""


@dataclass
class DemoOptions:
    """What the headless demo runs on; tests shrink the model, the data and the steps.

    Attributes:
        data_file: the messy data to check and clean.
        prompts_file: the prompt deck for the before/after comparison (one prompt per line).
        heldout_file: held-out questions with expected answers (None: skip the hit rates).
        knowledge_file: the multiple-choice forgetting check asked with them (None: skip it).
        model: the base model ("default" = SmolLM2-135M-Instruct, or a local directory).
        runs_dir: where the run directory goes (None: ./runs or $WORKBENCH_RUNS_DIR).
        work_dir: where the cleaned data goes (None: <runs_dir>/demo-data).
        epochs / max_steps: shrink or stretch the training.
        max_minutes: stop training after this long and compare with what it learned so far.
        max_new_tokens: the longest deck answer; held-out answers use HELDOUT_MAX_NEW_TOKENS or less.
        overrides: more dotted config fields over the demo's (bench experiments).
    """

    data_file: Path = MESSY_DATA_FILE
    prompts_file: Path = DEMO_PROMPTS_FILE
    heldout_file: Optional[Path] = HELDOUT_FILE
    knowledge_file: Optional[Path] = KNOWLEDGE_FILE
    model: str = "default"
    runs_dir: Optional[Path] = None
    work_dir: Optional[Path] = None
    epochs: Optional[float] = None
    max_steps: Optional[int] = None
    max_minutes: Optional[float] = None
    max_new_tokens: int = DECK_MAX_NEW_TOKENS
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComparedAnswer:
    prompt: str
    base: str
    tuned: str


@dataclass
class TrainingOutcome:
    run_dir: Path
    status: "RunStatus"
    seconds: float
    stopped_at_limit: bool


@dataclass
class DemoResult:
    cleaning: "DemoCleaning"
    config: "RunConfig"
    training: TrainingOutcome
    comparison: list[ComparedAnswer]
    heldout: Optional["HeldoutScore"]
    compare_seconds: float


def demo_work_dir(options: DemoOptions) -> Path:
    return Path(options.work_dir) if options.work_dir else runs_dir(options.runs_dir) / DEMO_DATA_DIR_NAME


def prepare_demo_data(options: DemoOptions, report: Report) -> tuple["DemoCleaning", "RunConfig"]:
    """Check and clean the messy file (with the model's tokenizer and the demo's limits); the config to train on it."""
    from workbench.demo.config import demo_config  # cycle: demo.config -> demo.pipeline

    draft = demo_config(options.data_file, model=options.model, overrides=options.overrides)
    model_name, tokenizer = load_data_tokenizer(None if options.model == "default" else options.model)
    cleaning = clean_for_demo(
        options.data_file,
        demo_work_dir(options),
        tokenizer,
        max_seq_length=draft.data.max_seq_length,
        system_prompt=draft.data.system_prompt,
        model_name=model_name,
    )
    loaded = cleaning.loaded
    report(f"{loaded.path}: {loaded.rows:,} rows ({loaded.format})")
    problems = cleaning.problem_lines()
    report("  problems found:" if problems else "  no problems found")
    for line in problems:
        report(f"    {line}")
    report("  cleaning (the Data pane's steps):")
    for line in cleaning.step_lines():
        report(f"    {line}")
    export = cleaning.export
    report(f"  wrote {export.train_path} ({export.train_rows:,} rows) and {export.recipe_path.name}")
    config = demo_config(
        export.train_path, model=options.model, epochs=options.epochs, max_steps=options.max_steps,
        overrides=options.overrides,
    )
    return cleaning, config


def describe_config(config: "RunConfig") -> str:
    o, m, d = config.optimization, config.method, config.data
    length = f"{o.max_steps} steps" if o.max_steps > 0 else f"{o.num_train_epochs:g} epochs"
    return (
        f"{m.type} r={m.r} on {m.target_modules if isinstance(m.target_modules, str) else ','.join(m.target_modules)}, "
        f"lr {o.learning_rate:.1e}".replace("e-0", "e-") + f", {length}, batch {o.per_device_train_batch_size} packed rows of "
        f"{d.max_seq_length} tokens, system prompt {d.system_prompt!r}"
    )


def _progress_line(view) -> str:
    parts = [f"step {view.step}/{view.max_steps or '?'}"]
    loss = view.train_loss_smoothed.last()
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    if view.latest_tokens_per_s:
        parts.append(f"{view.latest_tokens_per_s:.0f} tokens/s")
    if view.eta_s is not None:
        parts.append(f"{format_duration(view.eta_s)} left")
    return "  " + " · ".join(parts)


def train_demo(config: "RunConfig", options: DemoOptions, report: Report) -> TrainingOutcome:
    """Start the trainer as a child process (launch.start_run), follow its events, wait for the end.

    Ctrl-C or the --max-minutes limit asks the trainer to stop (it saves a checkpoint and an adapter first).
    """
    started = time.monotonic()
    run_dir = start_run(config, options.runs_dir)
    report(f"  run directory: {run_dir}")
    view, tail = RunView(run_dir), EventTail(run_dir)
    deadline = started + options.max_minutes * 60 if options.max_minutes else None
    stopped_at_limit = False
    last_line, last_step = 0.0, -1
    try:
        while True:
            events = tail.read_new()
            view.apply(events)
            for event in events:
                if event.get("event") == "start":
                    report(
                        f"  training {event.get('num_train_samples')} samples ({event.get('train_tokens_per_epoch'):,} "
                        f"tokens an epoch) for {event.get('max_steps')} steps; "
                        f"{event.get('trainable_params'):,} of {event.get('total_params'):,} weights learn"
                    )
                elif event.get("event") == "eval":
                    report(f"{_progress_line(view)} · eval loss {event['eval_loss']:.3f}")
                    last_line, last_step = time.monotonic(), view.step
            if view.latest_train and view.step != last_step and time.monotonic() - last_line >= PROGRESS_EVERY_S:
                report(_progress_line(view))
                last_line, last_step = time.monotonic(), view.step
            status = read_status(run_dir)
            if status is not None and status.state not in ACTIVE_STATES:
                break
            if deadline is not None and time.monotonic() > deadline and not stopped_at_limit:
                report(f"  the {options.max_minutes:g}-minute limit is up: asking the trainer to stop and save")
                stop_run(run_dir)
                stopped_at_limit = True
                status = wait_for_end(run_dir, STOP_GRACE_S)
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        report("  interrupted: asking the trainer to save a checkpoint and stop")
        stop_run(run_dir)
        wait_for_end(run_dir, STOP_GRACE_S)
        raise
    seconds = time.monotonic() - started
    view.apply(tail.read_new())
    status = read_status(run_dir)
    if status is None or status.state not in ("completed", "stopped"):
        state = status.state if status else "unknown"
        reason = status.reason if status and status.reason else "no reason recorded"
        raise WorkbenchError(f"{run_dir}: training {state}: {reason} (see {run_dir / 'trainer.log'})")
    report(f"  training {status.state} in {format_duration(seconds)} at step {view.step}/{view.max_steps or '?'}")
    return TrainingOutcome(run_dir, status, seconds, stopped_at_limit)


def load_engine(model: str) -> "ChatEngine":
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return ChatEngine.load(model)


def compare_on_deck(
    engine: "ChatEngine", run_dir: Path, prompts: list[str], system_prompt: Optional[str], max_new_tokens: int
) -> list[ComparedAnswer]:
    """Base and fine-tuned answers to every prompt, greedy, in batches of prompt × model rows (the Chat pane's engine)."""
    tuned = run_source(run_dir)
    engine.attach(tuned)
    settings = SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens)
    jobs = []
    for prompt in prompts:
        messages = build_messages(system_prompt, [], prompt)
        jobs += [GenerationJob(BASE_SOURCE, messages, settings), GenerationJob(tuned, messages, settings)]
    answers = engine.generate(jobs, batch_size=DEFAULT_DECK_BATCH_SIZE)
    return [
        ComparedAnswer(prompt, answers[2 * i].text.strip(), answers[2 * i + 1].text.strip())
        for i, prompt in enumerate(prompts)
    ]


def run_demo(options: DemoOptions, report: Report = print) -> DemoResult:
    """Clean -> train -> compare, reporting as it goes."""
    prompts = read_prompt_file(options.prompts_file)
    questions = read_heldout(options.heldout_file) if options.heldout_file else []

    report("1/3 Data: find the problems, clean them")
    cleaning, config = prepare_demo_data(options, report)

    report("2/3 Training: LoRA on the cleaned data")
    report(f"  {describe_config(config)}")
    training = train_demo(config, options, report)

    report("3/3 Before and after: the same questions to the base and the fine-tuned model")
    started = time.monotonic()
    engine = load_engine(options.model)
    system_prompt = config.data.system_prompt
    comparison = compare_on_deck(engine, training.run_dir, prompts, system_prompt, options.max_new_tokens)
    for index, row in enumerate(comparison, start=1):
        report(f"## {index}/{len(comparison)}  {row.prompt}")
        report(f"  [base]  {_flat(row.base)}")
        report(f"  [tuned] {_flat(row.tuned)}")
    heldout = None
    if questions:
        knowledge = read_choice_items(options.knowledge_file) if options.knowledge_file else []
        report(
            "Held-out questions (never in the training data)"
            + (f" and {len(knowledge)} general-knowledge questions (forgetting check)" if knowledge else "")
            + ":"
        )
        heldout = score_heldout(
            engine, run_source(training.run_dir), questions, system_prompt,
            min(HELDOUT_MAX_NEW_TOKENS, options.max_new_tokens),
            knowledge=knowledge, knowledge_file=options.knowledge_file, out_dir=eval_dir(training.run_dir),
        )
        for line in heldout.summary_lines():
            report(f"  {line}")
        if heldout.headline():
            report("  " + ", ".join(heldout.headline()))
        report(f"  (rows and answers: {eval_dir(training.run_dir) / 'report.md'}; workbench eval RUN asks more)")
    compare_seconds = time.monotonic() - started
    report(f"Run directory: {training.run_dir}")
    return DemoResult(cleaning, config, training, comparison, heldout, compare_seconds)


def _flat(text: str) -> str:
    return " ".join(text.split())
