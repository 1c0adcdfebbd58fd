"""transformers' Trainer, adjusted where the workbench needs exact numbers.

- Token counts come from the collator (non-padding tokens), not from a 2D attention mask that packed
  batches do not have.
- Eval loss is the token-weighted mean over the whole validation set (Trainer's own loop averages
  per-batch means), so packed and padded evaluations agree and the best checkpoint is chosen on the
  true loss.
- NEFTune scales its noise per sample (alpha / sqrt(sample length · hidden size)); transformers'
  built-in hook uses the row length, which is wrong when a row packs several samples.
- Logits are computed only at positions whose next token is trained (`TrainedPositionLogits`): with
  assistant-only loss most positions are prompt, and the output layer plus the softmax over a large
  vocabulary are a large share of both time and memory for small models.
- A non-finite loss is noticed at the step it happens.
- Time spent evaluating and saving is tracked, so throughput counts training time only.
- `torch_compile` compiles the repeated layers only (regional compilation), once.

transformers is imported lazily: the class is built on first use by `workbench_trainer_class()`.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from workbench.training.packing import REAL_TOKENS_KEY, SAMPLE_LENGTHS_KEY


def pop_batch_extras(inputs: dict[str, Any]) -> tuple[Any, Any]:
    """Remove the collator's bookkeeping keys before the forward pass: (real token count, per-token sample lengths)."""
    return inputs.pop(REAL_TOKENS_KEY, None), inputs.pop(SAMPLE_LENGTHS_KEY, None)


class TrainedPositionLogits:
    """Makes the output layer see only the hidden states whose next token carries a label.

    While `select` (batch, length - 1; True where labels[:, 1:] is trained) is set, a forward
    pre-hook on the output embeddings replaces their input (batch, length, hidden) with the
    selected rows (n, hidden), so the model returns logits of shape (n, vocab) in label order.
    Anything the model does to logits afterwards (e.g. soft-capping) still applies.
    """

    def __init__(self, model) -> None:
        self.select = None
        self.installed = False
        output_layer = model.get_output_embeddings()
        if output_layer is not None:
            output_layer.register_forward_pre_hook(self._keep_trained_positions)
            self.installed = True

    def _keep_trained_positions(self, _module, args):
        if self.select is None:
            return None
        hidden = args[0]
        return (hidden[:, :-1][self.select], *args[1:])

    def loss_sum(self, model, inputs: dict[str, Any]):
        """(sum of token losses, trained token count, model outputs) for a batch with `labels`."""
        import torch

        labels = inputs.pop("labels")
        targets = labels[:, 1:]
        self.select = targets != -100
        try:
            outputs = model(**inputs)
        finally:
            selected, self.select = self.select, None
        logits = outputs.logits
        total = torch.nn.functional.cross_entropy(logits.float(), targets[selected], reduction="sum")
        return total, selected.sum(), outputs


def neftune_noise_scale(token_sample_lengths, hidden_size: int, alpha: float):
    """Per-token NEFTune noise magnitude: alpha / sqrt(L · d) with L the token's own sample length
    (0 on padding), as if every sample were trained alone."""
    import torch

    lengths = token_sample_lengths.to(torch.float32)
    scale = alpha / torch.sqrt(lengths.clamp(min=1) * hidden_size)
    return torch.where(token_sample_lengths > 0, scale, torch.zeros_like(scale))


