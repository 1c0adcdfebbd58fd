"""The Memory pane's inputs: the run-config fields that decide memory, plus two what-ifs.

The editors show the run config with the pane's what-if edits on top (attributes down) and report
edits as `Changed` messages (messages up). Every edit here is a what-if: the screen keeps it apart
from the run config until "apply to run config"; a field that differs from the run config is marked.
The model and GPU-size what-ifs only change what is estimated and are never applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select

from workbench.config.fields import field_spec
from workbench.memory.catalog import catalog_names

CONFIG_MODEL = "(run config)"
WHATIF_MODEL = "whatif.model"
WHATIF_GPU = "whatif.gpu_memory"


@dataclass(frozen=True)
class Field:
    key: str  # dotted RunConfig field, or a what-if key
    label: str
    kind: str  # "select", "int", "float" or "bool"
    choices: tuple[str, ...] = ()
    hint: str = ""


FIELDS = (
    Field(WHATIF_MODEL, "model", "select", (CONFIG_MODEL, *catalog_names()),
          "estimate another model from the catalog (what-if; the run config keeps its model)"),
    Field("method.type", "method", "select", field_spec("method.type").choices),
    Field("model.precision", "precision", "select", field_spec("model.precision").choices),
    Field("optimization.optim", "optimizer", "select", field_spec("optimization.optim").choices),
    Field("optimization.per_device_train_batch_size", "batch size", "int"),
    Field("optimization.gradient_accumulation_steps", "grad accum", "int"),
    Field("evaluation.per_device_eval_batch_size", "eval batch", "int"),
    Field("data.max_seq_length", "seq length", "int"),
    Field("method.r", "LoRA rank", "int"),
    Field("optimization.gradient_checkpointing", "grad ckpt", "bool"),
    Field("devices.num_processes", "GPUs", "int"),
    Field(WHATIF_GPU, "GPU GiB", "float", hint="check against a GPU of this size (what-if); empty: this machine"),
)


def _editor_id(key: str) -> str:
    return "mem-" + key.replace(".", "-").replace("_", "-")


class MemoryInputsForm(VerticalScroll):
    """One compact row per input."""

    @dataclass
    class Changed(Message):
        """An input was edited: `key` is a dotted config field or a what-if key."""

        key: str
        value: Any

    def compose(self) -> ComposeResult:
        for field in FIELDS:
            with Horizontal(classes="mem-row"):
                yield Label(field.label, classes="mem-label")
                yield self._editor(field)

    def _editor(self, field: Field):
        editor_id = _editor_id(field.key)
        if field.kind == "select":
            editor = Select([(choice, choice) for choice in field.choices], value=field.choices[0],
                            allow_blank=False, compact=True, id=editor_id, classes="mem-editor")
        elif field.kind == "bool":
            editor = Checkbox("", False, compact=True, id=editor_id, classes="mem-editor")
        else:
            editor = Input("", type="integer" if field.kind == "int" else "number", compact=True,
                           placeholder="this machine" if field.key == WHATIF_GPU else "",
                           select_on_focus=False, id=editor_id, classes="mem-editor")
        editor.tooltip = field.hint or f"what-if for the run config's {field.key}"
        return editor

    def show(self, values: dict[str, Any], changed: frozenset[str] = frozenset()) -> None:
        """Put values (key -> value) into the editors and mark the `changed` keys (what-if edits that
        differ from the run config); text the user is typing is left alone.

        Setting an editor does not post its Changed: an echo of a shown value would be taken for an
        edit, and two edits in flight (a model and a method chosen in quick succession) then
        re-applied each other's values back and forth hundreds of times."""
        with self.prevent(Select.Changed, Checkbox.Changed, Input.Changed):
            self._show_values(values, changed)

    def _show_values(self, values: dict[str, Any], changed: frozenset[str]) -> None:
        for field in FIELDS:
            if field.key not in values:
                continue
            editor = self.query_one(f"#{_editor_id(field.key)}")
            editor.parent.set_class(field.key in changed, "-whatif")
            value = values[field.key]
            if isinstance(editor, Select):
                editor.value = value
            elif isinstance(editor, Checkbox):
                editor.value = bool(value)
            elif not editor.has_focus:
                text = "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
                if editor.value != text:
                    editor.value = text

    def mark_invalid(self, key: str, reason: str | None) -> None:
        editor = self.query_one(f"#{_editor_id(key)}")
        editor.set_class(reason is not None, "-invalid")
        field = next(f for f in FIELDS if f.key == key)
        editor.tooltip = reason or field.hint or f"what-if for the run config's {field.key}"

    def _field_for(self, widget) -> Field | None:
        return next((field for field in FIELDS if _editor_id(field.key) == widget.id), None)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        field = self._field_for(event.select)
        if field is not None:
            self.post_message(self.Changed(field.key, event.value))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        field = self._field_for(event.checkbox)
        if field is not None:
            self.post_message(self.Changed(field.key, event.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        field = self._field_for(event.input)
        if field is None:
            return
        text = event.value.strip()
        if field.key == WHATIF_GPU and not text:
            self.post_message(self.Changed(field.key, None))
            return
        try:
            value = int(text) if field.kind == "int" else float(text)
        except ValueError:
            return  # half-typed; the last good value stays in effect
        self.post_message(self.Changed(field.key, value))
