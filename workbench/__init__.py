"""SFT Workbench: the UI-free engine. Importing it stays cheap: no textual, no torch."""

__version__ = "0.1.0"
