"""The one live RunConfig the app shares between panes (Hyperparameters edits, Memory and Train read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from workbench.config.fields import get_value, with_values
from workbench.config.schema import RunConfig

Listener = Callable[[RunConfig], None]


class ConfigStore:
    """Holds the current RunConfig and tells subscribers when it changes.

    UI-free: panes subscribe with a callback (a Textual widget passes something that posts a
    message or calls a method on the event loop).
    """

    def __init__(self, config: RunConfig | None = None, path: Path | None = None):
        self._config = config or RunConfig()
        self.path = path
        self._listeners: list[Listener] = []

    @property
    def config(self) -> RunConfig:
        return self._config

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(config)` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def replace(self, config: RunConfig, path: Path | None = None) -> None:
        self._config = config
        if path is not None:
            self.path = path
        self._notify()

    def update(self, dotted_field: str, value: Any) -> RunConfig:
        """Set one field, e.g. update("optimization.learning_rate", 1e-4). Invalid values raise
        pydantic's ValidationError and leave the config unchanged."""
        return self.update_many({dotted_field: value})

    def update_many(self, values: dict[str, Any]) -> RunConfig:
        """Set several fields in one change, validated together (fields that are only valid as a
        set, like data.train_file replacing data.sources); subscribers hear of it once."""
        self._config = with_values(self._config, values)
        self._notify()
        return self._config

    def get(self, dotted_field: str) -> Any:
        """The current value of one dotted field."""
        return get_value(self._config, dotted_field)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self._config)