@functools.cache
def workbench_trainer_class():
    import torch
    from transformers import Trainer

    class WorkbenchTrainer(Trainer):
        """Trainer with exact token accounting, token-weighted eval loss and per-sample NEFTune.

        Extra args:
            eval_rows: validation rows (lists of samples) for `evaluate`.
            eval_collator: turns eval rows into batches.
            neftune_alpha: NEFTune noise alpha, or None.
        """

        def __init__(self, *args, eval_rows=None, eval_collator=None, neftune_alpha=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.eval_rows = list(eval_rows or [])
            self.eval_collator = eval_collator
            self.neftune_alpha = neftune_alpha
            self.nonfinite_loss_seen = False
            self.pause_seconds = 0.0
            self._token_sample_lengths = None
            self.trained_logits = TrainedPositionLogits(self.model)
            if neftune_alpha:
                embeddings = self.model.get_input_embeddings()
                embeddings.register_forward_hook(self._neftune_hook)

        def _build_accelerator_args(self, **kwargs):
            # With torch_compile, compile the repeated decoder layers once (accelerate's regional
            # compilation) instead of the whole model: measured on the quick-demo-cpu config, the
            # whole model took 930 s to compile on 2 busy cores, the layers 100 s, and the steps
            # ran as fast after either (docs/benchmarks.md).
            arguments = super()._build_accelerator_args(**kwargs)
            plugin = arguments.get("dynamo_plugin")
            if plugin is not None and self.args.torch_compile:
                plugin.use_regional_compilation = True
            return arguments

        # -- loss and token accounting --------------------------------------------------------

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            _, self._token_sample_lengths = pop_batch_extras(inputs)
            try:
                if not self.trained_logits.installed:
                    result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
                    loss = result[0] if return_outputs else result
                else:
                    loss, outputs = self._trained_position_loss(model, inputs, num_items_in_batch)
                    result = (loss, outputs) if return_outputs else loss
            finally:
                self._token_sample_lengths = None
            if model.training and not torch.isfinite(loss.detach()).all():
                self.nonfinite_loss_seen = True
            return result

        def _trained_position_loss(self, model, inputs, num_items_in_batch):
            """The causal-LM loss scaled as Trainer scales the model's own (see Trainer.compute_loss)."""
            total, count, outputs = self.trained_logits.loss_sum(model, inputs)
            if num_items_in_batch is None:
                return total / count.clamp(min=1), outputs
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices:
                # gradients are averaged over ranks while num_items_in_batch counts all ranks' tokens
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            return loss, outputs

        def _track_num_input_tokens(self, inputs):
            real = inputs.get(REAL_TOKENS_KEY)
            if real is None:
                return super()._track_num_input_tokens(inputs)
            count = torch.as_tensor(real, device=self.args.device, dtype=torch.int64)
            self.state.num_input_tokens_seen += int(self.accelerator.gather(count).sum().item())

        def _neftune_hook(self, module, _inputs, output):
            lengths = self._token_sample_lengths
            if not module.training or lengths is None:
                return output
            scale = neftune_noise_scale(lengths.to(output.device), output.shape[-1], self.neftune_alpha)
            noise = torch.empty_like(output).uniform_(-1, 1)
            return output + noise * scale.unsqueeze(-1).to(output.dtype)

        # -- evaluation ---------------------------------------------------------------------

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            started = time.monotonic()
            try:
                if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                    # Sharded weights need the wrapped model; Trainer's loop handles that (per-batch mean).
                    return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
                loss_sum, token_count = self._token_weighted_eval_loss()
                metrics = {
                    f"{metric_key_prefix}_loss": loss_sum / max(token_count, 1),
                    f"{metric_key_prefix}_tokens": token_count,
                    f"{metric_key_prefix}_runtime": round(time.monotonic() - started, 4),
                }
                self.log(metrics)
                self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
                return metrics
            finally:
                self.pause_seconds += time.monotonic() - started

        def _token_weighted_eval_loss(self) -> tuple[float, int]:
            """Sum of token losses and token count over this rank's share of the validation rows, summed over ranks."""
            from torch.utils.data import DataLoader

            rank, world = self.args.process_index, self.args.world_size
            shard = self.eval_rows[rank::world]
            loader = DataLoader(shard, batch_size=self.args.per_device_eval_batch_size, collate_fn=self.eval_collator)
            model = self.model
            was_training = model.training
            model.eval()
            totals = torch.zeros(2, dtype=torch.float64, device=self.args.device)
            try:
                with torch.no_grad(), self.accelerator.autocast():
                    for batch in loader:
                        pop_batch_extras(batch)
                        batch = self._prepare_inputs(batch)
                        if self.trained_logits.installed:
                            loss_sum, count, _ = self.trained_logits.loss_sum(model, batch)
                        else:
                            count = (batch["labels"][..., 1:] != -100).sum()
                            loss_sum = model(**batch).loss * count if count else 0.0
                        totals[0] += loss_sum.double() if torch.is_tensor(loss_sum) else loss_sum
                        totals[1] += count
            finally:
                model.train(was_training)
            if world > 1:
                torch.distributed.all_reduce(totals)
            return float(totals[0]), int(totals[1])

        # -- checkpoints --------------------------------------------------------------------

        def _save_checkpoint(self, model, trial):
            started = time.monotonic()
            try:
                return super()._save_checkpoint(model, trial)
            finally:
                self.pause_seconds += time.monotonic() - started

    return WorkbenchTrainer
