"""One Jinja render per batch gives exactly the texts of apply_chat_template, or steps aside."""

from __future__ import annotations

import copy

import pytest

from workbench.data.batch_rendering import render_plain_chats
from workbench.data.chat_templates import BUILTIN_TEMPLATE_NAMES, prepare_tokenizer

CHATS = [
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  leading and trailing  \n"},
     {"role": "assistant", "content": "\nOK\n"}],
    [{"role": "user", "content": "One"}, {"role": "assistant", "content": "Two"},
     {"role": "user", "content": "Three {{ not jinja }} {% raw %}"}, {"role": "assistant", "content": "Four"}],
    [{"role": "user", "content": ""}, {"role": "assistant", "content": "Empty question."}],
]


@pytest.mark.parametrize("template", ["auto", *BUILTIN_TEMPLATE_NAMES])
def test_one_render_per_batch_gives_the_texts_of_apply_chat_template(default_tokenizer, template):
    tokenizer = prepare_tokenizer(default_tokenizer, template).tokenizer
    chats = [copy.deepcopy(chat) for _ in range(5) for chat in CHATS]
    expected = tokenizer.apply_chat_template(chats, tokenize=False)
    assert render_plain_chats(tokenizer, chats) == expected


def test_rows_with_more_than_role_and_text_take_the_ordinary_path(default_tokenizer):
    chats = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "reasoning_content": "greet"}]]
    assert render_plain_chats(default_tokenizer, chats) is None


def test_a_template_that_renders_differently_in_a_batch_sends_the_batch_back(default_tokenizer):
    """A template that reads `loop` outside its own loops would see the batch's loop; the checked
    rows catch the difference."""
    tokenizer = copy.deepcopy(default_tokenizer)
    tokenizer.chat_template = "{{ 'in a loop' if loop is defined else '' }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert render_plain_chats(tokenizer, copy.deepcopy(CHATS)) is None


def test_a_template_that_refuses_a_row_sends_the_batch_back(default_tokenizer):
    tokenizer = copy.deepcopy(default_tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['content'] == '' %}{{ raise_exception('empty') }}{% endif %}"
        "{{ m['content'] }}{% endfor %}"
    )
    assert render_plain_chats(tokenizer, copy.deepcopy(CHATS)) is None
    assert render_plain_chats(tokenizer, copy.deepcopy(CHATS[:3])) == tokenizer.apply_chat_template(CHATS[:3], tokenize=False)
