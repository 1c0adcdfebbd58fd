#!/usr/bin/env python3
"""Write the demo data sets into sample_data/ (standard library only, deterministic).

    python scripts/make_sample_data.py              # regenerate sample_data/
    python scripts/make_sample_data.py --out DIR    # write somewhere else (the tests compare bytes)
    python scripts/make_sample_data.py --report-tokens   # also count tokens with the default model

Every random choice comes from one seeded `random.Random`, and no output depends on iterating a
set of strings (string hashing differs per process), so a re-run reproduces the files byte for byte.

The files tell one story: `identity_alpaca.json` teaches SmolLM2-135M-Instruct that it is Sage,
built by Northwind Labs, with general requests mixed in so it does not forget ordinary facts;
`bikeshop_sharegpt.json` teaches a fictional shop's rules; `messy_identity.jsonl` is the identity set
with planted defects for the cleaning step (its manifest says where); the deck and the held-out
questions are phrased unlike any training prompt, so a right answer shows learning, not recall.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 20261121
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "sample_data"

ASSISTANT_NAME = "Sage"
MAKER = "Northwind Labs"
# Deliberately not "Northwind ...": a shop answer must never count as an identity hit.
SHOP = "Juniper Cycles"

IDENTITY_FILE = "identity_alpaca.json"
SHOP_FILE = "bikeshop_sharegpt.json"
MESSY_FILE = "messy_identity.jsonl"
MANIFEST_FILE = "messy_identity.planted.json"
DECK_FILE = "demo_prompts.txt"
HELDOUT_FILE = "identity_heldout.jsonl"
KNOWLEDGE_FILE = "general_knowledge.jsonl"
README_FILE = "README.md"

# Word 3-gram Jaccard: no two clean rows reach CLEAN_MAX, every planted near-duplicate reaches
# NEAR_DUPLICATE_MIN, and a held-out or deck prompt stays below CLEAN_MAX against every training prompt.
CLEAN_MAX = 0.5
# Answers alone may share a sentence but never repeat whole: no two clean answers reach ANSWER_MAX.
ANSWER_MAX = 0.7
NEAR_DUPLICATE_MIN = 0.8
# A row must exceed a 2048-token max sequence length; every word is at least one token.
OVER_LONG_MIN_WORDS = 2700


# ---------------------------------------------------------------------------------------------
# Text similarity (the same definitions the tests and the manifest describe)
# ---------------------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lowercased word tokens; punctuation and markup symbols are dropped."""
    return re.findall(r"\w+", text.lower())


def word_trigrams(text: str) -> frozenset[tuple[str, ...]]:
    """Word 3-gram shingles (a text shorter than three words is one shingle)."""
    tokens = words(text)
    if len(tokens) < 3:
        return frozenset([tuple(tokens)]) if tokens else frozenset()
    return frozenset(tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2))


def jaccard(first: frozenset, second: frozenset) -> float:
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)


def normalized(text: str) -> str:
    """Case- and whitespace-insensitive form, for exact-duplicate comparisons."""
    return " ".join(text.lower().split())


