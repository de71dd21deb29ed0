"""Features for the router's task classifier: a conversation as sparse named numbers.

:func:`extract_features` turns the messages into words, word stems (the first letters of
long words, so ``traduire``/``traducir``/``tradurre`` meet), character n-grams of the
instruction's words (so inflections and spellings the training prompts never used still
share weight with ones they did), word pairs, character pairs
for Chinese/Japanese/Korean, hits of the hand-written multilingual cue lexicons
(``data/router_lexicon.json``) and structural signals (code symbols, math notation,
quoted passages, list items, length). The last user turn counts fully; the system
prompt and the rest of the history count with smaller weights, so they steer an
ambiguous turn without overriding a clear one. Very long texts are cut to their head
and tail first: the ask is almost always at one end, and the cut keeps 10,000-character
prompts fast. The scoring lives in :mod:`baton.ai.classifier`; ``scripts/train-router.py``
uses the same features to fit its weights.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

from baton.ai.router_lexicon import CJK, CJK_RUN, Lexicon, load_lexicon, normalise
from baton.schema import message_text

# How much each part of a conversation counts, relative to the last user turn.
SYSTEM_WEIGHT = 0.35
HISTORY_WEIGHT = 0.3
ASSISTANT_WEIGHT = 0.15
HISTORY_TURNS = 6
# Text beyond HEAD + TAIL characters is cut out of the middle (the ask is at an end).
HEAD_CHARS = 1000
TAIL_CHARS = 500
# A quoted or pasted passage counts for this much: what to do with it matters more.
PASSAGE_WEIGHT = 0.5
# Character n-grams of the instruction's words: lengths, and the value of each one present.
NGRAM_LENGTHS = (3, 4, 5)
NGRAM_WEIGHT = 0.5
# Bound on the per-process memo of word -> n-grams (distinct words seen).
_NGRAM_MEMO = 65_536

_LATIN = re.compile("[a-zA-Z]")
# Regexes below are kept to simple shapes on purpose: Python's ``re`` scans long
# alternations position by position, and these run on every request.
_QUOTED = re.compile(
    "(?=[\"\u201c\u00ab\u201e\u300c\u300e'`])(?:"
    '"[^"]{25,}"|\u201c[^\u201d]{25,}\u201d|\u00ab[^\u00bb]{25,}\u00bb'
    "|\u201e[^\u201c\u201d]{25,}[\u201c\u201d]|\u300c[^\u300d]{12,}\u300d|\u300e[^\u300f]{12,}\u300f"
    "|(?<!\\w)'[^']{25,}'(?!\\w)|```.*?```)",
    re.DOTALL,
)
_BREAK = re.compile(r"\n\s*\n|:\s*\n")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022+]|\(?[a-h]\))\s", re.MULTILINE)
_ENUMERATED = re.compile(r"(?<=[(\s][a-h1-9])\)")
_CODE_SYMBOLS = "{}();=<>[]"
_SNAKE_CASE = re.compile(r"[a-z]_[a-z]")
_METHOD_CALL = re.compile(r"\.[a-z_]\w*\(")
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |function |import |from \S+ import|#include|public |private |const |"
    r"let |var |return |SELECT |INSERT |UPDATE |func |fn |package |[+-] )",
    re.MULTILINE,
)
_MATH_SYMBOLS = (
    "\u221a\u2211\u222b\u03c0\u221e\u2248\u2260\u2264\u2265\u00b2\u00b3\u2208\u2200\u2203^%"
)
_MATH_OPERATION = re.compile("[\\d)] ?[-+*/\u00d7\u00f7=<>\u2212^] ?[\\d(a-z]|= ?[\\d?]")
_DIGITS = "0123456789"
_FULLWIDTH_QUESTION = "\uff1f"
_FULLWIDTH_COMMA = "\uff0c"
_SENTENCE_ENDS = (". ", "? ", "! ", ".\n", "?\n", "!\n", "\u3002", "\uff01", "\uff1f")
_ARROWS = ("\u2192", "->", "=>", "\u21d2")
# "en→it", "de>fr": a language pair written as ISO codes around an arrow.
_LANG_PAIR = re.compile(
    r"\b(?:en|de|fr|es|it|pt|nl|pl|ru|zh|ja|ko|ar|sv|tr)\s?(?:\u2192|->|>)\s?"
    r"(?:en|de|fr|es|it|pt|nl|pl|ru|zh|ja|ko|ar|sv|tr)\b",
    re.IGNORECASE,
)
# "2, 6, 12, 20, ?" or "J F M A M _": short items, then a gap to fill.
_GAP = re.compile(r"[_?\u2026]|\.\.\.")
_SEQUENCE_BEFORE_GAP = re.compile(r"(?:\b\w{1,4}\b[ ,;]+){4,}$")
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


@lru_cache(maxsize=_NGRAM_MEMO)
def word_ngrams(word: str) -> frozenset[str]:
    """The ``g:`` features of one word: its n-grams with ``<`` and ``>`` marking its edges.

    Memoised: ordinary prompts reuse a small vocabulary, so most words cost one look-up.
    """
    marked = f"<{word}>"
    return frozenset(
        "g:" + marked[i : i + n] for n in NGRAM_LENGTHS for i in range(len(marked) - n + 1)
    )


def _cut(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def split_passage(text: str) -> tuple[str, str]:
    """(instruction, passage): the ask, and the material it is about.

    Quoted or fenced spans are material. Of a text with a paragraph break (or a colon
    ending a line), the longer side is material when it is clearly longer: the ask comes
    before the pasted text or after it, and it is the short part.
    """
    passages = [m.group(0) for m in _QUOTED.finditer(text)]
    rest = _QUOTED.sub(" ", text) if passages else text
    match = _BREAK.search(rest)
    if match:
        head, tail = rest[: match.start()], rest[match.end() :]
        if len(tail) >= 60 and len(tail) > 1.5 * len(head):
            passages.append(tail)
            rest = head
        elif len(head) >= 60 and len(head) > 1.5 * len(tail):
            passages.append(head)
            rest = tail
    return rest, "\n".join(passages)


class _Features:
    """Accumulates weighted features; a feature's values from several places add up."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.values: dict[str, float] = {}
        self.cue_counts: dict[str, float] = {}
        self.ngram_words: frozenset[str] = frozenset()

    def add(self, name: str, value: float) -> None:
        self.values[name] = self.values.get(name, 0.0) + value

    def add_text(self, text: str, weight: float, ngrams: bool = False) -> None:
        """Word, CJK character (pair) and cue features of ``text``, each once per call.

        With ``ngrams`` (for the instruction, the part that says what to do), its words
        are kept as ``ngram_words``: their character n-grams are features too.
        """
        text = normalise(text)
        lex = self.lexicon
        values = self.values
        cue_counts = self.cue_counts
        cues: list[str] = []
        if CJK.search(text):
            seen: set[str] = set()
            for run in CJK_RUN.findall(text):
                seen.update("c:" + char for char in run)
                seen.update("c:" + run[i : i + 2] for i in range(len(run) - 1))
                cues.extend(lex.cjk_cues(run))
            for name in seen:
                values[name] = values.get(name, 0.0) + weight
            text = CJK_RUN.sub(" ", text)
        words = text.split()
        counts = Counter(words)
        for word, count in counts.items():
            if word.isdigit():
                continue
            name = "w:" + word
            values[name] = values.get(name, 0.0) + weight
            cues.extend(lex.word_cues(word) * count)
        if ngrams:
            self.ngram_words = frozenset(w for w in counts if not w.isdigit())
        pairs = Counter(pairwise(words))
        starts = lex.phrases.keys() & pairs.keys()
        if starts:
            joined = " " + " ".join(words) + " "
            for start in starts:
                for phrase, phrase_cues in lex.phrases[start]:
                    hits = pairs[start] if phrase.count(" ") == 3 else joined.count(phrase)
                    cues.extend(phrase_cues * hits)
        for cue in cues:
            cue_counts[cue] = cue_counts.get(cue, 0.0) + weight

    def finish(self) -> dict[str, float]:
        # Cue hits grow with the log of their count: the third hit says less than the first.
        for cue, count in self.cue_counts.items():
            self.values[cue] = math.log1p(count)
        return self.values


