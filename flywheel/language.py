"""The language of an item's text, for routing it to reviewers who read it.

`lingua-language-detector` runs offline on its own bundled models. It tells apart only the
languages it is given: those the policy's routes test and those the roster's reviewers read.
All of its 75 languages would cost a gigabyte of memory and mistake short English for Tagalog;
the team's own languages are the ones a route can act on. A text the detector cannot place
with confidence (a word or two, a mix) gets no language, and no language rule matches it.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

from flywheel.errors import FlywheelError

# how much likelier the first language must be than the second for an answer (lingua's
# minimum relative distance): below it a short or mixed text gets none
MIN_RELATIVE_DISTANCE = 0.1


def iso_code(code: str) -> IsoCode639_1:
    """A two-letter code as lingua knows it, or a clear error."""
    try:
        return IsoCode639_1.from_str(code)
    except ValueError:
        raise FlywheelError(f"language {code!r}: not an ISO 639-1 code lingua knows") from None


@lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]) -> LanguageDetector:
    isos = [iso_code(c) for c in codes]
    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*isos)
    return builder.with_minimum_relative_distance(MIN_RELATIVE_DISTANCE).build()


def detect_languages(texts: pd.Series, codes: list[str]) -> pd.Series:
    """Each text's language among `codes` (ISO 639-1), None where unsure or empty."""
    if not codes or texts.empty:
        return pd.Series(None, index=texts.index, dtype=object)
    if len(codes) == 1:
        # lingua needs two languages to compare; one language is every text's
        return pd.Series(codes[0], index=texts.index, dtype=object).where(
            texts.fillna("").str.strip().ne("")
        )
    found = _detector(tuple(sorted(set(codes)))).detect_languages_in_parallel_of(
        texts.fillna("").astype(str).tolist()
    )
    names = [lang.iso_code_639_1.name.lower() if lang is not None else None for lang in found]
    return pd.Series(names, index=texts.index, dtype=object)
