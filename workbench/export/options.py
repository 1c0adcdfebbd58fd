"""The choices an export takes (one list each, shared by the CLI and the TUI dialog) and the command
line that repeats a choice."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from workbench.errors import WorkbenchError
from workbench.precision import DTYPE_NAMES

FORMATS = ("hf", "adapter", "gguf")
FORMAT_HELP = {
    "hf": "merged model: safetensors + tokenizer, for transformers and vLLM",
    "adapter": "the LoRA adapter alone (PEFT), for PEFT and vLLM --enable-lora",
    "gguf": "one GGUF file + Ollama Modelfile, for llama.cpp, Ollama and LM Studio",
}
DTYPES = tuple(DTYPE_NAMES)
GGUF_QUANTS = ("f16", "bf16", "f32", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0")
"""What the `gguf` package can write itself (its numpy quantizers). K-quants need llama.cpp's
`llama-quantize`, which can requantize the f16 file."""
DEFAULT_QUANT = "q8_0"
EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class ExportOptions:
    """One export, as the user chose it. `dtype` None: the base model's own dtype (hf only)."""

    format: str = "hf"
    dtype: Optional[str] = None
    quant: str = DEFAULT_QUANT
    checkpoint: Optional[str] = None
    output: Optional[Path] = None
    force: bool = False
    push_to_hub: Optional[str] = None

    def checked(self) -> "ExportOptions":
        """The options, or a WorkbenchError naming the bad one."""
        if self.format not in FORMATS:
            raise WorkbenchError(f"--format: expected one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise WorkbenchError(f"--dtype: expected one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.quant not in GGUF_QUANTS:
            raise WorkbenchError(f"--quant: expected one of {', '.join(GGUF_QUANTS)}, got {self.quant!r}")
        if self.format == "adapter" and self.dtype is not None:
            raise WorkbenchError("--dtype: the adapter keeps the dtype it was trained in; use --format hf to choose one")
        return self


def default_output_dir(run_dir: Path, options: ExportOptions) -> Path:
    """`<run>/exports/<format>[-<dtype or quantization>]`, e.g. runs/x/exports/gguf-q8_0."""
    suffix = {"hf": options.dtype, "gguf": options.quant, "adapter": None}[options.format]
    name = options.format if suffix is None else f"{options.format}-{suffix}"
    return Path(run_dir) / EXPORTS_DIR / name


def equivalent_command(run_dir: Path, options: ExportOptions) -> str:
    """The `workbench export` line that makes the same export (shown by the TUI when it is done)."""
    words = ["workbench", "export", str(run_dir), "--format", options.format]
    if options.format == "hf" and options.dtype:
        words += ["--dtype", options.dtype]
    if options.format == "gguf":
        words += ["--quant", options.quant]
    if options.checkpoint:
        words += ["--checkpoint", str(options.checkpoint)]
    if options.output is not None:
        words += ["-o", str(options.output)]
    if options.force:
        words.append("--force")
    if options.push_to_hub:
        words += ["--push-to-hub", options.push_to_hub]
    return shlex.join(words)
