"""Character and word error rates, with the standard library only (for the speech runtime).

CER = Levenshtein distance between the normalized texts ÷ the reference's length. The
normalization makes the rate about what was heard, not how it was written: NFKC (full-width
letters and digits fold), lower case, and no punctuation, symbols or spaces, so that Chinese
(written without spaces) and English compare the same way and Whisper's choice of spacing or
full-width punctuation is no error.
"""

from __future__ import annotations

import unicodedata


def normalize_text(text: str) -> str:
    """Text for CER: NFKC, lower case, no punctuation, symbols or spaces.

    Spaces are dropped so that Chinese (no spaces) and English compare the same way, and
    Whisper's spacing or full-width punctuation choices do not count as errors.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text
                   if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZC")


def edit_distance(a, b) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), O(len(a)*len(b)), of two
    strings or two lists of words."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference``, after normalizing."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return round(edit_distance(ref, hyp) / len(ref), 4)


def words(text: str) -> list[str]:
    """The words of ``text`` for WER: NFKC, lower case, no punctuation or symbols."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch if ch.isspace() or unicodedata.category(ch)[0] not in "PSC" else " "
                   for ch in text.replace("'", ""))
    return kept.split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (for languages with spaces)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return round(edit_distance(ref, hyp) / len(ref), 4)
