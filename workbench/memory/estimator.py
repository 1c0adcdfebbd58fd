"""Training memory per device, component by component, from first principles.

The peak is weights + optimizer state + the larger of two phases:
- backward: saved activations plus the logits and their gradients (largest right at the start of
  the backward pass, when every layer's activations are still alive), and
- optimizer step: all gradients (every optimizer offered updates in place: fused AdamW, bitsandbytes'
  kernels and SGD build no temporaries).
Framework overhead (CUDA context, or the CPU process's own working memory) comes on top.

Activations are counted tensor by tensor for a Llama-style decoder layer as PyTorch autograd
saves them (see `_layer_activation_bytes_per_token`); `bench/memory_accuracy.py` checks the
result against measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from workbench.config.optimizers import OPTIMIZERS
from workbench.errors import WorkbenchError
from workbench.allocator import cpu_estimate_note
from workbench.memory.inputs import ALL_LINEAR, MemoryInputs
from workbench.memory.spec import LinearShape, ModelSpec
from workbench.units import MIB


# QLoRA: 4-bit codes plus one absmax per 64 weights, stored as fp32 (4.5 bits), or, with double
# quantization, as 8-bit codes plus one fp32 constant per 256 absmax values.
NF4_BITS = 4 + 32 / 64
NF4_DOUBLE_QUANT_BITS = 4 + 8 / 64 + 32 / (64 * 256)
# LLM.int8: one byte per weight plus an fp32 scale per output row.
INT8_SCALE_BYTES_PER_ROW = 4

# The CUDA context and kernel images live outside PyTorch's allocator (300-700 MB depending on
# the GPU and libraries loaded).
CUDA_CONTEXT_BYTES = 512 * MIB
# Memory a CPU training process needs beyond its tensors once torch is imported: the model code
# transformers imports on first use, per-thread OpenMP/oneDNN scratch and allocator bookkeeping.
# Measured: peak RSS of a toy model (hidden 32, vocab 256; tensors of a few KiB) over its baseline;
# see docs/benchmarks.md "## Memory".
CPU_FRAMEWORK_BYTES = 18 * MIB
# What a CPU training process holds besides its tensors: Python with PyTorch, transformers and its
# Trainer (which imports accelerate, datasets, pandas and pyarrow), PEFT, and the tokenizer. Counted
# in the CPU estimate, so the estimate is the whole process's peak RSS: the figure the trainer
# measures and the RAM check needs. Measured RSS after those imports and the default tokenizer
# (torch 2.13, transformers 5.23): 516 MiB under glibc, 557-567 MiB under mimalloc, the trainer's
# allocator (workbench/allocator.py; the bench's baseline column).
CPU_PROCESS_BASELINE_BYTES = 560 * MIB

# RoPE scaling recipes (YaRN, dynamic NTK) stretch a trained context by up to 4x (Qwen2.5 documents
# factor 4); beyond that the model has never seen such positions, so the question is not a real one.
CONTEXT_STRETCH_LIMIT = 4
# The longest context an open decoder publishes is about 1M positions; with no context length known,
# anything longer is refused as a typo.
UNKNOWN_CONTEXT_LIMIT = 2**20
# A per-device batch this large is a typo (recipes use a few to a few hundred sequences per device).
MAX_BATCH_SIZE = 4096

COMPONENTS = (
    "weights",
    "gradients",
    "optimizer state",
    "activations",
    "logits",
    "evaluation",
    "framework overhead",
)
_PHASES = {
    "backward": ("activations", "logits"),
    "optimizer step": ("gradients",),
    "evaluation": ("evaluation",),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device for one configuration, and how they add up to the peak.

    `total_bytes` is the peak: weights + optimizer state + framework overhead + the largest of three
    phases: backward (activations + logits), the optimizer step (gradients)
    and evaluation (its forward pass without gradients, at the evaluation batch).
    """

    spec: ModelSpec
    inputs: MemoryInputs
    trainable_params: int
    weights: int
    gradients: int
    optimizer_state: int
    activations: int
    logits: int
    framework_overhead: int
    evaluation: int = 0
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """Things to act on before training (e.g. a sequence past the model's context length)."""

    @property
    def backward_phase_bytes(self) -> int:
        return self.activations + self.logits

    @property
    def step_phase_bytes(self) -> int:
        return self.gradients

    def _phase_bytes(self) -> dict[str, int]:
        return {"backward": self.backward_phase_bytes, "optimizer step": self.step_phase_bytes,
                "evaluation": self.evaluation}

    @property
    def peak_phase(self) -> str:
        """'backward', 'optimizer step' or 'evaluation': which phase sets the peak (the first on a tie)."""
        phases = self._phase_bytes()
        return max(phases, key=phases.get)

    @property
    def total_bytes(self) -> int:
        return self.weights + self.optimizer_state + max(self._phase_bytes().values()) + self.framework_overhead

    def breakdown(self) -> dict[str, int]:
        """Every component's bytes, in a fixed order (the three phases are alternatives, see `at_peak`)."""
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer state": self.optimizer_state,
            "activations": self.activations,
            "logits": self.logits,
            "evaluation": self.evaluation,
            "framework overhead": self.framework_overhead,
        }

    def at_peak(self) -> dict[str, int]:
        """The components alive at the peak; they sum exactly to `total_bytes`."""
        skipped = {name for phase, names in _PHASES.items() if phase != self.peak_phase for name in names}
        return {name: value for name, value in self.breakdown().items() if name not in skipped}

    @property
    def persistent_bytes_per_param(self) -> float:
        """(weights + gradients + optimizer state) per model parameter: the figure rules of thumb quote."""
        return (self.weights + self.gradients + self.optimizer_state) / max(1, self.spec.total_params)


