"""The guided tour's script: one step per idea, each on the pane that shows it.

UI-free: a step says which pane to show, what to say (a title and two to four short sentences a
non-specialist can follow) and which `action` the TUI performs on arrival. The TUI (screens/demo.py)
owns how the actions are carried out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TourStep:
    """One stop of the tour.

    Attributes:
        key: a stable name (tests and the TUI refer to steps by it).
        pane: the pane shown: data, memory, hyperparameters, train or chat.
        title: a few words, shown bold.
        lines: two to four short sentences.
        action: what the TUI does on arrival (see screens/demo.py); "" for nothing.
    """

    key: str
    pane: str
    title: str
    lines: tuple[str, ...]
    action: str = ""


TOUR: tuple[TourStep, ...] = (
    TourStep(
        "welcome", "data", "Teaching a model something new, in ten minutes",
        (
            "A language model is first pretrained: it reads a mountain of text and learns to continue it.",
            "Supervised fine-tuning (SFT) then shows it example conversations, so it learns how to answer.",
            "Preference tuning comes last: people pick the better of two answers, and the model learns their taste.",
            "Today, on an ordinary CPU: teach a small model (135 million parameters) that it is Sage, by Northwind Labs.",
        ),
    ),
    TourStep(
        "problems", "data", "Training data is examples, and examples are messy",
        (
            "Each row is one example: a question, and the answer we want the model to give.",
            "The checks found duplicates, contradicting answers, empty answers, HTML junk and rows too long to fit.",
            "The model copies what it sees: every bad row teaches it something bad.",
        ),
        "open_messy_data",
    ),
    TourStep(
        "clean", "data", "Cleaning, one step at a time",
        (
            "Each step says how many rows it would touch before it runs, and every step can be undone.",
            "Strip the markup, drop empty answers and duplicates, keep the first of two contradicting answers.",
            "The original file is never changed: a clean copy and a recipe to repeat it are saved.",
        ),
        "clean_data",
    ),
    TourStep(
        "masking", "data", "What the model actually sees",
        (
            "The chat template turns a conversation into one long row of tokens (pieces of words).",
            "Only the green tokens, the answer, are graded during training; the grey ones are context.",
            "That is loss masking: the model learns how to answer, not how to ask.",
        ),
        "show_model_view",
    ),
    TourStep(
        "memory", "memory", "Will it fit? Memory in one rule",
        (
            "Full fine-tuning needs about 10 to 12 bytes per parameter: weights, gradients and optimizer state.",
            "So a 1-billion-parameter model needs roughly 12 GB before it has read a single example.",
            "LoRA freezes the model and trains small add-on matrices instead: that is why this fits in a laptop's memory.",
        ),
    ),
    TourStep(
        "recipe", "hyperparameters", "The recipe: 'Quick demo on CPU'",
        (
            "LoRA adapters, a learning rate of 2e-4 and two passes over about 270 examples.",
            "Every setting carries its reason; the form checks the whole recipe before anything starts.",
            "Press n to start training. It runs as its own process, so the screen stays responsive.",
        ),
        "show_recipe",
    ),
    TourStep(
        "loss", "train", "Watching it learn: the loss curve",
        (
            "Loss measures how surprised the model is by the right answer: lower is better.",
            "Blue is the training loss; orange points are held-out rows it never trains on.",
            "Below the chart, sample answers show the new name appearing as it learns.",
        ),
        "start_training",
    ),
    TourStep(
        "overfitting", "train", "What overfitting would look like",
        (
            "Train too long and the blue line keeps falling while the orange one turns back up.",
            "The model is memorising its examples instead of learning the pattern, and starts to forget other things.",
            "The workbench warns when that happens and keeps the checkpoint with the lowest held-out loss.",
        ),
        "follow_training",
    ),
    TourStep(
        "compare", "chat", "Before and after",
        (
            "Left: the model as it shipped. Right: the same model with the new adapter.",
            "Same question, same settings, no randomness: the only difference is the fine-tuning.",
            "This question was never in the training data, so the model has to generalise.",
        ),
        "compare_answers",
    ),
    TourStep(
        "vote", "chat", "The blind test",
        (
            "Now the names are hidden and the sides are shuffled.",
            "Ask the room which answer is better, then vote (the buttons, or F6 to F9): the names appear after the vote.",
            "Votes like these are the raw material of preference tuning, the step after SFT.",
        ),
        "blind_vote",
    ),
    TourStep(
        "recap", "chat", "What SFT changed",
        (
            "The model kept what it knew; a few million new numbers taught it a new name and maker.",
            "It learned from a few hundred clean examples, and answers questions it never saw in that form.",
            "Try your own data in the Data pane, or press q to leave the tour.",
        ),
        "show_scores",
    ),
)
"""The tour, in order."""


def step_index(key: str) -> int:
    """Position of the step called `key` (ValueError if there is none)."""
    for index, step in enumerate(TOUR):
        if step.key == key:
            return index
    raise ValueError(f"no tour step {key!r}")
