"""The workbench header: app name, the current pane, the model's state and the devices."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static


class WorkbenchHeader(Horizontal):
    """One line: the title on the left, the model's state and the devices on the right (the pane tabs below show the pane).

    Reads `model_status`, `device_summary` and `cpu_split` from the app (attributes down) and
    follows their changes; while a run trains on the CPU the devices give way to the CPU split
    ("CPU 2 cores · train 1 · chat 1": the trainer's threads and those of the chat answering now).
    """

    def __init__(self) -> None:
        super().__init__(id="workbench-header")

    def compose(self) -> ComposeResult:
        yield Static("[b]SFT Workbench[/b]", id="header-title")
        yield Static("", id="header-model")
        yield ProgressBar(id="header-progress", total=1.0, show_eta=False, show_percentage=False)
        yield Static("", id="header-devices")

    def on_mount(self) -> None:
        self.watch(self.app, "model_status", self._show_model_status)
        self.watch(self.app, "device_summary", self._show_devices)
        self.watch(self.app, "cpu_split", self._show_devices)

    def _show_model_status(self, status) -> None:
        label = self.query_one("#header-model", Static)
        label.update(status.header_text())
        label.set_class(status.state == "ready", "-ready")
        label.set_class(status.state == "error", "-error")
        # A real bar while a long stage reports how far it got (converting the default model: ~25 s).
        bar = self.query_one("#header-progress", ProgressBar)
        bar.display = status.state == "loading" and status.fraction is not None
        if bar.display:
            bar.update(progress=status.fraction)

    def _show_devices(self, _changed=None) -> None:
        split = getattr(self.app, "cpu_split", None)
        self.query_one("#header-devices", Static).update(split or self.app.device_summary)