def selected_linears(spec: ModelSpec, targets: tuple[str, ...]) -> list[LinearShape]:
    """The decoder linears LoRA adapts: all of them for 'all-linear', else those named (PEFT's suffix match)."""
    if ALL_LINEAR in targets:
        return list(spec.linears)
    wanted = set(targets)
    unknown = wanted - {shape.name for shape in spec.linears}
    if unknown:
        raise WorkbenchError(
            f"lora targets: {', '.join(sorted(unknown))} not in {spec.name}; "
            f"its linear layers are {', '.join(dict.fromkeys(spec.linear_names()))} (or use all-linear)"
        )
    return [shape for shape in spec.linears if shape.name in wanted]


def lora_trainable_params(spec: ModelSpec, r: int, targets: tuple[str, ...], dora: bool = False) -> int:
    """r * (in + out) per adapted linear (A is r x in, B is out x r); DoRA adds a magnitude per output row."""
    total = 0
    for shape in selected_linears(spec, targets):
        total += r * (shape.in_features + shape.out_features) * shape.count
        if dora:
            total += shape.out_features * shape.count
    return total


def quantized_bits_per_weight(double_quant: bool) -> float:
    return NF4_DOUBLE_QUANT_BITS if double_quant else NF4_BITS


class _Regime:
    """Byte widths that follow from method and precision."""

    def __init__(self, inputs: MemoryInputs):
        fp32 = inputs.precision == "fp32"
        self.full = inputs.method == "full"
        # Tensors produced by matmuls: fp32, or 16-bit under autocast / pure half precision.
        self.compute = 4 if fp32 else 2
        # PEFT's k-bit preparation (prepare_model_for_kbit_training, which the trainer runs for
        # QLoRA) upcasts every parameter it does not quantize (embeddings, lm_head, norms) to fp32.
        self.kbit = inputs.method in ("qlora", "8bit-base")
        # The residual stream follows the weights of embeddings and norms: fp32 when those are fp32.
        self.stream = 4 if fp32 or (self.full and inputs.autocast) or self.kbit else 2
        # Trainable parameters: full fine-tuning in pure half precision trains 16-bit weights;
        # PEFT keeps adapters in fp32 whatever the base dtype.
        self.trainable = 2 if self.full and inputs.precision in ("bf16", "fp16") else 4
        self.frozen_dense = 4 if fp32 or self.kbit else 2