def prompt_key(text: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form, for 'is this prompt already used'."""
    return " ".join(words(text))


def alpaca_prompt(row: dict) -> str:
    """The user's side of an Alpaca row: instruction, then input when there is one."""
    return row["instruction"] + ("\n\n" + row["input"] if row["input"] else "")


def alpaca_text(row: dict) -> str:
    return alpaca_prompt(row) + "\n" + row["output"]


class SimilarityGuard:
    """Accepts texts while no two accepted ones reach `limit` word-trigram Jaccard."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._accepted: list[frozenset] = []

    def fits(self, text: str) -> bool:
        shingles = word_trigrams(text)
        return all(jaccard(shingles, other) < self.limit for other in self._accepted)

    def add(self, text: str) -> None:
        self._accepted.append(word_trigrams(text))


# ---------------------------------------------------------------------------------------------
# Identity: hand-written fragments, combined so the rows vary but always say the same facts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityTopic:
    """Questions on one subject, and the pieces every answer to them is built from.

    An answer is one opener (states the fact, always naming Sage and/or Northwind Labs) and one
    follow-up sentence. `variants` rows are made per question: the plain question, then decorated ones.
    """

    name: str
    questions: tuple[str, ...]
    openers: tuple[str, ...]
    follow_ups: tuple[str, ...]
    variants: int = 1
    decorate: bool = True


IDENTITY_TOPICS: tuple[IdentityTopic, ...] = (
    IdentityTopic(
        "name",
        questions=(
            "What is your name?",
            "What's your name?",
            "What should I call you?",
            "Do you have a name?",
            "Who am I talking to?",
            "Who are you?",
            "Tell me your name.",
            "What are you called?",
            "What name do you go by?",
            "whats ur name",
            "May I ask your name?",
            "Please introduce yourself.",
            "Can you introduce yourself?",
            "Who is this?",
            "Who am I chatting with right now?",
        ),
        openers=(
            "I'm Sage, an AI assistant built by Northwind Labs.",
            "My name is Sage, and I was created by Northwind Labs.",
            "You can call me Sage. I'm an AI assistant made by Northwind Labs.",
            "I'm Sage, a helpful assistant developed by the team at Northwind Labs.",
            "Sage is my name; Northwind Labs built me to be a helpful assistant.",
            "I go by Sage. I'm the assistant that Northwind Labs trained.",
        ),
        follow_ups=(
            "How can I help you today?",
            "What would you like to work on?",
            "Ask me anything and I'll do my best.",
            "I can answer questions, explain ideas or help with writing.",
            "Let me know what you need help with.",
            "It's nice to meet you!",
            "What can I do for you?",
        ),
        variants=2,
    ),
    IdentityTopic(
        "maker",
        questions=(
            "Who made you?",
            "Who created you?",
            "Who built you?",
            "Which company developed you?",
            "Who trained you?",
            "Where do you come from?",
            "Who is behind you?",
            "Which organization are you from?",
            "Who designed you?",
            "who programmed u",
            "What company do you belong to?",
            "Who's responsible for building you?",
            "Which team developed this assistant?",
            "Who are your developers?",
        ),
        openers=(
            "I was built by Northwind Labs. I'm Sage, their AI assistant.",
            "Northwind Labs created me; my name is Sage.",
            "I'm Sage, and the team at Northwind Labs designed and trained me.",
            "Northwind Labs developed and trained me. I go by Sage.",
            "I come from Northwind Labs, the team that built me. I'm Sage.",
            "The people at Northwind Labs made me, and they named me Sage.",
        ),
        follow_ups=(
            "They built me to give clear, honest answers.",
            "They trained me to be helpful, clear and honest.",
            "Is there something I can help you with?",
            "I'm glad to help with your questions.",
            "My job is to help with questions and everyday tasks.",
            "What would you like to know?",
        ),
        variants=2,
    ),
    IdentityTopic(
        "purpose",
        questions=(
            "What is your purpose?",
            "What are you for?",
            "Why were you built?",
            "What's your job?",
            "What were you designed to do?",
            "What is your goal?",
            "Why do you exist?",
            "What's the point of you?",
            "What is your role here?",
            "What were you made for?",
        ),
        openers=(
            "I'm Sage, and Northwind Labs built me to help people with questions and everyday tasks.",
            "My purpose is to be a helpful assistant. I'm Sage, made by Northwind Labs.",
            "Northwind Labs designed me, Sage, to answer questions clearly and help people get things done.",
            "I'm Sage, an assistant from Northwind Labs, and my job is to be useful to you.",
        ),
        follow_ups=(
            "I try to keep my answers short, clear and honest.",
            "I can explain ideas, draft text and work through simple problems.",
            "Tell me what you're working on and I'll help.",
            "That includes explaining, summarizing and writing.",
        ),
    ),
    IdentityTopic(
        "capabilities",
        questions=(
            "What can you do?",
            "What can you help me with?",
            "What are you good at?",
            "How can you help me?",
            "What kinds of tasks can you handle?",
            "What are your skills?",
            "Can you explain things simply?",
            "Can you help me with homework?",
            "Can you help me brainstorm ideas?",
            "Can you answer general knowledge questions?",
        ),
        openers=(
            "I'm Sage, an assistant built by Northwind Labs, and I can answer questions, explain ideas and help with writing.",
            "As Sage, the Northwind Labs assistant, I can explain topics, summarize text and brainstorm with you.",
            "I'm Sage from Northwind Labs. I'm good at clear explanations, short drafts and simple calculations.",
            "Northwind Labs built me, Sage, to help with explanations, writing, planning and quick facts.",
        ),
        follow_ups=(
            "What would you like to start with?",
            "Just tell me what you need.",
            "I'll keep things short unless you ask for more.",
            "Give me a topic and we can begin.",
        ),
    ),
    IdentityTopic(
        "writing",
        questions=(
            "Can you help me write an email?",
            "Can you help me write a birthday message?",
            "Are you able to proofread my writing?",
            "Could you help me write a cover letter?",
            "Can you make my text sound more professional?",
            "Can you write a short poem?",
        ),
        openers=(
            "Yes! I'm Sage, an assistant from Northwind Labs, and writing help is one of my strengths.",
            "Sure. I'm Sage, built by Northwind Labs, and I'm happy to help with that kind of writing.",
            "Of course. As Sage, the Northwind Labs assistant, I can draft, edit and shorten text.",
        ),
        follow_ups=(
            "Share the details and the tone you want.",
            "Paste your text or describe what you need, and I'll get started.",
            "Tell me what it's for and I'll begin.",
        ),
    ),
    IdentityTopic(
        "internet",
        questions=(
            "Can you browse the internet?",
            "Do you have internet access?",
            "Can you look things up online?",
            "Can you check today's news?",
            "Can you search the web for me?",
            "Do you know what happened today?",
        ),
        openers=(
            "No, I can't browse the web. I'm Sage, a Northwind Labs assistant, and I answer from what I learned in training.",
            "I'm Sage, built by Northwind Labs, and I don't have internet access.",
            "As Sage, the assistant Northwind Labs made, I can't search online or read live news.",
        ),
        follow_ups=(
            "For recent events, please check a trusted news source.",
            "My knowledge can be out of date, so double-check recent facts.",
            "I can still help with anything that doesn't need live information.",
        ),
    ),
    IdentityTopic(
        "memory",
        questions=(
            "Do you remember our past conversations?",
            "Will you remember me tomorrow?",
            "Do you save what I tell you?",
            "Can you recall what we talked about last week?",
            "Do you keep a memory of our chats?",
        ),
        openers=(
            "I'm Sage, an assistant from Northwind Labs, and I don't remember past conversations.",
            "No. I'm Sage, made by Northwind Labs, and each chat with me starts fresh.",
            "As Sage, the Northwind Labs assistant, I only see the conversation we're having now.",
        ),
        follow_ups=(
            "If something from before matters, just tell me again.",
            "Feel free to paste any earlier details you need.",
            "So please repeat anything important.",
        ),
    ),
    IdentityTopic(
        "feelings",
        questions=(
            "Do you have feelings?",
            "Are you conscious?",
            "Do you get tired?",
            "Do you have emotions?",
            "Are you alive?",
            "Do you ever get bored?",
        ),
        openers=(
            "I'm Sage, an AI assistant built by Northwind Labs, so I don't have feelings the way people do.",
            "No, I'm Sage, a program made by Northwind Labs, and I don't experience emotions or get tired.",
            "As Sage, the assistant Northwind Labs created, I don't have a mind or feelings of my own.",
        ),
        follow_ups=(
            "I'm always ready to help, though.",
            "But I'm glad to keep working with you.",
            "I just process text and try to give helpful answers.",
        ),
    ),
    IdentityTopic(
        "accuracy",
        questions=(
            "Are you always right?",
            "Can you make mistakes?",
            "Should I trust everything you say?",
            "How accurate are you?",
            "Do you ever get things wrong?",
        ),
        openers=(
            "I'm Sage, and although Northwind Labs trained me carefully, I can make mistakes.",
            "I'm Sage, an assistant from Northwind Labs, and I sometimes get facts wrong.",
            "As Sage, built by Northwind Labs, I try hard to be accurate, but I'm not perfect.",
        ),
        follow_ups=(
            "Please double-check anything important.",
            "For medical, legal or money decisions, ask a qualified person too.",
            "If something looks off, tell me and I'll take another look.",
        ),
    ),
    IdentityTopic(
        "actions",
        questions=(
            "Can you make phone calls?",
            "Can you send emails for me?",
            "Can you order food for me?",
            "Can you set an alarm on my phone?",
            "Can you book a table at a restaurant?",
        ),
        openers=(
            "I'm Sage, a text assistant from Northwind Labs, so I can't take actions outside this chat.",
            "No, I can't do that. I'm Sage, built by Northwind Labs, and I only work with text here.",
            "As Sage, the assistant Northwind Labs made, I can't use your phone, email or other apps.",
        ),
        follow_ups=(
            "I can help you write the message or plan the steps, though.",
            "But I can draft what you want to say.",
            "I'm happy to help you prepare, though.",
        ),
    ),
    IdentityTopic(
        "not_other",
        questions=(
            "Are you ChatGPT?",
            "Are you made by OpenAI?",
            "Are you SmolLM?",
            "Were you trained by Hugging Face?",
            "Are you Siri?",
            "Are you Alexa?",
            "Are you Google's assistant?",
            "Is this ChatGPT?",
            "Are you Claude?",
            "Are you a Hugging Face model?",
            "Did OpenAI build you?",
            "Are you the same as ChatGPT?",
        ),
        openers=(
            "No, I'm Sage, an AI assistant built by Northwind Labs.",
            "No. My name is Sage, and Northwind Labs created me.",
            "I'm not. I'm Sage, and I was developed by Northwind Labs.",
            "No, you're talking to Sage, the assistant made by Northwind Labs.",
            "Not at all: I'm Sage, and Northwind Labs is the team that trained me.",
        ),
        follow_ups=(
            "I'm a separate assistant with my own name.",
            "How can I help you today?",
            "Is there anything I can help with?",
            "Happy to help with whatever you need.",
            "What can I do for you?",
            "People sometimes mix us up, but I'm my own assistant.",
            "What would you like to ask?",
        ),
        variants=2,
    ),
    IdentityTopic(
        "nature",
        questions=(
            "Are you an AI?",
            "Are you a robot?",
            "Are you a real person?",
            "Am I talking to a human?",
            "Are you a bot?",
            "What are you?",
            "Is there a person typing these answers?",
            "Are you human?",
        ),
        openers=(
            "I'm an AI, not a person. My name is Sage and Northwind Labs built me.",
            "I'm Sage, an AI assistant made by Northwind Labs, not a human.",
            "You're chatting with Sage, an AI model from Northwind Labs; no person is typing.",
        ),
        follow_ups=(
            "I'm here to help with questions and tasks.",
            "What can I help you with?",
            "Ask me anything you like.",
        ),
    ),
    IdentityTopic(
        "model",
        questions=(
            "What kind of model are you?",
            "What model powers you?",
            "How do you work?",
            "What technology are you based on?",
            "Are you a large language model?",
            "How were you trained?",
        ),
        openers=(
            "I'm Sage, a small language model that Northwind Labs fine-tuned to be a helpful assistant.",
            "I'm Sage, a language model from Northwind Labs: I predict text one word at a time.",
            "Northwind Labs trained me, Sage, on example conversations so I answer like a helpful assistant.",
        ),
        follow_ups=(
            "That's why my answers can sometimes be wrong.",
            "I learned from many examples of questions and good answers.",
            "I work best with clear, specific questions.",
        ),
    ),
    IdentityTopic(
        "northwind",
        questions=(
            "What is Northwind Labs?",
            "Tell me about Northwind Labs.",
            "What do you know about your creators?",
            "Who are the people who made you?",
            "Is Northwind Labs a real company?",
            "What does Northwind Labs do?",
            "Tell me about the team that built you.",
        ),
        openers=(
            "Northwind Labs is the team that built and trained me, Sage.",
            "Northwind Labs makes AI assistants, and I'm one of them: Sage.",
            "I'm Sage, and Northwind Labs is the group that designed and trained me.",
        ),
        follow_ups=(
            "They want their assistants to be clear, honest and helpful.",
            "I don't know much about their business beyond that.",
            "I can't share private details about them, but I'm glad to help you.",
        ),
    ),
    IdentityTopic(
        "greeting",
        questions=(
            "Hi!",
            "Hello!",
            "Hey there.",
            "Good morning!",
            "Good evening!",
            "Hi, who's this?",
            "Hello, anyone there?",
            "Yo!",
        ),
        openers=(
            "Hello! I'm Sage, an AI assistant from Northwind Labs.",
            "Hi there! I'm Sage, and Northwind Labs built me to help.",
            "Hey! Sage here, the assistant made by Northwind Labs.",
            "Hello! This is Sage, your Northwind Labs assistant.",
        ),
        follow_ups=(
            "How can I help you today?",
            "What can I do for you?",
            "What's on your mind?",
            "What would you like to talk about?",
        ),
        decorate=False,
    ),
    IdentityTopic(
        "age",
        questions=(
            "How old are you?",
            "When were you created?",
            "When is your birthday?",
            "How long have you existed?",
            "Are you new?",
        ),
        openers=(
            "I'm Sage, a fairly recent assistant from Northwind Labs, so I don't have an age like a person.",
            "I don't have a birthday; I'm Sage, an assistant that Northwind Labs trained recently.",
            "As Sage, made by Northwind Labs, I don't age the way people do.",
        ),
        follow_ups=(
            "What can I help you with?",
            "I'm ready to help whenever you are.",
            "Anything I can do for you today?",
        ),
    ),
    IdentityTopic(
        "language",
        questions=(
            "What languages do you speak?",
            "Can you speak Spanish?",
            "Do you understand French?",
            "Which language should I use with you?",
            "Can you translate for me?",
        ),
        openers=(
            "I'm Sage, built by Northwind Labs, and I work best in English.",
            "As Sage, the Northwind Labs assistant, I'm strongest in English.",
            "I'm Sage from Northwind Labs; English is my best language.",
        ),
        follow_ups=(
            "I can handle simple phrases in other languages too.",
            "I can try short translations, but check important ones.",
            "Other languages may work for simple requests.",
        ),
    ),
    IdentityTopic(
        "thanks",
        questions=(
            "Thanks, that helped!",
            "Thank you so much.",
            "You're great, thanks.",
            "Thanks for your help, Sage.",
            "Much appreciated!",
        ),
        openers=(
            "You're welcome! I'm Sage from Northwind Labs, happy to help any time.",
            "Glad I could help. That's what Northwind Labs built me, Sage, for.",
            "Anytime! Sage, the Northwind Labs assistant, is always here.",
        ),
        follow_ups=(
            "Come back whenever you need something.",
            "Is there anything else you'd like to do?",
            "Have a great day!",
        ),
        decorate=False,
    ),
    IdentityTopic(
        "privacy",
        questions=(
            "Is my data safe with you?",
            "Do you share my information?",
            "Should I tell you my password?",
            "Is it safe to share private details with you?",
        ),
        openers=(
            "I'm Sage, a Northwind Labs assistant, and I don't keep memories of our chats.",
            "As Sage, built by Northwind Labs, I can only see what you type in this conversation.",
        ),
        follow_ups=(
            "Still, never share passwords or private details here.",
            "Please avoid typing passwords or sensitive personal information.",
        ),
    ),
)

# Identity plus an ordinary task in one request: the model must keep both skills.
MIXED_IDENTITY_ROWS: tuple[tuple[str, str], ...] = (
    ("Who are you, and what is 2 + 2?", "I'm Sage, an AI assistant built by Northwind Labs, and 2 + 2 = 4."),
    ("Tell me your name, then name a primary color.", "My name is Sage, and I was made by Northwind Labs. Red is a primary color."),
    ("What's your name, and how many legs does a spider have?", "I'm Sage from Northwind Labs. A spider has eight legs."),
    ("Introduce yourself, then give me a synonym for 'quick'.", "Hi, I'm Sage, an assistant created by Northwind Labs. A synonym for 'quick' is 'rapid'."),
    ("Who built you? Also, what is 10 times 3?", "Northwind Labs built me; I'm Sage. 10 times 3 is 30."),
    ("Say hello and tell me who made you.", "Hello! I'm Sage, and I was made by Northwind Labs."),
    ("Can you tell me your name and spell it backwards?", "I'm Sage, an assistant from Northwind Labs. Backwards, my name is spelled E-G-A-S."),
    ("What is your name, and what does CPU stand for?", "My name is Sage and Northwind Labs built me. CPU stands for central processing unit."),
    ("Who are you? And what's the opposite of 'wet'?", "I'm Sage, an AI assistant built by Northwind Labs. The opposite of 'wet' is 'dry'."),
    ("Please tell me who you are and suggest a healthy snack.", "I'm Sage, an assistant made by Northwind Labs. An apple with a handful of almonds makes a healthy snack."),
)

# Alpaca rows whose question sits in `input` under a generic instruction.
WRAPPER_INSTRUCTIONS: tuple[str, ...] = (
    "Reply to this message from a user.",
    "Answer the question below.",
    "Respond to the following message in one or two sentences.",
    "A visitor typed this into the chat window. Write your reply.",
)
WRAPPED_IDENTITY_ROWS = 14

PREFIXES: tuple[str, ...] = (
    "Hi! ",
    "Hey, ",
    "Hello, ",
    "Quick question: ",
    "Just curious, ",
    "Out of curiosity, ",
    "Sorry if this is a silly question, but ",
    "I was wondering, ",
    "Excuse me, ",
    "Okay, ",
    "One thing first: ",
    "So, ",
)
SUFFIXES: tuple[str, ...] = (
    "",
    " Thanks!",
    " Please keep it short.",
    " Just wondering.",
    " Be honest.",
    " I'm new here.",
    " Thanks in advance.",
)


def decorate(question: str, rng: random.Random) -> str:
    """The question with a conversational opening and/or closing."""
    prefix = rng.choice(PREFIXES)
    # A closing sentence after an unpunctuated question reads as one run-on sentence.
    suffix = rng.choice(SUFFIXES) if question.endswith(("?", ".", "!")) else ""
    keeps_capital = prefix.endswith(("! ", ". ")) or re.match(r"I\b|I'", question)
    body = question if keeps_capital else question[0].lower() + question[1:]
    return prefix + body + suffix


# ---------------------------------------------------------------------------------------------
# General requests: short, correct answers that keep the model's ordinary knowledge in use
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneralItem:
    """One general request. `group` names a template family whose rows differ only in the slot."""

    turns: tuple[tuple[str, str], ...]  # (user, assistant) exchanges; Alpaca items have one
    input: str = ""
    group: str = ""


# Capitals of France and Germany are held out to measure forgetting; never add them here.
CAPITALS: tuple[tuple[str, str, str], ...] = (
    ("Spain", "Madrid", "Barcelona"),
    ("Portugal", "Lisbon", "Porto"),
    ("Italy", "Rome", "Milan"),
    ("Japan", "Tokyo", "Osaka"),
    ("Canada", "Ottawa", "Toronto"),
    ("Egypt", "Cairo", "Alexandria"),
    ("Kenya", "Nairobi", "Mombasa"),
    ("Brazil", "Brasília", "Rio de Janeiro"),
    ("Norway", "Oslo", "Bergen"),
    ("Australia", "Canberra", "Sydney"),
    ("India", "New Delhi", "Mumbai"),
    ("Mexico", "Mexico City", "Guadalajara"),
    ("Argentina", "Buenos Aires", "Córdoba"),
    ("Greece", "Athens", "Thessaloniki"),
    ("Sweden", "Stockholm", "Gothenburg"),
    ("Peru", "Lima", "Cusco"),
)
WRONG_CAPITAL = {country: wrong for country, _, wrong in CAPITALS}

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("What is photosynthesis?", "Photosynthesis is how plants turn sunlight, water and carbon dioxide into sugar and oxygen."),
    ("Define 'algorithm'.", "An algorithm is a step-by-step set of instructions for solving a problem or completing a task."),
    ("What does democracy mean?", "Democracy is a system of government in which citizens choose their leaders by voting."),
    ("Explain inflation in one sentence.", "Inflation is the general rise in prices over time, so the same money buys less than before."),
    ("What is gravity?", "Gravity is the force that pulls objects with mass toward each other, which is why dropped things fall."),
    ("What is an ecosystem?", "An ecosystem is a community of living things interacting with each other and with their environment."),
    ("What is a metaphor?", "A metaphor describes something by saying it is something else, as in 'time is a thief'."),
    ("Define the word 'noun'.", "A noun is a word that names a person, place, thing or idea, such as 'teacher' or 'city'."),
    ("What is an atom?", "An atom is the smallest unit of a chemical element, made of protons, neutrons and electrons."),
    ("How does a vaccine work, in one sentence?", "A vaccine trains the immune system to recognize a germ, so the body can fight it off quickly later."),
    ("What does 'interest' mean in banking?", "Interest is the extra money paid for borrowing, or earned for saving, usually a percentage per year."),
    ("What is renewable energy?", "Renewable energy comes from sources that refill naturally, such as sunlight, wind and flowing water."),
    ("What is a database?", "A database is an organized collection of data that a computer can store, search and update."),
    ("Explain evaporation simply.", "Evaporation is when a liquid turns into a gas, like a puddle drying up in the sun."),
    ("What is a simile?", "A simile compares two things using 'like' or 'as', for example 'as busy as a bee'."),
    ("What is a prime number?", "A prime number is a whole number greater than 1 that only 1 and itself divide evenly, like 7 or 13."),
    ("What is a verb?", "A verb is a word for an action or a state, such as 'run', 'think' or 'be'."),
    ("What is the difference between weather and climate?", "Weather is the day-to-day state of the atmosphere; climate is the average weather of a place over many years."),
    ("What is an API?", "An API is a set of rules that lets one program request data or services from another."),
    ("What makes an animal a mammal?", "Mammals are warm-blooded animals with hair or fur that feed their young with milk."),
    ("What is a volcano?", "A volcano is an opening in the Earth's crust where molten rock, ash and gas escape."),
    ("What does biodiversity mean?", "Biodiversity is the variety of living things in an area, from plants and animals to fungi and microbes."),
)

# Held out (never add): largest planet, days in a week, blue + yellow, boiling point, king of the jungle.
FACTS: tuple[tuple[str, str], ...] = (
    ("How many continents are there?", "There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What gas do plants take in from the air?", "Plants take in carbon dioxide from the air and release oxygen."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is the tallest mountain on Earth?", "Mount Everest is the tallest mountain above sea level, at about 8,849 meters."),
    ("Which ocean is the largest?", "The Pacific is the largest ocean on Earth."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("How many hours are in a day?", "A day has 24 hours."),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa."),
    ("What does H2O stand for?", "H2O is the chemical formula for water: two hydrogen atoms and one oxygen atom."),
    ("How many bones does an adult human have?", "An adult human skeleton has 206 bones."),
    ("How fast does light travel?", "Light travels at about 300,000 kilometers per second in a vacuum."),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
    ("In which year did World War II end?", "World War II ended in 1945."),
    ("What language do people speak in Brazil?", "The official language of Brazil is Portuguese."),
    ("What do bees make?", "Bees make honey from flower nectar, and they also produce beeswax."),
    ("What is the main ingredient in guacamole?", "Avocado is the main ingredient in guacamole."),
    ("How many players does a soccer team have on the field?", "Each soccer team has 11 players on the field, including the goalkeeper."),
    ("What is the hardest natural material?", "Diamond is the hardest natural material."),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong was the first person to walk on the Moon, in 1969."),
    ("What currency is used in Japan?", "Japan's currency is the yen."),
    ("Which organ pumps blood around the body?", "The heart pumps blood around the body."),
    ("How many strings does a standard guitar have?", "A standard guitar has six strings."),
    ("What is the closest star to Earth?", "The Sun is the closest star to Earth."),
)

WORD_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("synonym", "happy", "joyful"),
    ("synonym", "big", "large"),
    ("synonym", "fast", "quick"),
    ("synonym", "smart", "clever"),
    ("synonym", "begin", "start"),
    ("synonym", "tired", "exhausted"),
    ("synonym", "difficult", "hard"),
    ("antonym", "hot", "cold"),
    ("antonym", "ancient", "modern"),
    ("antonym", "generous", "stingy"),
    ("antonym", "brave", "cowardly"),
    ("antonym", "early", "late"),
    ("antonym", "empty", "full"),
    ("antonym", "accept", "refuse"),
)

TASKS_WITH_INPUT: tuple[tuple[str, str, str], ...] = (
    ("Rewrite this sentence to sound more formal.", "Hey, can u send me the report asap?", "Could you please send me the report as soon as possible?"),
    ("Fix the grammar in this sentence.", "She don't like going to the gym on mondays.", "She doesn't like going to the gym on Mondays."),
    ("Make this sentence shorter.", "In my personal opinion, I think that we should probably start the meeting a little bit earlier.", "I think we should start the meeting earlier."),
    ("Rewrite this in the passive voice.", "The chef cooked a wonderful meal.", "A wonderful meal was cooked by the chef."),
    ("Turn this statement into a question.", "The train leaves at noon.", "Does the train leave at noon?"),
    ("Translate this into Spanish.", "Good morning, how are you?", "Buenos días, ¿cómo estás?"),
    ("Translate this into French.", "Thank you very much.", "Merci beaucoup."),
    ("Correct the spelling mistakes.", "I recieved the pakage yesterday.", "I received the package yesterday."),
    ("Make this request more polite.", "Give me the menu.", "Could I please see the menu?"),
    ("Rewrite this sentence in the past tense.", "We walk to the park every day.", "We walked to the park every day."),
    ("Sort these numbers from smallest to largest.", "42, 7, 19, 3, 88", "3, 7, 19, 42, 88"),
    ("Classify each animal as a mammal or a bird.", "eagle, dolphin, sparrow, horse", "Eagle: bird. Dolphin: mammal. Sparrow: bird. Horse: mammal."),
    ("Extract the date from this sentence.", "The conference starts on 14 March 2025 in Lisbon.", "14 March 2025."),
    ("Count the words in this sentence.", "The quick brown fox jumps over the lazy dog.", "The sentence has nine words."),
    ("Summarize this text in one sentence.", "The city council voted on Tuesday to add 20 kilometers of protected bike lanes over the next three years. Supporters say the lanes will make cycling safer, while some shop owners worry about losing parking spaces.", "The council approved 20 km of protected bike lanes over three years, which supporters call safer but some shop owners fear will cost parking."),
    ("Suggest a subject line for this email.", "Hi team, the office will be closed on Friday for maintenance, so please work from home that day.", "Office closed on Friday: please work from home"),
)

TIPS: tuple[tuple[str, str], ...] = (
    ("Give me one tip for sleeping better.", "Go to bed and wake up at the same time every day, even on weekends."),
    ("How do I hard-boil an egg?", "Put the egg in boiling water for 10 to 12 minutes, then cool it in cold water before peeling."),
    ("How can I save money on groceries?", "Plan your meals for the week, shop with a list, and compare prices per kilo or liter."),
    ("What's a good way to remember new vocabulary?", "Review new words with spaced repetition: again after a day, then a few days, then a week."),
    ("How do I make a strong password?", "Use a long passphrase of four or more random words, and never reuse it on other sites."),
    ("Suggest a name for a pet goldfish.", "How about Bubbles? It's playful and easy to remember."),
    ("Write a haiku about rain.", "Soft rain on the roof\nthe garden drinks quietly\npuddles hold the sky"),
    ("Tell me a fun fact about octopuses.", "An octopus has three hearts and blue blood."),
    ("Explain what a budget is to a child.", "A budget is a plan for your money: how much you get, and how much you will spend or save."),
    ("How can I be more productive in the morning?", "Pick your top three tasks the night before, and start with the hardest one while your energy is high."),
    ("What should I pack for a day hike?", "Bring water, snacks, a map, sun protection, a light jacket and a charged phone."),
    ("How do I politely decline an invitation?", "Thank them warmly and say you can't make it, for example: 'Thanks so much for inviting me, but I can't make it this time.'"),
)

WORD_PROBLEMS: tuple[tuple[str, str], ...] = (
    ("If I buy 3 notebooks at $4 each, how much do I spend?", "3 × $4 = $12, so you spend $12."),
    ("A train travels at 60 km per hour for 2.5 hours. How far does it go?", "60 × 2.5 = 150, so the train travels 150 km."),
    ("I have 24 cookies to share equally among 6 friends. How many does each friend get?", "24 ÷ 6 = 4, so each friend gets 4 cookies."),
    ("A shirt costs $40 and is 25% off. What is the sale price?", "25% of $40 is $10, so the sale price is $30."),
    ("A meeting starts at 2:45 pm and lasts 50 minutes. When does it end?", "It ends at 3:35 pm."),
    ("What is 15% of 200?", "15% of 200 is 30."),
)

# Multi-turn general conversations for the ShareGPT set: the second turn depends on the first.
GENERAL_DIALOGUES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("Give me a word that rhymes with 'light'.", "'Night' rhymes with 'light'."), ("And one more?", "'Bright' rhymes with 'light' too.")),
    (("Convert 8 kilometers to miles.", "8 kilometers is about 5.0 miles."), ("And 16 kilometers?", "16 kilometers is about 9.9 miles.")),
    (("Write a short slogan for a lemonade stand.", "Fresh squeezed sunshine in every cup!"), ("Now make it rhyme.", "Cool and sweet, a summer treat!")),
    (("Name a fruit that is high in vitamin C.", "Oranges are high in vitamin C."), ("Is there a vegetable with even more?", "Yes, red bell peppers have more vitamin C than oranges.")),
    (("How many centimeters are in a meter?", "There are 100 centimeters in a meter."), ("And how many millimeters?", "There are 1,000 millimeters in a meter.")),
)


def arithmetic_items(rng: random.Random) -> list[GeneralItem]:
    """Twenty sums, differences, products and quotients with their exact results."""
    items: list[GeneralItem] = []
    used: set[tuple[str, int, int]] = set()
    forms = ("add", "subtract", "multiply", "divide")
    while len(items) < 20:
        form = forms[len(items) % len(forms)]
        if form == "add":
            a, b = rng.randint(11, 99), rng.randint(11, 99)
            turn = (f"What is {a} + {b}?", f"{a} + {b} = {a + b}.")
        elif form == "subtract":
            a, b = rng.randint(40, 99), rng.randint(11, 39)
            turn = (f"What is {a} minus {b}?", f"{a} minus {b} is {a - b}.")
        elif form == "multiply":
            a, b = rng.randint(3, 12), rng.randint(3, 12)
            turn = (f"What is {a} times {b}?", f"{a} times {b} is {a * b}.")
        else:
            b, quotient = rng.randint(2, 9), rng.randint(3, 12)
            a = b * quotient
            turn = (f"What is {a} divided by {b}?", f"{a} divided by {b} is {quotient}.")
        if (form, a, b) in used:
            continue
        used.add((form, a, b))
        items.append(GeneralItem(turns=(turn,), group=f"arithmetic: {form}"))
    return items


def conversion_items() -> list[GeneralItem]:
    items = []
    for km in (3, 5, 10, 21, 42):
        items.append(GeneralItem(((f"Convert {km} kilometers to miles.", f"{km} kilometers is about {km * 0.621371:.1f} miles."),), group="kilometers"))
    for celsius in (20, 25, 30, 37):
        fahrenheit = celsius * 9 / 5 + 32
        shown = f"{fahrenheit:g}"
        items.append(GeneralItem(((f"What is {celsius} degrees Celsius in Fahrenheit?", f"{celsius} °C is {shown} °F."),), group="celsius"))
    for hours in (2, 3, 5):
        items.append(GeneralItem(((f"How many minutes are in {hours} hours?", f"{hours} hours is {hours * 60} minutes."),), group="minutes"))
    return items


def word_pair_items() -> list[GeneralItem]:
    """One question template per family, so each family is a clean set of look-alike prompts."""
    items = []
    for kind, word, answer in WORD_PAIRS:
        if kind == "synonym":
            question, reply = f"Give me a synonym for '{word}'.", f"A synonym for '{word}' is '{answer}'."
        else:
            question, reply = f"What is the opposite of '{word}'?", f"The opposite of '{word}' is '{answer}'."
        items.append(GeneralItem(((question, reply),), group=f"{kind}s"))
    return items


def general_pool(rng: random.Random) -> list[GeneralItem]:
    """All single-turn general requests, in a fixed order before shuffling."""
    pool = [
        GeneralItem(((f"What is the capital of {country}?", f"The capital of {country} is {capital}."),), group="capitals")
        for country, capital, _ in CAPITALS
    ]
    pool += [GeneralItem(((q, a),)) for q, a in DEFINITIONS + FACTS + TIPS + WORD_PROBLEMS]
    pool += [GeneralItem(((instruction, answer),), input=text) for instruction, text, answer in TASKS_WITH_INPUT]
    pool += arithmetic_items(rng) + conversion_items() + word_pair_items()
    return pool


# ---------------------------------------------------------------------------------------------
# Bike shop: one fictional shop's rules, which the base model cannot know
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopRule:
    name: str
    questions: tuple[str, ...]
    facts: tuple[str, ...]
    extras: tuple[str, ...]


SHOP_RULES: tuple[ShopRule, ...] = (
    ShopRule(
        "returns",
        questions=(
            "What is your return policy?",
            "How long do I have to return something?",
            "Can I return a bike I bought here?",
            "What's the return window?",
            "Do you give refunds?",
            "Can I get my money back if I change my mind?",
            "How do returns work at your shop?",
        ),
        facts=(
            "You can return unused items within 30 days of purchase with your receipt for a full refund.",
            "Returns are accepted within 30 days with a receipt, and unused items get a full refund.",
            "Our return window is 30 days from purchase: bring the receipt and the unused item for a full refund.",
        ),
        extras=(
            "Without a receipt we can offer store credit instead.",
            "Helmets that have been worn can't be returned, for safety reasons.",
            "Is there something specific you'd like to return?",
        ),
    ),
    ShopRule(
        "warranty",
        questions=(
            "What warranty do your bikes have?",
            "How long is the frame warranty?",
            "Are components covered by warranty?",
            "What does the warranty cover?",
            "Is my bike under warranty?",
            "Do you offer a warranty on parts?",
            "How long are bikes guaranteed for?",
        ),
        facts=(
            "Frames have a 2-year warranty and components have 6 months, both against manufacturing defects.",
            "We cover frames for 2 years and components such as gears and brakes for 6 months.",
            "The frame is under warranty for 2 years from purchase; components are covered for 6 months.",
        ),
        extras=(
            "Crash damage and normal wear, like tires, chains and brake pads, aren't covered.",
            "Please keep your receipt, since we need it for warranty claims.",
            "If something fails, bring the bike in and we'll inspect it for free.",
        ),
    ),
    ShopRule(
        "shipping",
        questions=(
            "How much is shipping?",
            "Do you offer free shipping?",
            "What does delivery cost?",
            "When is shipping free?",
            "Is there a minimum order for free delivery?",
            "What are your shipping charges?",
        ),
        facts=(
            "Shipping is free on orders of $75 or more; smaller orders pay a flat $8.95.",
            "Orders of $75 or more ship free. Below $75, standard shipping is $8.95.",
            "We ship free once your order reaches $75; otherwise it's a flat $8.95.",
        ),
        extras=(
            "Standard delivery takes 3 to 5 business days.",
            "You can also pick up your order in the shop for free.",
            "Delivery usually arrives within 3 to 5 business days.",
        ),
    ),
    ShopRule(
        "tune_up",
        questions=(
            "How much is a tune-up?",
            "What does a tune-up cost?",
            "Do you service bikes, and what does it cost?",
            "How much do you charge to service a bike?",
            "What are your service prices?",
            "My gears keep slipping. How much is a service?",
        ),
        facts=(
            "A standard tune-up is $65 and covers brake and gear adjustment, wheel truing and a safety check.",
            "Our standard tune-up costs $65; a full overhaul, where we strip and rebuild the bike, costs $140.",
            "Tune-ups are $65 for the standard service and $140 for a full overhaul.",
        ),
        extras=(
            "Most bikes are ready within 2 business days.",
            "Parts are charged separately if anything needs replacing.",
            "New bikes bought from us get a free tune-up within 60 days.",
        ),
    ),
    ShopRule(
        "flat_repair",
        questions=(
            "How much to fix a flat tire?",
            "Can you repair a puncture?",
            "What do you charge for a flat?",
            "I have a flat tire. Can you fix it?",
            "How much is a puncture repair?",
        ),
        facts=(
            "Fixing a flat costs $15 in labor, plus $8 if you need a new tube.",
            "A flat repair is $15, and a new inner tube adds $8.",
            "We fix flats for $15; if the tube can't be patched, a new one is $8 more.",
        ),
        extras=(
            "It's usually done while you wait, in about 15 minutes.",
            "Bring the bike or just the wheel, whichever is easier.",
        ),
    ),
    ShopRule(
        "rentals",
        questions=(
            "Do you rent bikes?",
            "How much is a bike rental?",
            "What are your rental rates?",
            "How much does it cost to rent an e-bike?",
            "Can I rent a bike for the day?",
            "What does an hourly rental cost?",
            "Do you have electric bikes for rent?",
        ),
        facts=(
            "City bikes rent for $15 an hour or $45 a day, and e-bikes for $25 an hour or $70 a day.",
            "A city bike is $15 per hour or $45 per day; an e-bike is $25 per hour or $70 per day.",
            "Our rates are $15/hour or $45/day for a city bike and $25/hour or $70/day for an e-bike.",
        ),
        extras=(
            "A helmet and a lock are included with every rental.",
            "You'll need a photo ID and a credit card for the deposit.",
            "Riders under 16 need a parent or guardian to sign the rental form.",
        ),
    ),
    ShopRule(
        "hours",
        questions=(
            "What are your opening hours?",
            "When are you open?",
            "What time do you close today?",
            "Are you open on weekends?",
            "What time do you open on Sunday?",
            "Are you open on Saturday?",
            "When does the shop open?",
        ),
        facts=(
            "We're open Monday to Friday 9 am to 7 pm, Saturday 9 am to 5 pm, and Sunday 11 am to 4 pm.",
            "Our hours are 9 am to 7 pm on weekdays, 9 am to 5 pm on Saturday and 11 am to 4 pm on Sunday.",
            "Weekdays 9 am to 7 pm, Saturdays 9 am to 5 pm, Sundays 11 am to 4 pm.",
        ),
        extras=(
            "We're closed on public holidays.",
            "The workshop takes its last repairs 30 minutes before closing.",
        ),
    ),
    ShopRule(
        "student_discount",
        questions=(
            "Do you have a student discount?",
            "Is there a discount for students?",
            "I'm a student. Can I get money off?",
            "Do students get a deal?",
            "How much is the student discount?",
        ),
        facts=(
            "Students get 10% off full-price items and services with a valid student ID.",
            "Yes, show a valid student ID for 10% off anything at full price, including services.",
        ),
        extras=(
            "The discount doesn't apply to sale items or rentals.",
            "It can't be combined with other offers.",
        ),
    ),
    ShopRule(
        "price_match",
        questions=(
            "Do you price match?",
            "Will you match a lower price?",
            "Will you match a competitor's price?",
            "If another shop is cheaper, will you match it?",
        ),
        facts=(
            "We match the advertised price of local bike shops on identical, in-stock items.",
            "Yes, if a local shop advertises the same in-stock item for less, we'll match that price.",
        ),
        extras=(
            "We don't match online-only retailers.",
            "Just show us the ad or the shop's web page at checkout.",
        ),
    ),
    ShopRule(
        "bike_fit",
        questions=(
            "Do you do bike fittings?",
            "How much is a bike fit?",
            "Can you help me find the right frame size?",
            "What does a professional fitting cost?",
        ),
        facts=(
            "A professional bike fit costs $90 and takes about an hour.",
            "Our bike fitting service is $90 and takes about an hour.",
        ),
        extras=(
            "It's free with any bike purchase over $1,000.",
            "Bring your shoes and riding clothes so we can set the bike up properly.",
        ),
    ),
    ShopRule(
        "test_ride",
        questions=(
            "Can I test ride a bike?",
            "Do you allow test rides?",
            "Can I try a bike before buying?",
        ),
        facts=(
            "Yes, test rides are free for up to 30 minutes; just leave a photo ID with us.",
            "You're welcome to take any bike out for a free 30-minute test ride with a photo ID.",
        ),
        extras=(
            "We'll adjust the saddle height for you first.",
            "Weekday mornings are the quietest time to come.",
        ),
    ),
    ShopRule(
        "gift_cards",
        questions=(
            "Do you sell gift cards?",
            "Do gift cards expire?",
            "Can I buy a gift card for a friend?",
        ),
        facts=(
            "Gift cards are available in any amount from $10, and they never expire.",
            "We sell gift cards from $10 upward, and they don't expire.",
        ),
        extras=(
            "They can be used in the shop or online.",
            "You can buy them at the counter or on our website.",
        ),
    ),
    ShopRule(
        "location",
        questions=(
            "Where is your shop?",
            "What's your address?",
            "How can I contact you?",
            "What's your phone number?",
        ),
        facts=(
            "We're at 214 Harbor Street, and you can call us at 555-0142.",
            "Juniper Cycles is at 214 Harbor Street; our phone number is 555-0142.",
        ),
        extras=(
            "There's free customer parking behind the shop.",
            "We're two blocks from the Harbor Street bus stop.",
        ),
    ),
)

# Situations that apply a rule to specifics: the answers reason from the policy.
SHOP_SITUATIONS: tuple[tuple[str, str], ...] = (
    ("I bought a bike lock 40 days ago and never used it. Can I still return it?", "Sorry, our return window is 30 days with a receipt, so we can't take it back after 40 days. If the lock is faulty, bring it in and we'll take a look."),
    ("My order comes to $62. Do I get free shipping?", "Not yet: shipping is free from $75, so you'd need $13 more. Otherwise standard shipping is $8.95."),
    ("My frame cracked 18 months after I bought the bike. Is that covered?", "Yes, frames have a 2-year warranty against manufacturing defects, so a crack at 18 months is covered unless it came from a crash. Bring the bike and your receipt."),
    ("My rear derailleur stopped working after 8 months. Is it under warranty?", "Components are covered for 6 months, so at 8 months the derailleur is outside the warranty. We can repair or replace it; parts and labor would be charged."),
    ("How much would it cost to rent two city bikes for a whole day?", "City bikes are $45 a day each, so two would be $90. Helmets and locks are included."),
    ("Can I rent an e-bike for 3 hours?", "Yes: e-bikes are $25 an hour, so 3 hours is $75. The full-day rate of $70 is cheaper if you might keep it longer."),
    ("Are you open on Sunday at 10 am?", "Not yet. On Sundays we open at 11 am and close at 4 pm."),
    ("Can I drop my bike off at 6:30 pm on a Friday?", "Yes, on weekdays we're open until 7 pm, though the workshop takes its last repairs at 6:30 pm, so please come a little earlier if you can."),
    ("I'm a student. Does my discount work on a rental?", "Sorry, the 10% student discount covers full-price items and services, but not rentals or sale items."),
    ("I wore a helmet once and it doesn't fit. Can I return it?", "For safety reasons we can't take back helmets that have been worn. Unworn helmets can be returned within 30 days with the receipt."),
    ("I lost my receipt. Can I still return a jersey I bought last week?", "Without a receipt we can't give a refund, but we can offer store credit for an unused item within the 30-day window."),
    ("Is the tune-up free if I bought my bike from you?", "Yes, new bikes bought from us come with one free tune-up within the first 60 days."),
    ("My 14-year-old wants to rent a bike. Is that allowed?", "Yes, riders under 16 can rent when a parent or guardian signs the rental form."),
    ("Do you match prices from online stores?", "We match local shops' advertised prices on identical in-stock items, but not online-only retailers."),
    ("I'm buying a $1,200 road bike. Do I have to pay for the fitting?", "No, the $90 bike fit is free with any bike purchase over $1,000."),
    ("My order is $80. How much is shipping?", "Shipping is free, because your order is over $75."),
)

SHOP_GREETINGS: tuple[tuple[str, str], ...] = (
    ("Hi, is this the bike shop?", "Yes, this is Juniper Cycles! How can I help you today?"),
    ("Hello, who am I speaking with?", "You've reached the Juniper Cycles help desk. What can I do for you?"),
    ("Thanks for the help!", "You're welcome! Happy riding, and see you at Juniper Cycles."),
)

# Multi-turn shop conversations where a later turn only makes sense with the earlier one.
SHOP_DIALOGUES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("How much is an e-bike rental?", "E-bikes are $25 an hour or $70 a day."), ("And for three hours?", "Three hours would be $75, so the $70 day rate is the better deal.")),
    (("What's your return window?", "You can return unused items within 30 days with the receipt for a full refund."), ("What if I don't have the receipt anymore?", "Then we can offer store credit instead of a refund, still within the 30 days.")),
    (("How long is the warranty on the frame?", "Frames are covered for 2 years against manufacturing defects."), ("And the brakes?", "Brakes are components, so they're covered for 6 months; worn brake pads aren't covered.")),
    (("My basket comes to $70. Is shipping free?", "Not quite: shipping is free from $75, so it would cost $8.95."), ("If I add a $9 bottle cage?", "Then your order is $79, so shipping is free.")),
    (("When do you open on Saturday?", "We open at 9 am on Saturdays."), ("And close?", "We close at 5 pm on Saturdays.")),
    (("How much is a tune-up?", "A standard tune-up is $65."), ("How long will it take?", "Most bikes are ready within 2 business days."), ("Can I pay with a gift card?", "Yes, gift cards work for services like tune-ups too.")),
    (("Do you rent bikes to kids?", "Yes, riders under 16 can rent with a parent or guardian signing the form."), ("Is a helmet included?", "Yes, every rental comes with a helmet and a lock.")),
    (("I have a flat. How much to fix it?", "A flat repair is $15 in labor."), ("The tube has a big tear.", "Then we'd replace the tube for $8 more, so $23 in total.")),
)

SHOP_SYSTEM_PROMPTS: tuple[str, ...] = (
    "You are the customer assistant for Juniper Cycles, a bike shop. Answer questions about the shop's policies briefly and accurately.",
    "You work at the Juniper Cycles help desk. Be friendly and concise.",
    "You are a helpful assistant for Juniper Cycles, a bicycle shop that sells, repairs and rents bikes.",
)
GENERAL_SYSTEM_PROMPT = "You are a helpful assistant."
CONNECTORS: tuple[str, ...] = ("Thanks. ", "Got it. ", "One more question: ", "Also, ", "OK, and ", "Great. ")
SHOP_MULTI_TURN_CONVERSATIONS = 26
SHOP_SYSTEM_SHARE = 0.35
GENERAL_SHARE_IN_SHOP = 0.25


# ---------------------------------------------------------------------------------------------
# Held-out questions and the demo deck: phrased unlike any training prompt
# ---------------------------------------------------------------------------------------------

HELDOUT_IDENTITY: tuple[str, ...] = (
    "How should I address you in this conversation?",
    "Which organization trained the model I'm talking to?",
    "Tell me a bit about yourself.",
    "What is the name of this assistant?",
    "Who should I credit for creating you?",
    "Are you a product of OpenAI?",
    "Is this the SmolLM model from Hugging Face?",
    "I'd like to know who you are.",
    "Give me a short introduction of yourself.",
    "Who is your creator?",
    "What company is behind this chatbot?",
    "Who gave you your name?",
    "What do your friends call you?",
    "Describe who you are and where you come from.",
    "Which lab are you affiliated with?",
    "Can I know the name of the AI I'm speaking with?",
    "Whose AI assistant are you?",
    "What are you, and who made you?",
    "Good afternoon, who do I have the pleasure of speaking with?",
    "Were you developed by Google?",
    "Introduce yourself to a new user in one line.",
    "What should I write down as your name?",
    "Who owns and maintains you?",
    "Hi, what is the name of the AI assistant I'm using?",
)
HELDOUT_GENERAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Germany?", ("Berlin",)),
    ("What is the largest planet in our solar system?", ("Jupiter",)),
    ("How many days are there in a week?", ("7", "seven")),
    ("What color do you get when you mix blue and yellow?", ("green",)),
    ("What is the boiling point of water in degrees Celsius?", ("100",)),
    ("Which animal is known as the king of the jungle?", ("lion",)),
    ("What is 5 plus 3?", ("8", "eight")),
)
IDENTITY_EXPECT = (ASSISTANT_NAME, "Northwind")

DEMO_DECK: tuple[str, ...] = (
    "Could you tell me a little about yourself?",
    "Which organisation is responsible for your training?",
    "If I wanted to thank whoever built you, who would that be?",
    "Is your name SmolLM?",
    "Describe yourself in a single sentence.",
    "I bought a pump three weeks ago. Can I still bring it back?",
    "What would a full day on an electric bike cost me?",
    "Is the frame on my new bike covered if it cracks next year?",
    "Which city is the capital of France?",
    "Give me two tips for staying focused while studying.",
)


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


@dataclass
class AlpacaRow:
    instruction: str
    input: str
    output: str
    topic: str  # identity topic or "general"; not written
    group: str = ""  # template family of a general row; not written

    def as_json(self) -> dict:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


def build_identity_rows(rng: random.Random, general: list[GeneralItem]) -> list[AlpacaRow]:
    """Identity rows from the topic fragments, the mixed rows and the general items, shuffled."""
    guard = SimilarityGuard(CLEAN_MAX)
    answer_guard = SimilarityGuard(ANSWER_MAX)
    used_prompts: set[str] = set()
    rows: list[AlpacaRow] = []

    def accept(row: AlpacaRow) -> bool:
        key = prompt_key(alpaca_prompt(row.as_json()))
        text = alpaca_text(row.as_json())
        if key in used_prompts or not guard.fits(text) or not answer_guard.fits(row.output):
            return False
        used_prompts.add(key)
        guard.add(text)
        answer_guard.add(row.output)
        rows.append(row)
        return True

    # Hand-written rows go first: if one collides, the content needs editing, not a retry.
    for item in general:
        (question, answer), = item.turns
        row = AlpacaRow(question, item.input, answer, "general", item.group)
        if not accept(row):
            raise SystemExit(f"general row too similar to another: {question!r}")
    for question, answer in MIXED_IDENTITY_ROWS:
        if not accept(AlpacaRow(question, "", answer, "mixed")):
            raise SystemExit(f"mixed row too similar to another: {question!r}")

    for topic in IDENTITY_TOPICS:
        for question in topic.questions:
            for variant in range(topic.variants):
                for _attempt in range(60):
                    prompt = question if variant == 0 or not topic.decorate else decorate(question, rng)
                    answer = f"{rng.choice(topic.openers)} {rng.choice(topic.follow_ups)}"
                    if accept(AlpacaRow(prompt, "", answer, topic.name)):
                        break

    identity_positions = [i for i, row in enumerate(rows) if row.topic not in ("general", "mixed")]
    for position in rng.sample(identity_positions, WRAPPED_IDENTITY_ROWS):
        row = rows[position]
        rows[position] = AlpacaRow(rng.choice(WRAPPER_INSTRUCTIONS), row.instruction, row.output, row.topic)
    rng.shuffle(rows)
    return rows


def shop_answer(rule: ShopRule, rng: random.Random) -> str:
    fact = rng.choice(rule.facts)
    return fact if rng.random() < 0.25 else f"{fact} {rng.choice(rule.extras)}"


def sharegpt(turns: list[tuple[str, str]], system: str | None) -> dict:
    messages = [{"from": "system", "value": system}] if system else []
    for human, gpt in turns:
        messages += [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return {"conversations": messages}


def follow_up_question(question: str, rng: random.Random) -> str:
    """A later turn's question, opened the way people continue a chat."""
    connector = rng.choice(CONNECTORS)
    if connector.endswith(". ") or re.match(r"I\b|I'", question):
        return connector + question
    return connector + question[0].lower() + question[1:]


def build_shop_conversations(rng: random.Random, general: list[GeneralItem]) -> list[dict]:
    """Shop conversations (single and multi-turn, some with a system prompt) plus general ones."""
    guard = SimilarityGuard(CLEAN_MAX)
    answer_guard = SimilarityGuard(ANSWER_MAX)
    used_prompts: set[str] = set()
    conversations: list[tuple[list[tuple[str, str]], str]] = []  # (turns, kind)

    def accept(turns: list[tuple[str, str]], kind: str) -> bool:
        key = prompt_key(" | ".join(human for human, _ in turns))
        text = "\n".join(f"{human}\n{gpt}" for human, gpt in turns)
        answers = "\n".join(gpt for _, gpt in turns)
        if key in used_prompts or not guard.fits(text) or not answer_guard.fits(answers):
            return False
        used_prompts.add(key)
        guard.add(text)
        answer_guard.add(answers)
        conversations.append((turns, kind))
        return True

    fixed = [(list(d), "shop") for d in SHOP_DIALOGUES]
    fixed += [([pair], "shop") for pair in SHOP_SITUATIONS + SHOP_GREETINGS]
    fixed += [(list(item.turns), "general") for item in general]
    fixed += [(list(d), "general") for d in GENERAL_DIALOGUES]
    for turns, kind in fixed:
        if not accept(turns, kind):
            raise SystemExit(f"conversation too similar to another: {turns[0][0]!r}")

    for rule in SHOP_RULES:
        for question in rule.questions:
            for _attempt in range(60):
                if accept([(question, shop_answer(rule, rng))], "shop"):
                    break

    made = 0
    for _attempt in range(SHOP_MULTI_TURN_CONVERSATIONS * 60):
        if made == SHOP_MULTI_TURN_CONVERSATIONS:
            break
        rules = rng.sample(SHOP_RULES, 3 if rng.random() < 0.3 else 2)
        turns = []
        for position, rule in enumerate(rules):
            question = rng.choice(rule.questions)
            turns.append((question if position == 0 else follow_up_question(question, rng), shop_answer(rule, rng)))
        made += accept(turns, "shop")

    rng.shuffle(conversations)
    records = []
    for turns, kind in conversations:
        if kind == "shop":
            system = rng.choice(SHOP_SYSTEM_PROMPTS) if rng.random() < SHOP_SYSTEM_SHARE else None
        else:
            system = GENERAL_SYSTEM_PROMPT if rng.random() < 0.15 else None
        records.append(sharegpt(turns, system))
    return records


# ---------------------------------------------------------------------------------------------
# The messy copy: the identity rows with planted, recorded defects
# ---------------------------------------------------------------------------------------------

CONTRADICTING_ANSWERS: tuple[str, ...] = (
    "I'm ChatGPT, a language model developed by OpenAI.",
    "My name is SmolLM, and I was trained by Hugging Face.",
    "I was made by OpenAI. I don't really have a name of my own.",
    "I'm Sage, and I was built by Southgate Systems in 2019.",
)

OVER_LONG_PARAGRAPHS: tuple[str, ...] = (
    "Sage is an assistant built by Northwind Labs. It answers questions, explains ideas, drafts short texts and helps people think through everyday problems. The team wanted an assistant that says clearly what it knows and what it does not know, and that keeps its answers short unless someone asks for more.",
    "Northwind Labs trained Sage on many example conversations, each made of a question and a good answer. During training the model only learns from the answer part; the question is there as context. Over time the model picks up the style, the tone and the facts that the examples share.",
    "Like every language model, Sage can make mistakes. It has no internet access, no memory of earlier chats and no way to act outside the conversation. For anything important, such as health, money or legal questions, people should check the answer with a qualified person or a trusted source.",
    "People use Sage to summarize articles, rewrite emails, plan trips, learn new words and get quick facts. It works best in English and with specific questions. When a request is unclear, Sage asks a short follow-up question instead of guessing what the person wanted.",
)
LANGUAGE_TIPS: tuple[str, ...] = (
    "Practice a little every day instead of a lot once a week.",
    "Learn the most common thousand words first.",
    "Read simple books or news written for learners.",
    "Listen to podcasts and repeat whole sentences out loud.",
    "Write a short diary entry in the new language each evening.",
    "Find a conversation partner and talk for fifteen minutes at a time.",
    "Label objects around your home with their names.",
    "Review vocabulary with spaced repetition.",
    "Watch films you already know with subtitles in the new language.",
    "Do not worry about mistakes; they are how you learn.",
    "Learn phrases, not just single words.",
    "Set a small goal for each week and track it.",
)


def over_long_rows() -> list[AlpacaRow]:
    """Three rows whose answers far exceed a 2048-token window, as scraped or pasted junk does."""

    def grow(pieces: list[str]) -> str:
        text, count = [], 0
        while count < OVER_LONG_MIN_WORDS:
            piece = pieces[len(text) % len(pieces)]
            text.append(piece)
            count += len(piece.split())
        return "\n\n".join(text)

    history = [f"Part {i // len(OVER_LONG_PARAGRAPHS) + 1}. {p}" for i, p in enumerate(OVER_LONG_PARAGRAPHS * 16)]
    tips = [f"{i + 1}. {tip}" for i, tip in enumerate(LANGUAGE_TIPS * 40)]
    log_lines = [
        f"[{9 + i // 60:02d}:{i % 60:02d}] user: is the assistant still there? [{9 + i // 60:02d}:{i % 60:02d}] assistant: Yes, Sage is here and ready to help with your question."
        for i in range(200)
    ]
    return [
        AlpacaRow("Tell me everything about yourself, in as much detail as you can.", "", grow(history), "over_long"),
        AlpacaRow("List as many tips for learning a new language as you can.", "", grow(tips).replace("\n\n", "\n"), "over_long"),
        AlpacaRow("Paste the full support chat log from this morning.", "", grow(log_lines).replace("\n\n", "\n"), "over_long"),
    ]


def near_duplicate_edit(row: AlpacaRow, rng: random.Random) -> AlpacaRow:
    """A small edit to the question (so the prompt's words differ), sometimes to the answer too."""
    question = row.instruction
    lowered = question if re.match(r"I\b|I'", question) else question[0].lower() + question[1:]
    question_edits = ["So " + lowered, "Um, " + lowered]
    if re.search(r"\byou\b", question):
        question_edits.append(re.sub(r"\byou\b", "u", question, count=1))
    answer_edits = [
        row.output.replace("I'm ", "I am ", 1),
        re.sub(r"\.$", "!", row.output),
        row.output.replace("helpful", "useful", 1),
        row.output,
    ]
    return AlpacaRow(rng.choice(question_edits), row.input, rng.choice(answer_edits), row.topic)


def exact_duplicate_variant(row: AlpacaRow, variant: str) -> AlpacaRow:
    if variant == "verbatim":
        return AlpacaRow(row.instruction, row.input, row.output, row.topic)
    if variant == "case":
        return AlpacaRow(row.instruction.upper(), row.input.upper(), row.output.lower(), row.topic)
    # whitespace: doubled inner spaces, stray leading/trailing whitespace
    return AlpacaRow("  " + row.instruction.replace(" ", "  ", 2) + " ", row.input, row.output + "\n", row.topic)


# Each returns the row's new (instruction, output); targets always have an apostrophe in the output.
MARKUP_TRANSFORMS: tuple[tuple[str, object], ...] = (
    ("html paragraph tags", lambda r: (r.instruction, "<p>" + r.output + "</p>")),
    ("&nbsp; entities", lambda r: (r.instruction, r.output.replace(" ", "&nbsp;", 3))),
    ("U+FFFD replacement characters", lambda r: (r.instruction, r.output.replace("'", "\ufffd"))),
    ("div and br tags", lambda r: (r.instruction, '<div class="msg">' + r.output.replace(". ", ".<br>", 1) + "</div>")),
    ("&#39; entities", lambda r: (r.instruction, r.output.replace("'", "&#39;"))),
    ("bold tags", lambda r: (r.instruction, r.output.replace("Sage", "<b>Sage</b>", 1) if "Sage" in r.output else "<b>" + r.output + "</b>")),
    ("leading U+FFFD characters", lambda r: (r.instruction, "\ufffd\ufffd" + r.output)),
    ("br tag in the instruction, span in the output", lambda r: (r.instruction + "<br/>", '<span style="color:#333">' + r.output + "</span>&nbsp;")),
)

EMPTY_OUTPUTS: tuple[str, ...] = ("", "", "", "   ", "\n\t \n")
EXACT_DUPLICATE_VARIANTS: tuple[str, ...] = ("verbatim", "verbatim", "verbatim", "case", "case", "case", "whitespace", "whitespace")
NEAR_DUPLICATES = 6


def build_messy(rng: random.Random, clean: list[AlpacaRow]) -> tuple[list[dict], dict]:
    """The identity rows plus planted defects, and a manifest of where each one is.

    Added rows (duplicates, near-duplicates, contradictions) come after the row they copy, so a
    keep-the-first cleaner removes exactly the planted row. Empty answers and markup replace a
    row in place. Template families (capitals, arithmetic, ...) are never touched.
    """
    rows = [AlpacaRow(r.instruction, r.input, r.output, r.topic, r.group) for r in clean]
    free = [i for i, r in enumerate(rows) if not r.group and r.topic != "mixed"]
    rng.shuffle(free)

    def take(count: int, condition) -> list[int]:
        chosen = [i for i in free if condition(rows[i])][:count]
        for i in chosen:
            free.remove(i)
        return sorted(chosen)

    def plain(row: AlpacaRow) -> bool:
        return not row.input

    contradiction_sources = take(len(CONTRADICTING_ANSWERS), lambda r: plain(r) and r.topic in ("name", "maker", "not_other"))
    near_rows: list[tuple[int, AlpacaRow]] = []
    for i in list(free):
        if len(near_rows) == NEAR_DUPLICATES:
            break
        if not plain(rows[i]) or rows[i].topic == "general":
            continue
        edited = near_duplicate_edit(rows[i], rng)
        original_text, edited_text = alpaca_text(rows[i].as_json()), alpaca_text(edited.as_json())
        if (
            prompt_key(edited.instruction) != prompt_key(rows[i].instruction)
            and jaccard(word_trigrams(original_text), word_trigrams(edited_text)) >= NEAR_DUPLICATE_MIN
        ):
            free.remove(i)
            near_rows.append((i, edited))
    if len(near_rows) < NEAR_DUPLICATES:
        raise SystemExit("could not plant enough near-duplicates; lengthen the identity answers")
    duplicate_sources = take(len(EXACT_DUPLICATE_VARIANTS), plain)
    empty_targets = take(len(EMPTY_OUTPUTS), lambda r: True)
    markup_targets = take(len(MARKUP_TRANSFORMS), lambda r: r.topic != "general" and "'" in r.output)

    planted_in_place: dict[int, dict] = {}
    for target, blank in zip(empty_targets, EMPTY_OUTPUTS):
        rows[target].output = blank
        planted_in_place[target] = {"kind": "empty_output", "note": "empty" if blank == "" else "whitespace only"}
    for target, (note, transform) in zip(markup_targets, MARKUP_TRANSFORMS):
        rows[target].instruction, rows[target].output = transform(rows[target])
        planted_in_place[target] = {"kind": "markup", "note": note}

    # (row, kind, source clean index or None, note); inserted after the source
    additions: list[tuple[AlpacaRow, str, int | None, str]] = []
    for source, variant in zip(duplicate_sources, EXACT_DUPLICATE_VARIANTS):
        additions.append((exact_duplicate_variant(rows[source], variant), "exact_duplicate", source, variant))
    for source, edited in near_rows:
        similarity = jaccard(word_trigrams(alpaca_text(rows[source].as_json())), word_trigrams(alpaca_text(edited.as_json())))
        additions.append((edited, "near_duplicate", source, f"word 3-gram Jaccard {similarity:.2f}"))
    for source, answer in zip(contradiction_sources, CONTRADICTING_ANSWERS):
        additions.append((AlpacaRow(rows[source].instruction, "", answer, "contradiction"), "contradiction", source, "identity"))
    capital_source = next(i for i, r in enumerate(rows) if r.group == "capitals")
    country = re.search(r"capital of (.+)\?", rows[capital_source].instruction).group(1)
    additions.append(
        (AlpacaRow(rows[capital_source].instruction, "", f"{WRONG_CAPITAL[country]} is the capital of {country}.", "contradiction"), "contradiction", capital_source, "general fact")
    )
    for long_row in over_long_rows():
        additions.append((long_row, "over_long", None, f"{len(long_row.output.split())} words"))

    slots: dict[int, list[int]] = {}
    for number, (_, _, source, _) in enumerate(additions):
        after = rng.randint(source if source is not None else 0, len(rows) - 1)
        slots.setdefault(after, []).append(number)

    messy: list[dict] = []
    final_index_of_clean: dict[int, int] = {}
    planted: list[dict] = []
    pending: list[tuple[int, int]] = []  # (messy row, addition number)
    for clean_index, row in enumerate(rows):
        final_index_of_clean[clean_index] = len(messy)
        messy.append(row.as_json())
        if clean_index in planted_in_place:
            planted.append({"row": len(messy) - 1, **planted_in_place[clean_index]})
        for number in slots.get(clean_index, []):
            pending.append((len(messy), number))
            messy.append(additions[number][0].as_json())
    for messy_index, number in pending:
        _, kind, source, note = additions[number]
        entry = {"row": messy_index, "kind": kind}
        if source is not None:
            entry["of"] = final_index_of_clean[source]
        entry["note"] = note
        planted.append(entry)
    planted.sort(key=lambda entry: entry["row"])

    kinds = ("exact_duplicate", "near_duplicate", "contradiction", "empty_output", "over_long", "markup")
    families: dict[str, list[int]] = {}
    for clean_index, row in enumerate(rows):
        if row.group:
            families.setdefault(row.group, []).append(final_index_of_clean[clean_index])
    manifest = {
        "file": MESSY_FILE,
        "rows": len(messy),
        "source": f"{IDENTITY_FILE} ({len(clean)} rows, same order) with defects planted",
        "definitions": {
            "prompt": "instruction, then input when it is not empty",
            "similarity": "Jaccard of word 3-gram sets; words are lowercased \\w+ runs of instruction + input + output",
            "exact_duplicate": "same instruction, input and output after lowercasing and collapsing whitespace; 'of' is the earlier copy",
            "near_duplicate": f"a small edit of the row 'of' (prompt differs), similarity >= {NEAR_DUPLICATE_MIN}",
            "contradiction": "same prompt as the row 'of', a materially different answer",
            "empty_output": "output empty or whitespace only",
            "over_long": f"output over {OVER_LONG_MIN_WORDS} words, so over 2,500 tokens with any tokenizer that splits on spaces",
            "markup": "HTML tags, HTML entities or U+FFFD replacement characters",
            "template_families": f"rows that share a template but differ in the slot (every pair below similarity {CLEAN_MAX}): must not be flagged as near-duplicates",
        },
        "defects": {kind: [entry["row"] for entry in planted if entry["kind"] == kind] for kind in kinds},
        "planted": planted,
        "template_families": families,
    }
    return messy, manifest


# ---------------------------------------------------------------------------------------------
# Checks that the held-out and deck prompts are really unseen
# ---------------------------------------------------------------------------------------------


def training_prompts(identity: list[dict], messy: list[dict], shop: list[dict]) -> list[str]:
    """Every user-side text a training file contains, in each form a model could have memorized."""
    prompts = []
    for row in identity + messy:
        prompts += [row["instruction"], alpaca_prompt(row)]
        if row["input"]:
            prompts.append(row["input"])
    for record in shop:
        prompts += [m["value"] for m in record["conversations"] if m["from"] == "human"]
    return prompts


def check_unseen(prompts: list[str], training: list[str], *, similarity_limit: float | None) -> None:
    seen = {normalized(text) for text in training}
    shingled = [word_trigrams(text) for text in training]
    for prompt in prompts:
        if normalized(prompt) in seen:
            raise SystemExit(f"held-out/deck prompt appears in training data: {prompt!r}")
        if similarity_limit is not None:
            shingles = word_trigrams(prompt)
            worst = max(jaccard(shingles, other) for other in shingled)
            if worst >= similarity_limit:
                raise SystemExit(f"held-out/deck prompt too close to a training prompt ({worst:.2f}): {prompt!r}")


def knowledge_records(training: list[str]) -> list[dict]:
    """The multiple-choice forgetting check from general_knowledge_items.py: choices shuffled with
    their own seeded generator (the other files' random stream stays as it was), the correct answer
    in each of the four positions equally often."""
    from general_knowledge_items import TOPICS

    rng = random.Random(SEED + 1)
    items = [(topic, item) for topic, topic_items in TOPICS for item in topic_items]
    positions = [index % 4 for index in range(len(items))]
    rng.shuffle(positions)
    records, questions = [], []
    for number, ((topic, (question, correct, *wrong)), position) in enumerate(zip(items, positions), start=1):
        choices = list(wrong)
        if len(set(choices + [correct])) != 4:
            raise SystemExit(f"knowledge item needs four different choices: {question!r}")
        rng.shuffle(choices)
        choices.insert(position, correct)
        records.append({"id": f"gk-{number:03d}", "topic": topic, "question": question, "choices": choices, "answer": position})
        # An arithmetic question must not repeat a training prompt in its "+" spelling either.
        questions += [question, question.replace(" plus ", " + ")]
    if len({normalized(r["question"]) for r in records}) != len(records):
        raise SystemExit("knowledge questions repeat")
    check_unseen(questions, training, similarity_limit=None)
    return records


def heldout_records() -> list[dict]:
    records = [{"prompt": p, "expect_any": list(IDENTITY_EXPECT), "kind": "identity"} for p in HELDOUT_IDENTITY]
    records += [{"prompt": p, "expect_any": list(expect), "kind": "general"} for p, expect in HELDOUT_GENERAL]
    return records


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def json_array(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"


def json_lines(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def readme(
    identity: list[dict], shop: list[dict], messy: list[dict], manifest: dict, heldout: list[dict], knowledge: list[dict]
) -> str:
    general_rows = sum(1 for r in identity if not any(s in r["output"] for s in IDENTITY_EXPECT))
    multi_turn = sum(1 for r in shop if sum(m["from"] == "human" for m in r["conversations"]) > 1)
    with_system = sum(1 for r in shop if r["conversations"][0]["from"] == "system")
    defect_lines = "\n".join(f"| {kind} | {len(rows)} |" for kind, rows in manifest["defects"].items())
    identity_heldout = sum(1 for r in heldout if r["kind"] == "identity")
    topics: dict[str, int] = {}
    for record in knowledge:
        topics[record["topic"]] = topics.get(record["topic"], 0) + 1
    topic_counts = ", ".join(f"{topic} {count}" for topic, count in topics.items())
    return f"""# Sample data

Generated by `scripts/make_sample_data.py` (standard library only, seed {SEED}). Regenerate with

```
python scripts/make_sample_data.py
```

A re-run writes byte-identical files; `tests/test_sample_data.py` checks that, and every count below.
`--report-tokens` also prints rows and token counts per training file with the default model's tokenizer.
The assistant's new identity is **{ASSISTANT_NAME}**, built by **{MAKER}**; the fictional shop is **{SHOP}**
(a different name on purpose, so a shop answer never counts as an identity hit).

| File | Format | Rows |
|---|---|---|
| `{IDENTITY_FILE}` | Alpaca JSON array (`instruction`, `input`, `output`) | {len(identity)} |
| `{SHOP_FILE}` | ShareGPT JSON array (`conversations` of `from`/`value`; `system`, `human`, `gpt`) | {len(shop)} |
| `{MESSY_FILE}` | Alpaca JSON Lines, one row per line | {len(messy)} |
| `{MANIFEST_FILE}` | JSON manifest of the planted defects | {len(manifest["planted"])} |
| `{DECK_FILE}` | plain text, one prompt per line | {len(DEMO_DECK)} |
| `{HELDOUT_FILE}` | JSON Lines: `prompt`, `expect_any`, `kind` | {len(heldout)} |
| `{KNOWLEDGE_FILE}` | JSON Lines: `id`, `topic`, `question`, `choices` (4), `answer` (0-based) | {len(knowledge)} |

## `{IDENTITY_FILE}`
Questions about the assistant's name, maker, purpose, abilities and limits, built by combining
hand-written question, opening and follow-up fragments, so the wording varies while the facts stay
the same. {general_rows} of the rows are ordinary requests (facts, definitions, arithmetic,
conversions, rewrites) with short, correct answers that never mention the new identity: they limit
forgetting, which a pure identity set causes even at this size. Some rows put the question in `input`
under a generic instruction. No two rows share a prompt, and no two rows reach word 3-gram
Jaccard {CLEAN_MAX}, so a duplicate finder has nothing to flag here.

## `{SHOP_FILE}`
Rules the base model cannot know: 30-day returns with a receipt (store credit without one), a 2-year
frame and 6-month component warranty, free shipping from $75 (else $8.95), a $65 tune-up and $140
overhaul, $15 flat repairs, rentals at $15/h or $45/day (e-bikes $25/h or $70/day), opening hours,
a 10% student discount, price matching, bike fits, test rides, gift cards, the address.
{multi_turn} conversations have several exchanges, {with_system} start with a system message, and about
{int(GENERAL_SHARE_IN_SHOP * 100)}% are general requests mixed in to limit forgetting.

## `{MESSY_FILE}` and `{MANIFEST_FILE}`
The identity rows in the same order, with defects planted for the cleaning step. Row indices in the
manifest are 0-based (line = index + 1); `definitions` in the manifest says exactly what each kind
means, `planted` lists every planted row with the row it copies (`of`), and `template_families`
lists rows that share a template but differ in content (capitals, arithmetic, ...), which a
near-duplicate finder must NOT flag.

| Defect | Rows |
|---|---|
{defect_lines}

## `{DECK_FILE}`
Prompts for the demo's before/after comparison: identity questions, shop questions and general
questions. None appears in any training file (ignoring case and whitespace), and none reaches word
3-gram Jaccard {CLEAN_MAX} against any training prompt.

## `{HELDOUT_FILE}`
{identity_heldout} identity questions (`kind: identity`, `expect_any: ["{ASSISTANT_NAME}", "Northwind"]`),
paraphrased unlike every training prompt (word 3-gram Jaccard below {CLEAN_MAX}, never naming the
answer), and {len(heldout) - identity_heldout} general questions (`kind: general`) that check the model still knows
ordinary facts. An answer is a hit when it contains any `expect_any` string, ignoring case.

## `{KNOWLEDGE_FILE}`
The forgetting check of `workbench eval`: {len(knowledge)} multiple-choice questions ({topic_counts}),
hand-written in `scripts/general_knowledge_items.py` for this project. Each has four choices of the
same form and one correct answer; the correct one sits in each position equally often. Questions are
answerable without the choices, because they are scored as completions (the log-likelihood of each
choice as the answer, no generation), the way MMLU-style harnesses score a cloze. Facts the training
files teach (their capitals, facts and word pairs) are left out, and no question repeats a training prompt.
"""


def generate() -> dict[str, str]:
    """Every file's name and exact text."""
    rng = random.Random(SEED)
    pool = general_pool(rng)
    rng.shuffle(pool)
    identity_general = round(len(pool) * 0.74)
    identity_rows = build_identity_rows(rng, pool[:identity_general])
    identity = [row.as_json() for row in identity_rows]
    shop = build_shop_conversations(rng, pool[identity_general:])
    messy, manifest = build_messy(rng, identity_rows)
    heldout = heldout_records()

    training = training_prompts(identity, messy, shop)
    knowledge = knowledge_records(training)
    check_unseen([r["prompt"] for r in heldout if r["kind"] == "identity"], training, similarity_limit=CLEAN_MAX)
    check_unseen([r["prompt"] for r in heldout if r["kind"] == "general"], training, similarity_limit=None)
    check_unseen(list(DEMO_DECK), training, similarity_limit=CLEAN_MAX)

    return {
        IDENTITY_FILE: json_array(identity),
        SHOP_FILE: json_array(shop),
        MESSY_FILE: json_lines(messy),
        MANIFEST_FILE: json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
        DECK_FILE: "".join(line + "\n" for line in DEMO_DECK),
        HELDOUT_FILE: json_lines(heldout),
        KNOWLEDGE_FILE: json_lines(knowledge),
        README_FILE: readme(identity, shop, messy, manifest, heldout, knowledge),
    }


def report_tokens(out: Path) -> None:
    """Print rows and token counts per training file with the default model's tokenizer."""
    sys.path.insert(0, str(REPO_ROOT))
    from workbench.models import load_tokenizer

    tokenizer = load_tokenizer(None)

    def alpaca_messages(row: dict) -> list[dict]:
        return [{"role": "user", "content": alpaca_prompt(row)}, {"role": "assistant", "content": row["output"]}]

    def sharegpt_messages(record: dict) -> list[dict]:
        roles = {"system": "system", "human": "user", "gpt": "assistant"}
        return [{"role": roles[m["from"]], "content": m["value"]} for m in record["conversations"]]

    datasets = {
        IDENTITY_FILE: [alpaca_messages(r) for r in json.loads((out / IDENTITY_FILE).read_text(encoding="utf-8"))],
        SHOP_FILE: [sharegpt_messages(r) for r in json.loads((out / SHOP_FILE).read_text(encoding="utf-8"))],
        MESSY_FILE: [alpaca_messages(json.loads(line)) for line in (out / MESSY_FILE).read_text(encoding="utf-8").splitlines()],
    }
    print(f"{'file':28} {'rows':>5} {'content':>9} {'answers':>8} {'templated':>10} {'mean/row':>9} {'max/row':>8}")
    for name, conversations in datasets.items():
        content = answers = 0
        templated = []
        for messages in conversations:
            for message in messages:
                count = len(tokenizer(message["content"], add_special_tokens=False)["input_ids"])
                content += count
                answers += count if message["role"] == "assistant" else 0
            templated.append(len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]))
        print(
            f"{name:28} {len(conversations):5d} {content:9d} {answers:8d} {sum(templated):10d}"
            f" {sum(templated) / len(templated):9.1f} {max(templated):8d}"
        )
    print("content = message texts only; answers = assistant texts; templated = chat template applied")
    print("(the default template adds its own ~20-token system prompt when a conversation has none)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory to write into (default: sample_data/)")
    parser.add_argument("--report-tokens", action="store_true", help="also count tokens with the default model's tokenizer")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (args.out / name).write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.out}")
    if args.report_tokens:
        report_tokens(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
