"""Prompt-deck generations at each evaluation: the same prompts, greedy, so changes are the model's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from workbench.data.conversation import Conversation, Message
from workbench.data.system_prompt import with_system_prompt
from workbench.data.templating import render_chat_text

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def prompt_text(tokenizer: "PreTrainedTokenizerBase", prompt: str, system_prompt: str | None) -> str:
    """The prompt as training formats a user turn: the chat template, the run's system prompt, and the
    assistant header the answer continues from."""
    conversation = with_system_prompt(Conversation((Message("user", prompt),), 0, "prompt"), system_prompt)
    return render_chat_text(tokenizer, conversation.to_chat(), add_generation_prompt=True)


def generate_samples(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    prompts: Sequence[str],
    *,
    system_prompt: str | None,
    max_new_tokens: int,
) -> list[dict[str, str]]:
    """Greedy completions for every prompt, batched with left padding; the model's mode is restored."""
    import torch

    if not prompts:
        return []
    texts = [prompt_text(tokenizer, prompt, system_prompt) for prompt in prompts]
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = previous_side
    device = next(model.parameters()).device
    batch = {key: value.to(device) for key, value in batch.items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
    finally:
        model.train(was_training)
    prompt_width = batch["input_ids"].shape[1]
    completions = tokenizer.batch_decode(output[:, prompt_width:], skip_special_tokens=True)
    return [{"prompt": prompt, "completion": text.strip()} for prompt, text in zip(prompts, completions)]
