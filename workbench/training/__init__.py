"""Training: a child process that writes a run directory; everything else only reads it."""
