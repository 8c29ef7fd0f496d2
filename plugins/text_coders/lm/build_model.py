"""Offline builder of the shipped English model (``english.npz``); not used at run time.

Sources, both installable from package registries:

- word frequencies of ``wordfreq`` (PyPI, ``pip install wordfreq``), English, alphabetic words;
- the glosses of WordNet 3.0 (Debian package ``wordnet-base``, files ``data.{noun,verb,adj,adv}``),
  ~1.5 M words of short descriptive English: unigram counts and word bigrams.

Usage: ``python -m sedic_plugins.text_coders.lm.build_model /usr/share/wordnet plugins/text_coders/lm/english.npz``
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path
from typing import Any

import numpy as np

from .model import UNIGRAM_SCALE

WORD = re.compile(r"[a-z]+")
WORDFREQ_TOP = 60_000
"""Most frequent wordfreq words kept."""
GLOSS_MIN = 2
"""Gloss words kept when seen at least this often."""
BIGRAM_MIN = 2
"""Gloss bigrams kept when seen at least this often."""
WORDFREQ_SHARE = 0.3
"""Weight of wordfreq in the unigram mixture (the rest: gloss counts)."""
WORDFREQ_EXPONENT = 0.8
"""Flattening of wordfreq frequencies (descriptive text uses rarer words than the web)."""


def glosses(wordnet: Path) -> list[list[str]]:
    """Tokenised glosses (definitions and examples) of every synset."""
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (wordnet / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "| " not in line:
                continue
            out.append(WORD.findall(line.split("| ", 1)[1].lower()))
    return out


def build(wordnet: Path) -> dict[str, np.ndarray]:
    from wordfreq import get_frequency_dict

    sentences = glosses(wordnet)
    uni = collections.Counter(w for s in sentences for w in s)
    freq = get_frequency_dict("en")
    top = [w for w in freq if WORD.fullmatch(w)][:WORDFREQ_TOP]
    vocab = set(top) | {w for w, c in uni.items() if c >= GLOSS_MIN}
    wf = {w: freq.get(w, 0.0) ** WORDFREQ_EXPONENT for w in vocab}
    wf_total = sum(wf.values())
    gl_total = sum(uni[w] for w in vocab)
    weight = {w: WORDFREQ_SHARE * wf[w] / wf_total + (1 - WORDFREQ_SHARE) * uni[w] / gl_total for w in vocab}
    words = sorted(vocab, key=lambda w: (-weight[w], w))
    ids = {w: i for i, w in enumerate(words)}
    unigram = np.array([max(1, round(weight[w] * UNIGRAM_SCALE)) for w in words], dtype=np.uint32)

    start = len(words)  # context id of "start of text"
    pairs: collections.Counter[tuple[int, int]] = collections.Counter()
    for s in sentences:
        seq = [ids.get(w, -1) for w in s]
        for a, b in zip([start, *seq], seq):
            if a >= 0 and b >= 0:
                pairs[a, b] += 1
    context_total: collections.Counter[int] = collections.Counter()
    context_types: collections.Counter[int] = collections.Counter()
    for (a, _), c in pairs.items():
        context_total[a] += c
        context_types[a] += 1
    kept = sorted((a, b, c) for (a, b), c in pairs.items() if c >= BIGRAM_MIN)
    contexts = np.array(sorted({a for a, _, _ in kept}), dtype=np.int64)
    prev = np.array([a for a, _, _ in kept], dtype=np.int64)
    nxt = np.array([b for _, b, _ in kept], dtype=np.int64)
    offsets = np.searchsorted(prev, contexts, side="left")
    # within a context successors are sorted: store gaps (small numbers compress well)
    gaps = np.diff(nxt, prepend=0)
    gaps[offsets] = nxt[offsets]
    return {
        "words": np.frombuffer("\n".join(words).encode("ascii"), dtype=np.uint8),
        "unigram": unigram,
        "contexts": contexts.astype(np.uint32),
        "context_total": np.array([context_total[a] for a in contexts], dtype=np.uint32),
        "context_types": np.array([context_types[a] for a in contexts], dtype=np.uint32),
        "context_start": offsets.astype(np.uint32),
        "successor_gap": gaps.astype(np.uint32),
        "successor_count": np.array([c for _, _, c in kept], dtype=np.uint32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wordnet", type=Path, help="WordNet dict folder (data.noun, ...)")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    arrays: dict[str, Any] = build(args.wordnet)
    np.savez_compressed(args.output, **arrays)
    print(f"{args.output}: {args.output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