def _weights_bytes(spec: ModelSpec, inputs: MemoryInputs, regime: _Regime, trainable: int) -> int:
    if inputs.method == "full":
        weights = spec.total_params * regime.trainable
        if inputs.autocast:
            # autocast keeps a 16-bit copy of every weight a matmul uses until backward is done
            weights += (spec.linear_weight_params + spec.vocab_size * spec.hidden_size) * 2
        return weights
    adapters = trainable * regime.trainable
    if inputs.method == "lora":
        return spec.total_params * regime.frozen_dense + adapters
    # embeddings, lm_head, norms and biases are not quantized (and k-bit preparation makes them fp32)
    dense = (spec.total_params - spec.linear_weight_params) * regime.frozen_dense
    if inputs.method == "qlora":
        quantized = spec.linear_weight_params * quantized_bits_per_weight(inputs.double_quant) / 8
    else:  # 8bit-base
        rows = sum(shape.out_features * shape.count for shape in spec.linears)
        quantized = spec.linear_weight_params + rows * INT8_SCALE_BYTES_PER_ROW
    return int(dense + quantized) + adapters


def _optimizer_bytes_per_param(inputs: MemoryInputs, regime: _Regime) -> int:
    state = OPTIMIZERS[inputs.optimizer].state
    if state == "fp32":
        return 2 * regime.trainable
    if state == "8bit":
        return 2
    return 0


def _input_copies_bytes(width: int, needing: int, from_stream: bool, inputs: MemoryInputs, regime: _Regime) -> int:
    """Bytes per token kept for the inputs of `needing` linears that share one input of `width` features.

    Full fine-tuning shares the input, except under autocast where each matmul saves its own 16-bit
    cast of an fp32 input. PEFT casts a 16-bit input to the adapter's fp32 for every adapted layer
    (autocast then casts it back to 16 bits), and LoRA dropout gives every adapter its own dropped
    copy plus its mask.
    """
    if needing == 0:
        return 0
    if regime.full:
        if inputs.autocast and from_stream:
            return needing * 2 * width
        return (regime.stream if from_stream else regime.compute) * width
    per_copy = 2 if inputs.autocast else 4
    # bitsandbytes layers skip PEFT's fp32 cast under autocast: an input that is already 16-bit
    # (attention output, MLP product) is shared; the fp32 stream is cast once per adapter.
    already_half = inputs.autocast and regime.kbit and not from_stream
    if inputs.lora_dropout > 0:
        dropped = 2 if already_half else 4
        # CUDA's fused dropout keeps a bool mask; on CPU dropout multiplies by a saved noise tensor
        mask = 1 if inputs.device == "cuda" else dropped
        return needing * (per_copy + mask) * width
    if inputs.precision == "fp32" or already_half:
        return per_copy * width
    return needing * per_copy * width


