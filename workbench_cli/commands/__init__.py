"""One module per CLI subcommand: add_arguments(parser) stays cheap, run(args) does the work."""
