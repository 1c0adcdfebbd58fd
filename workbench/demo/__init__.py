"""The guided SFT demo: sample data cleaned, a quick LoRA run, base vs fine-tuned answers.

Modules:
    config     the demo's run config (the quick-demo-cpu preset with the demo's measured overrides)
    cleaning   the messy sample data: its problems and the Data pane's cleaning steps
    heldout    held-out identity and general questions, scored for base and tuned answers
    pipeline   clean -> train (child process) -> compare, headless, with progress callbacks
    tour       the guided tour's steps (titles, plain-language text, the pane each step shows)
"""
