"""Reusable Textual widgets for the workbench."""