def _count(text: str, chars: str) -> int:
    """Occurrences of any of ``chars`` (one C-speed ``str.count`` each, no regex)."""
    return sum(map(text.count, chars))


def _has_sequence(instruction: str) -> bool:
    """Whether a gap (``_``, ``?``, ``...``) follows a run of short items: a sequence."""
    return any(
        _SEQUENCE_BEFORE_GAP.search(instruction, max(0, gap.start() - 60), gap.start())
        for gap in _GAP.finditer(instruction)
    )


def _structure(features: _Features, text: str, instruction: str, passage: str) -> None:
    """Shape signals of the last user turn: from its head and tail, bar the full length."""
    add = features.add
    length = len(text)
    cut = _cut(text)
    add("s:len", math.log1p(length) / 5.0)
    add("s:instr_len", math.log1p(len(instruction)) / 5.0)
    for bound, name in ((40, "s:len<40"), (120, "s:len<120"), (400, "s:len<400")):
        if length < bound:
            add(name, 1.0)
            break
    else:
        add("s:len>=1500" if length >= 1500 else "s:len<1500", 1.0)
    if passage:
        add("s:passage", 1.0)
        add("s:passage_len", math.log1p(len(passage)) / 5.0)
    add("s:lines", math.log1p(cut.count("\n")))
    if "```" in cut:
        add("s:fence", 1.0)
    add("s:code_symbols", min(1.0, 8.0 * _count(cut, _CODE_SYMBOLS) / max(len(cut), 1)))
    if ("_" in cut and _SNAKE_CASE.search(cut)) or ("(" in cut and _METHOD_CALL.search(cut)):
        add("s:identifier", 1.0)
    code_lines = len(_CODE_LINE.findall(cut))
    if code_lines:
        add("s:code_lines", math.log1p(code_lines))
    math_hits = _count(cut, _MATH_SYMBOLS) + len(_MATH_OPERATION.findall(cut))
    if math_hits:
        add("s:math", math.log1p(math_hits))
    add("s:digits", min(1.0, 4.0 * _count(instruction, _DIGITS) / max(len(instruction), 1)))
    list_items = len(_LIST_ITEM.findall(cut))
    if list_items:
        add("s:list_items", math.log1p(list_items))
    enumerated = len(_ENUMERATED.findall(" " + instruction)) if ")" in instruction else 0
    if enumerated:
        add("s:enumerated", math.log1p(enumerated))
    questions = instruction.count("?") + instruction.count(_FULLWIDTH_QUESTION)
    if questions:
        add("s:questions", math.log1p(questions))
    if instruction.rstrip().endswith(("?", _FULLWIDTH_QUESTION)):
        add("s:ends_question", 1.0)
    sentences = sum(map(instruction.count, _SENTENCE_ENDS)) + instruction.rstrip().endswith(".")
    add("s:sentences", math.log1p(sentences))
    add("s:commas", math.log1p(instruction.count(",") + instruction.count(_FULLWIDTH_COMMA)))
    if any(arrow in cut for arrow in _ARROWS):
        add("s:arrow", 1.0)
    if ("\u2192" in cut or ">" in cut) and _LANG_PAIR.search(cut):
        add("s:lang_pair", 1.0)
    if _has_sequence(instruction):
        add("s:sequence", 1.0)
    if _EMOJI.search(cut):
        add("s:emoji", 1.0)
    if CJK.search(cut):
        add("s:cjk", 1.0)
        if _LATIN.search(cut):
            add("s:mixed_script", 1.0)