def _layer_activation_bytes_per_token(spec: ModelSpec, inputs: MemoryInputs, regime: _Regime) -> tuple[int, int]:
    """(bytes per token, bytes per token per attended position) saved by one decoder layer.

    Counted as autograd saves them in a Llama-style layer: each RMSNorm keeps its fp32 input and
    (when its weight trains) the normalized value; linears keep their input when their weight or
    adapter trains; attention keeps roped q, k, v and its output; the gated MLP keeps gate, its
    activation, up and their product.
    """
    h, q, kv, inter = spec.hidden_size, spec.query_width, spec.kv_width, spec.intermediate_size
    a, c = regime.stream, regime.compute
    if inputs.method == "full":
        needs = {shape.name for shape in spec.linears}
    else:
        needs = {shape.name for shape in selected_linears(spec, inputs.lora_targets)}

    def norm(width: int) -> int:
        return 4 * width + (a * width if regime.full else 0)

    def needing(*names: str) -> int:
        return sum(1 for name in names if name in needs)

    total = norm(h) * (spec.norms_per_layer // 2)  # norm before attention (+ Gemma's post-attention norm)
    total += norm(h) * (spec.norms_per_layer // 2)  # norm before the MLP (+ Gemma's post-MLP norm)
    if spec.qk_norm:
        total += norm(q) + norm(kv)
    if "qkv_proj" in {shape.name for shape in spec.linears}:
        total += _input_copies_bytes(h, needing("qkv_proj"), True, inputs, regime)
        total += _input_copies_bytes(h, needing("gate_up_proj"), True, inputs, regime)
    else:
        total += _input_copies_bytes(h, needing("q_proj", "k_proj", "v_proj"), True, inputs, regime)
        total += _input_copies_bytes(h, needing("gate_proj", "up_proj"), True, inputs, regime)
    total += _input_copies_bytes(q, needing("o_proj"), False, inputs, regime)
    total += _input_copies_bytes(inter, needing("down_proj"), False, inputs, regime)

    attention = _effective_attention(spec, inputs)
    masked_on_cuda = inputs.attention_mask and inputs.device == "cuda"  # the CPU trainer keeps heads grouped
    repeats_kv = spec.num_kv_heads < spec.num_heads and (attention == "eager" or masked_on_cuda)
    kv_saved = q if repeats_kv and attention != "flash" else kv
    total += c * (q + 2 * kv_saved)  # roped queries and keys, values (repeated to every head if need be)
    per_position = 0
    if attention == "eager":
        # softmax output in fp32 (kept for its backward) and its cast back to the compute dtype
        per_position = spec.num_heads * (4 + (c if c != 4 else 0))
    else:
        total += c * q + 4 * spec.num_heads  # kernel output and log-sum-exp
    total += 3 * c * inter  # gate, activation(gate) and up (their product is down_proj's input)
    if not regime.full:
        adapted = selected_linears(spec, inputs.lora_targets)
        layers = max(1, spec.num_layers)
        total += sum(inputs.lora_r * c * shape.count for shape in adapted) // layers  # A outputs
        if inputs.dora:
            total += sum(2 * shape.out_features * c * shape.count for shape in adapted) // layers
    return total, per_position


def _effective_attention(spec: ModelSpec, inputs: MemoryInputs) -> str:
    if spec.attention_softcapping and inputs.attention == "sdpa":
        return "eager"  # transformers refuses sdpa for soft-capped attention (Gemma-2)
    return inputs.attention


def _activations(spec: ModelSpec, inputs: MemoryInputs, regime: _Regime, logits: int) -> int:
    """Saved activations of all layers, plus whatever of a layer's backward working set exceeds the logits."""
    tokens = inputs.batch_size * inputs.seq_len
    per_token, per_position = _layer_activation_bytes_per_token(spec, inputs, regime)
    one_layer = tokens * per_token + tokens * inputs.seq_len * per_position
    # A layer's backward holds gradients of the MLP intermediates (about three of them at once)
    # and, with eager attention, of the seq x seq probabilities and scores.
    working = tokens * (3 * regime.compute * spec.intermediate_size + 2 * regime.stream * spec.hidden_size)
    if _effective_attention(spec, inputs) == "eager":
        working = max(working, tokens * inputs.seq_len * spec.num_heads * 2 * 4)
    if inputs.method in ("qlora", "8bit-base"):
        widest = max(s.in_features * s.out_features for s in spec.linears)
        working += widest * regime.compute  # one layer's weight, dequantized for the matmul
    if inputs.dora:
        widest = max(s.in_features * s.out_features for s in selected_linears(spec, inputs.lora_targets))
        working += 2 * widest * 4  # B @ A and the combined weight, in fp32, to take the weight norm
    if inputs.gradient_checkpointing:
        kept = spec.num_layers * tokens * spec.hidden_size * regime.stream  # each layer's input
        transient = one_layer + working  # one layer recomputed during its backward
    else:
        kept = spec.num_layers * one_layer
        transient = working
    # the final norm, and lm_head's input when lm_head trains
    kept += tokens * (4 * spec.hidden_size + (regime.stream * spec.hidden_size if regime.full else 0))
    kept += tokens * _input_copies_bytes(spec.hidden_size, 1 if regime.full else 0, True, inputs, regime)
    mask = 0
    attention = _effective_attention(spec, inputs)
    if attention == "eager" or (attention == "sdpa" and inputs.attention_mask):
        mask = inputs.batch_size * inputs.seq_len * inputs.seq_len * (regime.compute if attention == "eager" else 1)
    return kept + mask + max(0, transient - logits)


def _logits(spec: ModelSpec, inputs: MemoryInputs, regime: _Regime) -> int:
    """Logits and their gradients at their largest.

    Forward: lm_head's output, its fp32 upcast (when 16-bit) and log_softmax's fp32 output.
    Backward start: log_softmax's output, the gradient arriving from the loss and the gradient it
    passes on, all fp32. Full fine-tuning then adds lm_head's weight gradient while the logits
    gradient is alive.
    """
    elements = inputs.batch_size * inputs.seq_len * spec.vocab_size
    c = regime.compute
    forward = _forward_logits_bytes(spec, inputs.batch_size * inputs.seq_len, regime)
    backward = elements * 12
    if spec.logit_softcapping:
        backward += elements * c
    if regime.full:
        head_gradient = spec.vocab_size * spec.hidden_size * regime.trainable
        backward = max(backward, elements * (4 + c) + head_gradient)
    return max(forward, backward)


def check_input_bounds(spec: ModelSpec, inputs: MemoryInputs) -> list[str]:
    """Warnings for inputs past what the model was trained on; WorkbenchError for absurd ones.

    A sequence longer than the model's context length (`max_position_embeddings`) is a warning
    (RoPE scaling can stretch it); more than CONTEXT_STRETCH_LIMIT times that is refused.
    """
    context = spec.context_length
    seq = inputs.seq_len
    if context is None:
        if seq > UNKNOWN_CONTEXT_LIMIT:
            raise WorkbenchError(f"seq_len: {seq:,} tokens is longer than any open model's context "
                                 f"(about {UNKNOWN_CONTEXT_LIMIT:,}); check the number")
    elif seq > CONTEXT_STRETCH_LIMIT * context:
        raise WorkbenchError(f"seq_len: {seq:,} tokens is more than {CONTEXT_STRETCH_LIMIT}x {spec.name}'s context "
                             f"length of {context:,} (max_position_embeddings); no RoPE scaling reaches that far")
    if inputs.batch_size > MAX_BATCH_SIZE:
        raise WorkbenchError(f"batch_size: {inputs.batch_size:,} sequences per device is not a real batch "
                             f"(at most {MAX_BATCH_SIZE:,}); raise gradient accumulation instead")
    if context is not None and seq > context:
        return [f"{seq:,} tokens is past {spec.name}'s context length of {context:,} (max_position_embeddings): "
                "positions beyond it were never trained; shorten the sequences or use RoPE scaling (e.g. YaRN)"]
    return []


def with_new_token_rows(spec: ModelSpec, rows: int) -> ModelSpec:
    """The spec after the embedding (and an untied output layer) grew by `rows` new tokens."""
    if not rows:
        return spec
    added = rows * spec.hidden_size * (1 if spec.tie_embeddings else 2)
    return replace(spec, vocab_size=spec.vocab_size + rows, total_params=spec.total_params + added)


def _forward_logits_bytes(spec: ModelSpec, tokens: int, regime: _Regime) -> int:
    """lm_head's output, its fp32 upcast (when 16-bit) and the loss's fp32 log-softmax, alive together."""
    elements = tokens * spec.vocab_size
    c = regime.compute
    forward = elements * (c + (4 if c != 4 else 0) + 4)
    if spec.logit_softcapping:
        forward += elements * 2 * c  # x / cap and tanh(x / cap); tanh's output is kept for backward
    return forward


def _evaluation(spec: ModelSpec, inputs: MemoryInputs, regime: _Regime) -> int:
    """The evaluation forward pass at its own batch: nothing is saved for backward and no gradient
    exists (zero_grad frees them after each step), so it holds the hidden states, one layer's
    working set and, at the end, the logits with the loss's upcast and log-softmax."""
    if inputs.eval_batch_size == 0:
        return 0
    tokens = inputs.eval_batch_size * inputs.seq_len
    hidden = 2 * tokens * spec.hidden_size * regime.stream  # the residual stream and a layer's output
    layer = tokens * (3 * regime.compute * spec.intermediate_size)  # gate, its activation, up
    if _effective_attention(spec, inputs) == "eager":
        layer = max(layer, tokens * inputs.seq_len * spec.num_heads * (4 + regime.compute))
    if inputs.method in ("qlora", "8bit-base"):
        layer += max(s.in_features * s.out_features for s in spec.linears) * regime.compute
    return hidden + max(layer, _forward_logits_bytes(spec, tokens, regime))


def estimate_training_memory(spec: ModelSpec, inputs: MemoryInputs) -> MemoryEstimate:
    """Estimate the peak training memory per device for `spec` trained as `inputs` describes.

    Pure arithmetic (no torch), well under a millisecond. Raises WorkbenchError for absurd inputs
    (see `check_input_bounds`).
    """
    warnings = check_input_bounds(spec, inputs)
    spec = with_new_token_rows(spec, inputs.new_token_rows)
    regime = _Regime(inputs)
    notes: list[str] = []
    if inputs.method == "full":
        trainable = spec.total_params
    else:
        trainable = lora_trainable_params(spec, inputs.lora_r, inputs.lora_targets, inputs.dora)
        # PEFT trains the new tokens' rows beside the adapters, in the embedding and an untied output layer
        trainable += inputs.new_token_rows * spec.hidden_size * (1 if spec.tie_embeddings else 2)
    if inputs.method in ("qlora", "8bit-base") and inputs.device == "cpu":
        notes.append("bitsandbytes quantization needs a CUDA GPU; this CPU figure is only indicative")
    if inputs.device == "cpu":
        notes.append(cpu_estimate_note())
    if _effective_attention(spec, inputs) != inputs.attention:
        notes.append(f"{spec.name} soft-caps attention scores, which sdpa cannot do: counted as eager attention")

    weights = _weights_bytes(spec, inputs, regime, trainable)
    gradients = trainable * regime.trainable
    optimizer_state = trainable * _optimizer_bytes_per_param(inputs, regime)
    logits = _logits(spec, inputs, regime)
    activations = _activations(spec, inputs, regime, logits)
    evaluation = _evaluation(spec, inputs, regime)

    gpus = inputs.gpus if inputs.device == "cuda" else 1
    overhead = CUDA_CONTEXT_BYTES if inputs.device == "cuda" else CPU_PROCESS_BASELINE_BYTES + CPU_FRAMEWORK_BYTES
    if gpus > 1:
        if inputs.sharding == "ddp":
            overhead += gradients  # DDP's reducer keeps a flat bucket copy of every gradient
        else:
            gradients //= gpus
            optimizer_state //= gpus
            if inputs.sharding == "zero3":
                # each device keeps its shard, plus the current and prefetched layer gathered in full
                layer_params = (spec.total_params - spec.embedding_params - spec.lm_head_params) // spec.num_layers
                weights = weights // gpus + 2 * layer_params * regime.compute
    elif inputs.sharding != "ddp":
        notes.append("ZeRO sharding needs more than one GPU; with one GPU nothing is sharded")
    return MemoryEstimate(
        spec=spec,
        inputs=inputs,
        trainable_params=trainable,
        weights=int(weights),
        gradients=int(gradients),
        optimizer_state=int(optimizer_state),
        activations=int(activations),
        logits=int(logits),
        framework_overhead=int(overhead),
        evaluation=int(evaluation),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )
