"""The chat / compare engine: the base model loaded once, adapters attached to it, answers for
several sides from one batched `generate`, streamed with timings; blind A/B votes and prompt decks.

Modules:
    settings   SamplingSettings (temperature, top-p, top-k, max new tokens, repetition penalty, seed)
    sources    what a side answers with: a run's adapter (final, best, a checkpoint) or a directory
    prompting  the messages and the exact prompt text a side sees; training-config mismatch warnings
    streaming  a streamer for batched rows, cancel flag, per-row limits and sampling
    timing     time to first token, decode speed, and the latency model in words
    engine     ChatEngine: attach, start (stream), generate (blocking)
    votes      blind A/B rounds, the vote log (ab_votes.jsonl), tally with a Wilson interval, DPO pairs
    deck       prompt deck replay against base and one or more adapters
"""
