"""The command line and the TUI launcher: `workbench COMMAND` (workbench_cli.main), one module per command."""
