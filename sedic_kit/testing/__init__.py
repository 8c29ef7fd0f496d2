"""Test-only tooling shipped with sedic-kit: the decoder fuzzer and its crafted hostile files.

Not part of the codec: nothing in ``sedic_kit`` imports it. ``benchmarks/fuzz_decoder.py`` and the
tests drive it, and third-party decoders can reuse it on their own sections.
"""
