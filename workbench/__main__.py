"""`python -m workbench ...`: the same CLI as the `workbench` command (README, torchrun and
accelerate launch lines, the trainer child started by workbench.runs.launch). The CLI lives above the
engine in `workbench_cli`; nothing imports this module, Python runs it."""

from workbench_cli.main import main

raise SystemExit(main())
