"""The router classifier's vocabulary: text normalisation and the multilingual cue
lexicons (``data/router_lexicon.json``), built once per process.

Normalising folds case, accents and punctuation so one cue matches every spelling; the
lexicon maps words, stems (the first letters of long words, so ``traduire``/``traducir``
/``tradurre`` meet), phrases and CJK character runs to named cues that
:mod:`baton.ai.router_features` turns into features.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

_LEXICON_FILE = "router_lexicon.json"

# Scripts written without spaces between words: kana, CJK ideographs, hangul.
_CJK_RANGES = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
CJK = re.compile(f"[{_CJK_RANGES}]")

# Where accented letters and punctuation live (Latin, Greek, Cyrillic, Vietnamese; general
# punctuation, currency, arrows, maths and other symbols; CJK punctuation; fullwidth forms).
# Scanning only these keeps building the table to a few milliseconds at import (cold start).
_FOLD_RANGES = (
    (0x0000, 0x0700),
    (0x1E00, 0x1F00),
    (0x2000, 0x2C00),
    (0x3000, 0x3040),
    (0xFF00, 0xFFF0),
)


def _fold_table() -> dict[int, str | None]:
    """``str.translate`` table: accents off, apostrophes out, punctuation to spaces.

    Built once, so that normalising is one C-speed ``translate`` and splitting into words
    one ``str.split``: a word regex over the text costs several times more.
    """
    table: dict[int, str | None] = {ord("'"): None, ord("\u2019"): None}
    for code in (code for start, end in _FOLD_RANGES for code in range(start, end)):
        char = chr(code)
        category = unicodedata.category(char)
        if category[0] in "PSZC" and code not in table:
            table[code] = " "
        elif category[0] == "L" and code > 0x7F:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            if base and base != char and base.isalpha():
                table[code] = base
    return table


_FOLD = _fold_table()
_SPECIAL_WORDS = (("c++", " cpp "), ("c#", " csharp "), ("f#", " fsharp "), ("tl;dr", " tldr "))
CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")


def normalise(text: str) -> str:
    """Case-folded words without accents, apostrophes or punctuation (``what's`` -> ``whats``).

    Casefolding first: it turns ``ß`` into ``ss`` and the like before the table applies.
    """
    text = text.casefold()
    for raw, word in _SPECIAL_WORDS:
        if raw in text:
            text = text.replace(raw, word)
    return text.translate(_FOLD)


# Bound on the per-process memo of word -> cues (distinct words seen); cleared when full.
_MEMO_LIMIT = 50_000


@dataclass(frozen=True)
class Lexicon:
    """The cue lexicons, indexed for look-up while walking the tokens once."""

    words: dict[str, tuple[str, ...]]
    prefixes: dict[str, tuple[str, ...]]
    prefix_lengths: tuple[int, ...]
    # first two words -> [(" the whole phrase ", cues)]: phrases of two or more words,
    # padded with spaces so that counting them in the space-joined words counts whole words
    phrases: dict[tuple[str, str], tuple[tuple[str, tuple[str, ...]], ...]]
    # CJK substrings, matched on runs of CJK characters
    cjk: dict[str, tuple[str, ...]]
    cjk_lengths: tuple[int, ...]
    # word -> its word and stem cues: real prompts repeat words, so each costs one look-up
    memo: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    def word_cues(self, token: str) -> tuple[str, ...]:
        found = self.memo.get(token)
        if found is None:
            hits = list(self.words.get(token, ()))
            for length in self.prefix_lengths:
                if len(token) >= length:
                    hits.extend(self.prefixes.get(token[:length], ()))
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()
            found = self.memo[token] = tuple(hits)
        return found

    def cjk_cues(self, run: str) -> list[str]:
        found: list[str] = []
        for length in self.cjk_lengths:
            for start in range(len(run) - length + 1):
                found.extend(self.cjk.get(run[start : start + length], ()))
        return found


def build_lexicon(groups: Mapping[str, Iterable[str]]) -> Lexicon:
    """Index ``{cue name: entries}``; entries are normalised and tokenized like prompts.

    An entry is a word, a ``stem*`` (any word starting with it), several words (a phrase)
    or, when it holds CJK characters, a substring.
    """
    words: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}
    phrases: dict[tuple[str, str], dict[str, list[str]]] = {}
    cjk: dict[str, list[str]] = {}
    for cue, entries in groups.items():
        for entry in entries:
            entry = entry.strip()
            text = normalise(entry)
            if CJK.search(text):
                cjk.setdefault(text.strip(), []).append(cue)
                continue
            tokens = text.split()
            if len(tokens) > 1:
                padded = " " + " ".join(tokens) + " "
                start = (tokens[0], tokens[1])
                phrases.setdefault(start, {}).setdefault(padded, []).append(cue)
            elif tokens and entry.endswith("*"):
                prefixes.setdefault(tokens[0], []).append(cue)
            elif tokens:
                words.setdefault(tokens[0], []).append(cue)
    return Lexicon(
        words={k: tuple(sorted(set(v))) for k, v in words.items()},
        prefixes={k: tuple(sorted(set(v))) for k, v in prefixes.items()},
        prefix_lengths=tuple(sorted({len(k) for k in prefixes})),
        phrases={
            first: tuple((phrase, tuple(sorted(set(cues)))) for phrase, cues in sorted(by.items()))
            for first, by in phrases.items()
        },
        cjk={k: tuple(sorted(set(v))) for k, v in cjk.items()},
        cjk_lengths=tuple(sorted({len(k) for k in cjk})),
    )


@cache
def load_lexicon() -> Lexicon:
    """The shipped cue lexicons, read once per process."""
    raw = json.loads(resources.files("baton.data").joinpath(_LEXICON_FILE).read_text("utf-8"))
    groups: dict[str, list[str]] = {}
    for name, entries in raw["tasks"].items():
        groups[f"L:{name}"] = entries
    groups["L:language"] = raw["languages"]
    for name, entries in raw["complexity"].items():
        groups[f"C:{name}"] = entries
    return build_lexicon(groups)
