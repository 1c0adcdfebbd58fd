"""The trainer child process: what `workbench train` runs (in each rank) to load the model and the
data, train, and write the run directory (contract: workbench.runs.rundir). What starts, watches,
stops and reads runs lives in workbench.runs; this package never imports that side."""
