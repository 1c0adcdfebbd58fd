"""The run config: one typed, validated description of a training run (YAML on disk)."""

from workbench.config.schema import RunConfig
from workbench.config.store import ConfigStore

__all__ = ["RunConfig", "ConfigStore"]