def _role_and_text(message: Any) -> tuple[str, str]:
    return str(getattr(message, "role", "")), message_text(getattr(message, "content", None))


@dataclass(frozen=True)
class Extracted:
    """A conversation's features, with its character n-grams kept as the words they come
    from: the classifier scores those per word from a memo (far cheaper than hundreds of
    separate n-gram look-ups per prompt), training expands them (:func:`ngram_features`).
    """

    features: dict[str, float]
    ngram_words: frozenset[str]


def ngram_features(words: Iterable[str]) -> dict[str, float]:
    """The ``g:`` features of a set of words: each n-gram of any of them, once."""
    return dict.fromkeys(set[str]().union(*map(word_ngrams, words)), NGRAM_WEIGHT)


def extract_features(messages: Sequence[Any]) -> dict[str, float]:
    """Every named feature value of a conversation, n-grams included (training's view)."""
    extracted = extract(messages)
    return extracted.features | ngram_features(extracted.ngram_words)


def extract(messages: Sequence[Any]) -> Extracted:
    """The features of a conversation (the model's input), n-grams as their words.

    The last user turn gives every feature at full weight (its instruction fully, quoted
    material at ``PASSAGE_WEIGHT``; the instruction's words also give their n-grams);
    system/developer prompts and up to ``HISTORY_TURNS`` earlier turns add their words
    and cues at smaller weights.
    """
    parts = [_role_and_text(m) for m in messages]
    last = max(
        (i for i, (role, text) in enumerate(parts) if role == "user" and text.strip()), default=None
    )
    if last is None:
        last = max((i for i, (_, text) in enumerate(parts) if text.strip()), default=None)
    if last is None:
        return Extracted({}, frozenset())
    features = _Features(load_lexicon())
    text = parts[last][1]
    instruction, passage = split_passage(_cut(text))
    features.add_text(instruction, 1.0, ngrams=True)
    if passage:
        features.add_text(passage, PASSAGE_WEIGHT)
    _structure(features, text, instruction, passage)
    earlier = 0
    for i in range(len(parts) - 1, -1, -1):
        role, other = parts[i]
        if i == last or not other.strip():
            continue
        if role in ("system", "developer"):
            features.add_text(_cut(other), SYSTEM_WEIGHT)
        elif earlier < HISTORY_TURNS:
            earlier += 1
            features.add_text(_cut(other), HISTORY_WEIGHT if role == "user" else ASSISTANT_WEIGHT)
    return Extracted(features.finish(), features.ngram_words)
