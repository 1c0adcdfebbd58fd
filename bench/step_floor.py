"""Where a LoRA training step's time goes on this machine, and the floor its kernels put under the
share of the shape-matched ceiling that `bench/train_throughput.py` reports.

The ceiling times the model's own linear layers at the run's tokens per step, each shape hot in
cache (best of a few back to back). A real step cannot do better than the same matmuls run once
each on the model's own weights, in layer order, plus the attention kernel it calls; the rest of
the step (norms, rotary, activations, the adapters' update, the loss, the optimizer) only adds. So

    floor share = ceiling step time / (matmuls in a step + attention)

is the most any implementation built on these kernels (PyTorch's matmul and scaled-dot-product
attention on this CPU) can reach. Cases, on the quick-demo-cpu preset's model, precision and
packed rows (the first batch of the preset's own data):

    step        forward, backward and the AdamW step as the trainer runs them (logits only at
                trained positions; without Trainer's bookkeeping, clipping and logging)
    frozen      the same forward and backward with the adapters off (backward down to the
                embeddings' output): what the base model itself costs; step - frozen is the adapters
    matmuls     every linear layer's forward x·Wᵀ and backward g·W on the model's own weights, in
                layer order, with the output layer at every position (as the ceiling counts it)
    attention   the attention kernel as the model calls it (transformers' sdpa path, the batch's
                block mask), forward and backward, once per decoder layer
    ceiling     the shape-matched ceiling itself, in the same round

The host's speed drifts by tens of percent within seconds (the ceiling alone by 1.5x between two
measurements a minute apart), so one round runs every case once in a rotating order, each case's
share is taken against the ceiling of its own round, and the median over the rounds is reported.
Runs under the workbench's allocator and thread policy.

    .venv/bin/python bench/step_floor.py [--rounds 12]
    .venv/bin/python bench/step_floor.py --model TINY_DIR --rounds 2      # does it run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

CASES = ("step", "frozen", "matmuls", "attention", "ceiling")
TIMED_CASES = CASES[:-1]
HOT_REPEATS = 4
"""The ceiling case times each shape this many times back to back and keeps the best (hot in cache)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default=str(ROOT / "sample_data" / "identity_alpaca.json"))
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()

    cases = started_cases(args.model, args.data)
    for _ in range(2):  # warm-up: the first steps of a process run slow
        for case in CASES:
            cases.run(case)
    seconds: dict[str, list[float]] = {case: [] for case in CASES}
    for number in range(args.rounds):
        shift = number % len(CASES)
        for case in CASES[shift:] + CASES[:shift]:
            started = time.perf_counter()
            measured = cases.run(case)
            seconds[case].append(measured if measured is not None else time.perf_counter() - started)
    seconds["floor"] = [m + a for m, a in zip(seconds["matmuls"], seconds["attention"])]

    # shares within each round (a case against the ceiling measured beside it), then their median
    shares = {case: [c / t for c, t in zip(seconds["ceiling"], seconds[case])] for case in (*TIMED_CASES, "floor")}
    ceiling_rate = cases.rows / statistics.median(seconds["ceiling"])
    print(f"shape-matched bf16 ceiling, measured in every round: {ceiling_rate:.0f} tokens/s (median; "
          f"{cases.rows / max(seconds['ceiling']):.0f}-{cases.rows / min(seconds['ceiling']):.0f}); "
          f"{args.rounds} rounds, load {os.getloadavg()[0]:.2f}")
    print("| case | ms (median) | range | of the ceiling, per round (median) | range |")
    print("|---|---:|---:|---:|---:|")
    for case in (*TIMED_CASES, "floor"):
        values = seconds[case]
        label = "matmuls + attention (the floor)" if case == "floor" else case
        print(f"| {label} | {statistics.median(values) * 1e3:.0f} | {min(values) * 1e3:.0f}-{max(values) * 1e3:.0f} "
              f"| {statistics.median(shares[case]):.0%} | {min(shares[case]):.0%}-{max(shares[case]):.0%} |")
    adapters = [s - f for s, f in zip(seconds["step"], seconds["frozen"])]
    rest = [f - m for f, m in zip(seconds["frozen"], seconds["floor"])]
    print(f"\nper round (median): the adapters and the optimizer (step - frozen) "
          f"{statistics.median(adapters) * 1e3:.0f} ms, {statistics.median([a / s for a, s in zip(adapters, seconds['step'])]):.0%} "
          f"of a step; the frozen model's other work (frozen - floor) {statistics.median(rest) * 1e3:.0f} ms", flush=True)
    return 0


def started_cases(model_name: str, data: str) -> "StepCases":
    """The cases, in a process set up as the trainer's (its allocator, restarting under it when
    needed, and its thread policy); prints the machine line every output starts with."""
    from workbench.allocator import reexec_script_with_allocator, tuned_allocator_loaded

    reexec_script_with_allocator()
    from workbench.cpu_budget import prepare_process

    prepare_process()
    import torch

    from train_throughput import cpu_model

    cases = StepCases(model_name, data)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {cpu_model()} · {os.cpu_count()} cores · "
          f"{torch.get_num_threads()} threads · allocator {'mimalloc' if tuned_allocator_loaded() else 'system'} · "
          f"{cases.precision} · {cases.rows} tokens per step ({cases.real_tokens} real) · "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    return cases


