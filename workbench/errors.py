"""User-facing errors: one line, naming where the problem is and what to do."""


class WorkbenchError(Exception):
    """A problem with the user's input or environment, reported as one line (never a traceback).

    The message should name the file, the row or line and the field where that applies, e.g.
    ``data.jsonl:14: messages[2].role: expected 'assistant' after 'user', got 'user'``.
    """

    exit_code = 2
