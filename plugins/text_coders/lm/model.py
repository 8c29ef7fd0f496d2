"""The shipped static English model: vocabulary, unigram weights, word bigrams, letter bigrams.

Built offline by :mod:`sedic_plugins.text_coders.lm.build_model` (wordfreq + WordNet glosses) into
``english.npz``; loading needs only numpy. Every probability derived from it is computed with
elementwise IEEE arithmetic (no transcendental functions), so encoder and decoder agree on any
platform.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("english.npz")
LETTERS = string.ascii_lowercase
UNIGRAM_SCALE = float(1 << 30)
"""Sum of the stored integer unigram weights (up to rounding)."""
END_OF_WORD = len(LETTERS)
"""Letter-model symbol ending a spelled word (also the context of a word's first letter)."""


@dataclass(frozen=True)
class EnglishModel:
    words: tuple[str, ...]
    index: dict[str, int]
    unigram: np.ndarray
    """Probability of each vocabulary word (float64, sums to ~1; scaled by a power of two)."""
    contexts: np.ndarray
    context_total: np.ndarray
    context_types: np.ndarray
    context_start: np.ndarray
    successors: np.ndarray
    successor_count: np.ndarray
    letters: np.ndarray
    """27 x 27 letter-bigram weights over ``a..z`` + end, rows indexed by the previous letter."""

    @property
    def size(self) -> int:
        return len(self.words)

    def bigram(self, prev: int) -> tuple[np.ndarray, np.ndarray, float, float] | None:
        """Successor ids, their counts, the context's total count and number of types."""
        i = int(np.searchsorted(self.contexts, prev))
        if i >= len(self.contexts) or self.contexts[i] != prev:
            return None
        end = self.context_start[i + 1] if i + 1 < len(self.contexts) else len(self.successors)
        sl = slice(int(self.context_start[i]), int(end))
        return self.successors[sl], self.successor_count[sl], float(self.context_total[i]), float(self.context_types[i])


@lru_cache(maxsize=1)
def english() -> EnglishModel:
    """Load the shipped model once per process."""
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        words = tuple(z["words"].tobytes().decode("ascii").split("\n"))
        unigram = z["unigram"].astype(np.float64)
        start = z["context_start"].astype(np.int64)
        successors = z["successor_gap"].astype(np.int64)
        # successor ids are stored as gaps within each context: undo with a segmented cumsum
        seg = np.zeros(len(successors), dtype=np.int64)
        seg[start] = 1
        group = np.cumsum(seg) - 1
        total = np.cumsum(successors)
        base = (total - successors)[start]
        successors = total - base[group]
        model = EnglishModel(
            words=words,
            index={w: i for i, w in enumerate(words)},
            unigram=unigram / UNIGRAM_SCALE,
            contexts=z["contexts"].astype(np.int64),
            context_total=z["context_total"].astype(np.float64),
            context_types=z["context_types"].astype(np.float64),
            context_start=start,
            successors=successors,
            successor_count=z["successor_count"].astype(np.float64),
            letters=letter_bigrams(words),
        )
    return model


def letter_bigrams(words: tuple[str, ...]) -> np.ndarray:
    """Letter-bigram counts over the vocabulary's spellings (add-one smoothed)."""
    counts = np.ones((END_OF_WORD + 1, END_OF_WORD + 1), dtype=np.float64)
    codes = np.frombuffer("\n".join(words).encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("a")
    codes[codes < 0] = END_OF_WORD  # the newline separators
    prev = np.concatenate([[END_OF_WORD], codes])
    nxt = np.concatenate([codes, [END_OF_WORD]])
    np.add.at(counts, (prev, nxt), 1.0)
    counts[END_OF_WORD, END_OF_WORD] = 0.0  # a spelled word has at least one letter
    return counts
