"""Runs as their watchers see them: the run directory contract (rundir, run_lock), starting,
stopping and resuming the trainer child (launch), folding its events (monitor), results.json
(results) and exporting a finished run (export). The child itself lives in workbench.training and
never imports the watchers' side (launch, monitor, export)."""
