"""``lm`` text coder: range coding driven by a static English model plus per-image adaptation.

All strings of an image (caption, names, details) are coded in one stream and share the
adaptive state, so words repeated across them are cheap. Each string is split into maximal runs
of ASCII letters (words) and the gaps between them.

- word: mixture of the shipped unigram, the shipped word bigram (WordNet glosses) for the
  previous word, and a cache of the words already coded for this image; an escape symbol spells
  unknown words with a letter-bigram model (then they join the cache);
- case of each word: lower / Capitalised / UPPER / mixed (letter by letter), adaptive, with
  "sentence start" as context;
- gap: adaptive choice among common separators (" ", ", ", ". ", "-", end of string, ...) with
  the string's role and position as context; an escape codes any other gap character by
  character (any Unicode code point, seen ones cheaper).

The decoder stops with a :class:`FormatError` when it reads far past the data (every symbol
costs at least ~1/64 bit: adaptive counts are halved before they can make a symbol certain).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import constriction
import numpy as np

from sedic_kit.describe import MAX_FIELD_CHARS, MAX_TEXTS
from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.roles import TextCoder

from .model import END_OF_WORD, LETTERS, EnglishModel, english
from .rangecoding import bytes_to_words, words_to_bytes

Categorical = constriction.stream.model.Categorical
Uniform = constriction.stream.model.Uniform
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder

SPLIT = re.compile(r"([A-Za-z]+)")
BIGRAM_BETA = 4.0
"""Witten-Bell-like confidence of a bigram context: total / (total + beta * types)."""
CACHE_MAX = 0.4
CACHE_HALF = 20.0
"""Weight of the per-image word cache: CACHE_MAX * n / (n + CACHE_HALF) after n words."""
ESCAPE_WEIGHT = 0.002
"""Static probability of an out-of-vocabulary word."""
COUNT_LIMIT = 1024.0
"""Adaptive counts are halved when their sum exceeds this."""
AFTER_EXHAUSTED = 4096
"""Symbols a valid stream can still hold once the decoder has read past its data."""

# Gaps: (string, ends the text). ("", False) only occurs before the first word.
GAPS: tuple[tuple[str, bool], ...] = (
    ("", False), (" ", False), (", ", False), (". ", False), ("-", False), ("'", False),
    ("; ", False), (": ", False), (" (", False), (") ", False), ("/", False), (" & ", False),
    ("", True), (".", True), ("!", True), ("?", True), (")", True),
)
GAP_INDEX = {g: i for i, g in enumerate(GAPS)}
ESCAPE_GAP, ESCAPE_GAP_END = len(GAPS), len(GAPS) + 1
START_PRIOR = np.array([60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 1], dtype=np.float64) + 0.05
MIDDLE_PRIOR = np.array([0, 60, 6, 3, 4, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 4, 4, 0.3, 0.3, 0.3, 1, 1], dtype=np.float64) + 0.05

# Case of a word.
LOWER, CAPITAL, UPPER, MIXED = range(4)
CASE_PRIOR = {True: np.array([2.0, 20.0, 0.5, 0.2]), False: np.array([40.0, 2.0, 0.5, 0.2])}

# Characters of escaped gaps: ASCII except letters, then "other code point", then stop.
GAP_CHARS = tuple(chr(c) for c in range(128) if not chr(c).isalpha())
GAP_CHAR_INDEX = {c: i for i, c in enumerate(GAP_CHARS)}
OTHER_CHAR, STOP_CHAR = len(GAP_CHARS), len(GAP_CHARS) + 1
CHAR_PRIOR = np.array([1.0 if c.isprintable() else 0.05 for c in GAP_CHARS] + [2.0, 4.0])
CODE_POINTS = 0x110000
NEW_POINT = 0
"""Symbol of the code-point model meaning "not seen yet in this image"."""

COUNTS = (0, 1, 3, 5, 7)
"""Usual numbers of strings (caption plus 0-3 objects); others are escaped."""
COUNT_PRIOR = np.array([0.5, 3.0, 3.0, 3.0, 30.0, 1.0])


def _halve(counts: np.ndarray) -> None:
    """Keep adaptive counts bounded (fsum: the same decision on every platform)."""
    if math.fsum(counts) > COUNT_LIMIT:
        counts *= 0.5


class _Session:
    """Adaptive state of one message; encoder and decoder run the same code through ``io``."""

    def __init__(self, model: EnglishModel, io: Callable[[object, int | None], int]) -> None:
        self.m = model
        self.io = io
        self.cache = np.zeros(0, dtype=np.float64)  # counts over vocabulary + escape + new words
        self.cached = 0.0
        self.new_words: list[str] = []
        self.new_index: dict[str, int] = {}
        self.gap_counts = {key: (START_PRIOR if key[1] else MIDDLE_PRIOR).copy() for key in _gap_keys()}
        self.case_counts = {k: v.copy() for k, v in CASE_PRIOR.items()}
        self.char_counts = CHAR_PRIOR.copy()
        self.points: list[int] = []
        self.point_counts = np.array([1.0])

    def categorical(self, weights: np.ndarray, value: int | None) -> int:
        return self.io(Categorical(weights, perfect=False), value)

    def adaptive(self, counts: np.ndarray, value: int | None) -> int:
        symbol = self.categorical(counts, value)
        if not 0 <= symbol < len(counts):
            raise FormatError("corrupt text section (symbol out of range)")
        counts[symbol] += 1.0
        _halve(counts)
        return symbol

    # -- words --------------------------------------------------------------------------
    def word_weights(self, prev: int) -> np.ndarray:
        m = self.m
        size = m.size + 1 + len(self.new_words)
        p = np.zeros(size, dtype=np.float64)
        ctx = m.bigram(prev)
        if ctx is None:
            p[: m.size] = m.unigram
        else:
            ids, counts, total, types = ctx
            lam = total / (total + BIGRAM_BETA * types)
            p[: m.size] = m.unigram * (1.0 - lam)
            p[ids] += counts * (lam / total)
        p[m.size] = ESCAPE_WEIGHT
        if self.cached:
            kappa = CACHE_MAX * self.cached / (self.cached + CACHE_HALF)
            p *= 1.0 - kappa
            p[: len(self.cache)] += self.cache * (kappa / self.cached)
        return p

    def word(self, prev: int, value: str | None) -> tuple[int, str]:
        """Code a lower-case word; return its id (the next word's context) and spelling."""
        m = self.m
        symbol = None
        if value is not None:
            symbol = m.index.get(value)
            if symbol is None:
                symbol = self.new_index.get(value, m.size)
        symbol = self.categorical(self.word_weights(prev), symbol)
        if symbol < m.size:
            word = m.words[symbol]
        elif symbol == m.size:
            word = self.spell(value)
            symbol = self.new_index.setdefault(word, m.size + 1 + len(self.new_words))
            if symbol == m.size + 1 + len(self.new_words):
                self.new_words.append(word)
        else:
            word = self.new_words[symbol - m.size - 1]
        if len(self.cache) <= symbol:
            self.cache = np.concatenate([self.cache, np.zeros(symbol + 1 - len(self.cache))])
        self.cache[symbol] += 1.0
        self.cached += 1.0
        return (symbol if symbol < m.size else -1), word

    def spell(self, value: str | None) -> str:
        out: list[str] = []
        prev = END_OF_WORD
        while True:
            letter = None
            if value is not None:
                letter = LETTERS.index(value[len(out)]) if len(out) < len(value) else END_OF_WORD
            letter = self.categorical(self.m.letters[prev], letter)
            if letter == END_OF_WORD:
                break
            out.append(LETTERS[letter])
            prev = letter
        return "".join(out)

    def case(self, sentence_start: bool, word: str, value: str | None) -> str:
        kind = None
        if value is not None:
            if value.islower():
                kind = LOWER
            elif value[0].isupper() and (len(value) == 1 or value[1:].islower()):
                kind = CAPITAL
            elif value.isupper():
                kind = UPPER
            else:
                kind = MIXED
        kind = self.adaptive(self.case_counts[sentence_start], kind)
        if kind == LOWER:
            return word
        if kind == CAPITAL:
            return word.capitalize()
        if kind == UPPER:
            return word.upper()
        source = word if value is None else value
        flags = [self.io(Uniform(2), None if value is None else int(c.isupper())) for c in source]
        return "".join(c.upper() if f else c for c, f in zip(word, flags))

    # -- gaps ---------------------------------------------------------------------------
    def gap(self, role: int, start: bool, value: tuple[str, bool] | None) -> tuple[str, bool]:
        symbol = None
        if value is not None:
            symbol = GAP_INDEX.get(value, ESCAPE_GAP_END if value[1] else ESCAPE_GAP)
        symbol = self.adaptive(self.gap_counts[role, start], symbol)
        if symbol < len(GAPS):
            return GAPS[symbol]
        chars: list[str] = []
        target = None if value is None else value[0]
        while True:
            i = None
            if target is not None:
                i = STOP_CHAR if len(chars) == len(target) else GAP_CHAR_INDEX.get(target[len(chars)], OTHER_CHAR)
            i = self.adaptive(self.char_counts, i)
            if i == STOP_CHAR:
                break
            if len(chars) >= MAX_FIELD_CHARS:
                raise FormatError(f"corrupt text section (a field longer than {MAX_FIELD_CHARS} characters)")
            point = None if target is None else ord(target[len(chars)])
            chars.append(GAP_CHARS[i] if i < OTHER_CHAR else self.code_point(point))
        return "".join(chars), symbol == ESCAPE_GAP_END

    def code_point(self, value: int | None) -> str:
        known = None if value is None else (self.points.index(value) + 1 if value in self.points else NEW_POINT)
        known = self.adaptive(self.point_counts, known) if self.points else NEW_POINT
        if known != NEW_POINT:
            return chr(self.points[known - 1])
        point = self.io(Uniform(CODE_POINTS), value)
        self.points.append(point)
        self.point_counts = np.append(self.point_counts, 1.0)
        return chr(point)

    # -- messages -----------------------------------------------------------------------
    def count(self, value: int | None) -> int:
        symbol = None if value is None else (COUNTS.index(value) if value in COUNTS else len(COUNTS))
        symbol = self.categorical(COUNT_PRIOR, symbol)
        if symbol < len(COUNTS):
            return COUNTS[symbol]
        hi = self.io(Uniform(1 << 16), None if value is None else value >> 16)
        lo = self.io(Uniform(1 << 16), None if value is None else value & 0xFFFF)
        return hi << 16 | lo

    def text(self, role: int, value: str | None) -> str:
        parts = SPLIT.split(value) if value is not None else None
        out: list[str] = []
        gap_value = None if parts is None else (parts[0], len(parts) == 1)
        piece, end = self.gap(role, True, gap_value)
        out.append(piece)
        sentence_start, prev, k, length = True, self.m.size, 1, len(piece)
        while not end:
            if length > MAX_FIELD_CHARS:
                raise FormatError(f"corrupt text section (a field longer than {MAX_FIELD_CHARS} characters)")
            word_value = None if parts is None else parts[k]
            prev, word = self.word(prev, None if word_value is None else word_value.lower())
            out.append(self.case(sentence_start, word, word_value))
            gap_value = None if parts is None else (parts[k + 1], k + 2 == len(parts))
            piece, end = self.gap(role, False, gap_value)
            out.append(piece)
            length += len(word) + len(piece)
            sentence_start = any(c in ".!?" for c in piece)
            if prev < 0:
                prev = self.m.size  # after an unknown word: back off to the start context
            k += 2
        return "".join(out)


def _gap_keys() -> list[tuple[int, bool]]:
    return [(role, start) for role in range(3) for start in (True, False)]


def _role(i: int) -> int:
    """0 caption, 1 object name, 2 object details (``Payload.texts()`` order)."""
    return 0 if i == 0 else 1 + (i + 1) % 2


class LmTextCoder(TextCoder):
    """Range coding with a static English word model (unigram + bigram) and per-image adaptation."""

    name = "lm"

    def encode(self, texts: list[str]) -> bytes:
        encoder = RangeEncoder()

        def put(model: object, value: int | None) -> int:
            encoder.encode(value, model)
            return value  # type: ignore[return-value]

        session = _Session(english(), put)
        session.count(len(texts))
        for i, t in enumerate(texts):
            session.text(_role(i), t)
        return words_to_bytes(encoder.get_compressed(), lambda d: self._decodes_to(d, texts))

    def _decodes_to(self, data: bytes, texts: list[str]) -> bool:
        try:
            return self.decode(data) == texts
        except FormatError:
            return False

    def decode(self, data: bytes) -> list[str]:
        decoder = RangeDecoder(bytes_to_words(data))
        budget = [64 * (8 * len(data) + 64), AFTER_EXHAUSTED]

        def get(model: object, value: int | None) -> int:
            budget[0] -= 1
            if decoder.maybe_exhausted():
                budget[1] -= 1
            if budget[0] < 0 or budget[1] < 0:
                raise FormatError("corrupt text section (decodes past its end)")
            try:
                return int(decoder.decode(model))
            except (AssertionError, ValueError) as exc:
                raise FormatError(f"corrupt text section ({exc})") from None

        session = _Session(english(), get)
        count = session.count(None)
        if count > MAX_TEXTS:
            raise FormatError(f"corrupt text section ({count} strings, at most {MAX_TEXTS})")
        return [session.text(_role(i), None) for i in range(count)]


@hookimpl
def register_entropy_coders(register: Register) -> None:
    register(LmTextCoder)