class StepCases:
    """The quick-demo-cpu run's model, one batch of its packed rows, and each case as a callable."""

    def __init__(self, model_name: str, data: str) -> None:
        import torch

        from workbench.config.hf_arguments import run_facts, torch_dtype
        from workbench.config.presets import QUICK_DEMO
        from workbench.data.chat_templates import load_run_tokenizer
        from workbench.models import quiet_transformers, resolve_model
        from workbench.training.examples import prepare_data
        from workbench.training.model_setup import build_training_model
        from workbench.training.packing import RowCollator, pack_samples
        from workbench.training.trainer import TrainedPositionLogits, pop_batch_extras

        quiet_transformers()
        config = QUICK_DEMO.config()
        config.model.name_or_path = model_name
        config.data.train_file = str(Path(data).resolve())
        config.data.validation_split = 0.0
        tokenizer = load_run_tokenizer(config).tokenizer
        prepared = prepare_data(config, tokenizer, lambda line: None)
        rows = pack_samples(prepared.train, config.data.max_seq_length)
        facts = run_facts(config, tempfile.mkdtemp(prefix="step-floor-"), on_gpu=False, world_size=1, has_eval=False)
        self.precision = facts.precision.label
        self.compute_dtype = torch_dtype(facts.precision.compute)
        self.autocast = facts.precision.autocast
        self.model = build_training_model(config, resolve_model(model_name), facts, vocab_size=len(tokenizer))
        self.model_config = self.model.get_base_model().config
        collate = RowCollator(tokenizer.pad_token_id, packed=True, attn_implementation="sdpa", mask_dtype=self.compute_dtype)
        batch = collate(rows[: config.optimization.per_device_train_batch_size])
        self.real_tokens = int(pop_batch_extras(batch)[0])
        self.batch = batch
        self.rows = batch["input_ids"].numel()
        self.trained_logits = TrainedPositionLogits(self.model)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=config.optimization.learning_rate, fused=True)  # as adamw_torch runs
        embeddings = self.model.get_input_embeddings()
        embeddings.register_forward_hook(lambda _module, _inputs, output: output.requires_grad_(True))
        self._matmul_inputs = self._matmul_case()
        self._attention_inputs = self._attention_case()
        self._ceiling_inputs = self._ceiling_case()

    def _autocast(self):
        import torch

        return torch.autocast("cpu", dtype=self.compute_dtype, enabled=self.autocast is not None)

    def run(self, case: str) -> float | None:
        """Runs one case; the ceiling returns its own time (the sum of best times), the others None."""
        return getattr(self, "_" + case)()

    def _loss(self):
        total, count, _ = self.trained_logits.loss_sum(self.model, dict(self.batch))
        return total / count

    def loss_and_gradients(self) -> tuple[float, list]:
        """One batch's loss and the trained tensors' gradients, with no optimizer step."""
        with self._autocast():
            loss = self._loss()
        loss.backward()
        gradients = [p.grad.detach().clone() for p in self.model.parameters() if p.requires_grad]
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), gradients

    def _step(self) -> None:
        with self._autocast():
            loss = self._loss()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _frozen(self) -> None:
        with self.model.disable_adapter(), self._autocast():
            loss = self._loss()
        loss.backward()
        self.optimizer.zero_grad(set_to_none=True)

    def _matmul_case(self):
        """Each linear layer's frozen weight in the dtype it computes in, with an input and an output gradient."""
        import torch

        base = self.model.get_base_model()
        # the frozen layers (a LoRA layer's base_layer), not the adapters' own small Linear modules
        weights = [module.weight.detach().to(self.compute_dtype) for name, module in base.model.layers.named_modules()
                   if isinstance(module, torch.nn.Linear) and "lora_" not in name]
        weights.append(base.get_output_embeddings().weight.detach().to(self.compute_dtype))
        inputs = {width: torch.randn(self.rows, width, dtype=self.compute_dtype)
                  for width in {size for weight in weights for size in weight.shape}}
        return weights, inputs

    def _matmuls(self) -> None:
        import torch

        weights, inputs = self._matmul_inputs
        with torch.no_grad():
            for weight in weights:
                torch.nn.functional.linear(inputs[weight.shape[1]], weight)
            for weight in reversed(weights):
                inputs[weight.shape[0]] @ weight

    def _attention_case(self):
        import torch

        config = self.model_config
        batch, length = self.batch["input_ids"].shape
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        layers = self.model.get_base_model().model.layers
        modules = [layer.self_attn for layer in layers]

        def tensor(heads):
            return torch.randn(batch, heads, length, head_dim, dtype=self.compute_dtype, requires_grad=True)

        query, key, value = tensor(config.num_attention_heads), tensor(config.num_key_value_heads), tensor(config.num_key_value_heads)
        gradient = torch.randn(batch, length, config.num_attention_heads, head_dim, dtype=self.compute_dtype)
        return modules, query, key, value, gradient

    def _attention(self) -> None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        modules, query, key, value, gradient = self._attention_inputs
        for module in modules:
            with self._autocast():
                output, _ = sdpa_attention_forward(module, query, key, value, self.batch["attention_mask"],
                                                   scaling=module.scaling)
            output.backward(gradient)

    def _ceiling_case(self):
        """What `bench/train_throughput.py`'s shape-matched ceiling times: (input, weight, output gradient, count) per shape."""
        import torch

        from train_throughput import model_linear_shapes

        def tensor(*shape):
            return torch.randn(*shape, dtype=self.compute_dtype)

        return [(tensor(self.rows, k), tensor(n, k), tensor(self.rows, n), count)
                for k, n, count in model_linear_shapes(self.model_config)]

    def _ceiling(self) -> float:
        import torch

        total = 0.0
        with torch.no_grad():
            for x, weight, gradient, count in self._ceiling_inputs:
                best = float("inf")
                for _ in range(HOT_REPEATS):
                    started = time.perf_counter()
                    torch.nn.functional.linear(x, weight)
                    gradient @ weight
                    best = min(best, time.perf_counter() - started)
                total += count * best
        return total


if __name__ == "__main__":
    raise SystemExit(main())

