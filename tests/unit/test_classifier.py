"""The router's task classifier: behaviour on clear prompts, conversation handling, edge
input, and its held-out accuracy (a guarantee about the shipped model, so a retrained
model that regresses fails here).

The clear prompts below are written for these tests: none is in the dev set or in the
training data, and several are not in English.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baton.ai import classifier, router_features, router_lexicon
from baton.ai.classifier import Classification, classify
from baton.schema import (
    AssistantMessage,
    ChatCompletionRequest,
    SystemMessage,
    TextPart,
    UserMessage,
)
from baton.tasks import COMPLEXITIES, TASK_TYPES
from bench.classifier import evaluate
from bench.router_data import (
    evaluation_prompts,
    held_out_dev,
    near_copies,
    read_rows,
    training_files,
)


def user(text: str) -> UserMessage:
    return UserMessage(role="user", content=text)


def one(text: str) -> Classification:
    return classify([user(text)])


CLEAR = {
    "code": [
        "How do I read environment variables in a Go program?",
        "This throws NullPointerException on line 3, why?\n\n"
        "String s = map.get(key);\nint n = s.length();",
        "Écris une fonction Python qui vérifie si une chaîne est un palindrome.",
        "Rust で文字列を数値に変換するにはどうすればいいですか？",
    ],
    "math": [
        "What is 18% of 2,350?",
        "Solve 5x + 3 = 2x − 9 and check the answer.",
        "Berechne die Fläche eines Kreises mit dem Radius 7 cm.",
        "一个长方形长12米，宽5米，它的面积是多少平方米？",
    ],
    "reasoning": [
        "All poets are dreamers and no dreamer is punctual. Can a poet be punctual?",
        "What has a neck but no head?",
        "¿Qué número sigue en la serie 3, 6, 12, 24, ?",
    ],
    "creative": [
        "Write a short poem about a lighthouse in winter.",
        "Écris un petit conte pour enfants sur un hérisson qui a peur du noir.",
        "Schreib ein Gedicht über den ersten Schnee.",
        "Give me five catchy slogans for a vegan food truck.",
    ],
    "summarization": [
        "Summarize in two sentences: The library will close for renovation from May to "
        "August. During that time, books can be returned at the town hall, and the online "
        "catalogue stays available. Reopening events are planned for early September.",
        "Fasse diesen Text kurz zusammen: Die Gemeinde baut eine neue Schule, die 2027 "
        "eröffnen soll. Die Kosten liegen bei 20 Millionen Euro, die Hälfte trägt das Land.",
        "请用一句话概括：这家公司今年营收增长了百分之二十，但利润因为原材料涨价而下降。",
    ],
    "translation": [
        "Translate into Spanish: 'The museum opens at nine and closes at five.'",
        "Wie sagt man 'Schmetterling' auf Englisch?",
        "Traduci in francese: 'Domani andiamo al mare con gli amici.'",
        "「ありがとう」を英語で何と言いますか？",
    ],
    "extraction": [
        "Extract the names and phone numbers from this text as JSON: 'Call Lena on "
        "555-0134 or Marco on 555-0199 before Friday.'",
        "Is this review positive or negative? 'The battery died after two days.'",
        "Extrae la fecha y el importe de esta factura: «Factura del 3 de marzo, total 245,00 €.»",
    ],
    "analysis": [
        "What are the pros and cons of moving our team from Slack to Microsoft Teams?",
        "Should a small bakery raise prices by 10% or cut portion sizes? Compare the risks.",
        "Pourquoi les loyers augmentent-ils plus vite que les salaires dans les grandes villes ?",
    ],
    "chat": [
        "Hey! How's your day going?",
        "Thanks so much, that really helped!",
        "Ciao! Come stai oggi?",
        "早上好！今天心情怎么样？",
    ],
}


@pytest.mark.parametrize(
    ("task_type", "prompt"),
    [(task, prompt) for task, prompts in CLEAR.items() for prompt in prompts],
)
def test_clear_prompts_get_their_task_type(task_type: str, prompt: str) -> None:
    assert one(prompt).task_type == task_type


def test_every_task_type_is_covered_by_the_clear_prompts() -> None:
    assert set(CLEAR) == set(TASK_TYPES)


def test_complexity_follows_the_size_of_the_ask() -> None:
    assert one("hi there!").complexity == "low"
    assert one("What's 7 times 8?").complexity == "low"
    big = (
        "Design a multi-region event ingestion platform for 2 million events per second: "
        "choose the queueing and storage technologies and justify each, describe "
        "partitioning and exactly-once processing, plan for a full region outage, estimate "
        "monthly costs, and give a phased migration plan from our current single Postgres "
        "database, with the risks of each phase and how we would roll back."
    )
    assert one(big).complexity == "high"


def test_result_shape_scores_and_confidence() -> None:
    result = one("Translate 'good night' into Italian.")
    assert result.task_type in TASK_TYPES
    assert result.complexity in COMPLEXITIES
    assert set(result.scores) == set(TASK_TYPES)
    assert sum(result.scores.values()) == pytest.approx(1.0)
    assert result.confidence == pytest.approx(max(result.scores.values()))
    assert result.confidence == result.scores[result.task_type]


def test_system_prompt_steers_an_ambiguous_turn() -> None:
    turn = user("'Der Zug hat heute zwanzig Minuten Verspätung.'")
    alone = classify([turn])
    system = SystemMessage(
        role="system",
        content="You are a translator. Render every message the user sends into English.",
    )
    steered = classify([system, turn])
    assert steered.scores["translation"] > alone.scores["translation"]
    assert steered.task_type == "translation"


def test_history_steers_a_short_follow_up() -> None:
    follow_up = user("now make it also handle an empty list")
    alone = classify([follow_up])
    history = [
        user("Write a Python function that returns the median of a list of numbers."),
        AssistantMessage(
            role="assistant",
            content="def median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]",
        ),
        follow_up,
    ]
    with_history = classify(history)
    assert with_history.scores["code"] > alone.scores["code"]
    assert with_history.task_type == "code"


def test_the_last_user_turn_outweighs_system_prompt_and_history() -> None:
    messages: list[Any] = [
        SystemMessage(role="system", content="You are a senior Python engineer and code reviewer."),
        user("Why does my list comprehension raise a NameError?"),
        AssistantMessage(role="assistant", content="The variable is defined after its use."),
        user("Unrelated: write me a haiku about falling leaves in autumn."),
    ]
    assert classify(messages).task_type == "creative"
    messages[-1] = user("¿Cómo se dice 'hoja' en inglés?")
    assert classify(messages).task_type == "translation"


def test_content_parts_are_read_like_plain_text() -> None:
    text = "Solve for y: 4y + 2 = 18"
    parts = UserMessage(role="user", content=[TextPart(type="text", text=text)])
    assert classify([parts]) == classify([user(text)])


def test_messages_from_a_parsed_request_are_accepted() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {"role": "developer", "content": "Answer briefly."},
                {"role": "user", "content": "Translate 'thank you' into Japanese."},
            ],
        }
    )
    assert classify(request.messages).task_type == "translation"


@pytest.mark.parametrize("messages", [[], [user("")], [user("   \n\t ")]])
def test_no_text_is_chat_low_with_no_confidence(messages: list[Any]) -> None:
    result = classify(messages)
    assert (result.task_type, result.complexity, result.confidence) == ("chat", "low", 0.0)


def test_a_system_prompt_alone_is_classified() -> None:
    only_system = [SystemMessage(role="system", content="Translate the following into German.")]
    assert classify(only_system).task_type == "translation"


def test_huge_input_is_cut_to_head_and_tail() -> None:
    head = "Summarize the following report in five bullet points for the board.\n\n"
    head += "Revenue grew in every region while costs stayed flat. " * 30
    tail = "Margins improved and the outlook for next year is stable. " * 15
    assert len(head) > router_features.HEAD_CHARS and len(tail) > router_features.TAIL_CHARS
    prose = "Customer numbers rose and churn fell in the second half. " * 4000
    code = "def f(x):\n    return {'y': x + 1}  # unrelated code in the middle\n" * 4000
    huge_prose = head + prose + tail
    huge_code = head + code[: len(prose)] + tail
    assert len(huge_prose) == len(huge_code) > 200_000
    # Only the head and the tail are read (and the length), so the middle cannot matter.
    assert classify([user(huge_prose)]) == classify([user(huge_code)])
    assert classify([user(huge_prose)]).task_type == "summarization"


def test_classification_is_deterministic_across_reloads() -> None:
    prompt = "Compare PostgreSQL and MySQL for a small analytics team; which would you pick?"
    first = one(prompt)
    classifier.load_model.cache_clear()
    router_lexicon.load_lexicon.cache_clear()
    assert one(prompt) == first
    assert one(prompt) == first


def test_an_ngram_shared_by_several_words_counts_once() -> None:
    features = router_features.extract_features([user("rain rainy rainfall, rain again")])
    assert features["g:<rai"] == router_features.NGRAM_WEIGHT
    assert "g:nfall" in features and "g:<again>" not in features  # at most five characters


@pytest.mark.parametrize(
    "prompt", [prompt for prompts in CLEAR.values() for prompt in prompts], ids=str.__len__
)
def test_scoring_ngrams_per_word_matches_the_training_features(prompt: str) -> None:
    """The classifier's per-word n-gram memo scores exactly what training fitted: every
    n-gram once, however many words share it."""
    messages = [user(prompt)]
    extracted = router_features.extract(messages)
    training_view = router_features.extract_features(messages)
    assert training_view == extracted.features | router_features.ngram_features(
        extracted.ngram_words
    )
    model = classifier.load_model().task
    fast = model.probabilities(extracted.features, extracted.ngram_words)
    assert fast == pytest.approx(model.probabilities(training_view), abs=1e-9)


def test_medium_bias_moves_borderline_complexity_towards_medium() -> None:
    low, medium, high = (COMPLEXITIES.index(c) for c in ("low", "medium", "high"))
    probabilities = [0.0] * 3
    probabilities[low], probabilities[medium], probabilities[high] = 0.45, 0.40, 0.15
    assert classifier.pick_complexity(probabilities, 0.0) == low
    assert classifier.pick_complexity(probabilities, 0.2) == medium


def lexicon_entries() -> list[tuple[str, str]]:
    path = Path(router_lexicon.__file__).parents[1] / "data/router_lexicon.json"
    raw = json.loads(path.read_text("utf-8"))
    groups = {f"L:{task}": entries for task, entries in raw["tasks"].items()}
    groups["L:language"] = raw["languages"]
    groups |= {f"C:{level}": entries for level, entries in raw["complexity"].items()}
    return [(cue, entry) for cue, entries in groups.items() for entry in entries]


def test_every_lexicon_entry_is_found_in_a_prompt() -> None:
    """Each entry, written in a prompt as-is (a stem as the bare stem), fires its cue.

    Catches entries that normalisation turns into something no prompt can contain.
    """
    missed = [
        (cue, entry)
        for cue, entry in lexicon_entries()
        if cue not in router_features.extract_features([user(f"x {entry.rstrip('*')} x")])
    ]
    assert missed == []


def test_near_copies_are_found_across_case_punctuation_and_script() -> None:
    found = near_copies(
        ["Is 221 prime?", "这条评论是好评还是差评：包装很用心", "write a haiku about rain"],
        ["is 221 prime", "这条评论是好评还是差评？包装很用心。", "sum of 4 and 5"],
    )
    assert found.tolist() == [True, True, False]


def test_no_evaluation_prompt_is_in_the_training_data() -> None:
    """Not even a near copy (``scripts/decontaminate-router-data.py`` removes them)."""
    training = [row["prompt"] for path in training_files() for row in read_rows(path)]
    assert len(training) > 3000
    copies = near_copies(training, evaluation_prompts())
    assert [p for p, copy in zip(training, copies, strict=True) if copy] == []


# What the shipped model scored on the held-out split (57 and 51 of 63, no high<->low
# swap: 90.5% and 81.0%, over the bars of 90% and 70%). Raise these with a model
# that does better, never lower them to let a worse one pass.
HELD_OUT_TASK_CORRECT = 57
HELD_OUT_COMPLEXITY_CORRECT = 51
MAX_HIGH_LOW_SWAP_RATE = 0.05


def test_held_out_accuracy_does_not_regress() -> None:
    """On the dev prompts never used for fitting or tuning (``router_split.json``)."""
    rows, split = held_out_dev()
    assert len(rows) == len(split["held_out"]) == 63
    result = evaluate(rows)
    assert round(result["task_accuracy"] * len(rows)) >= HELD_OUT_TASK_CORRECT
    assert round(result["complexity_accuracy"] * len(rows)) >= HELD_OUT_COMPLEXITY_CORRECT
    assert result["high_low_swap_rate"] <= MAX_HIGH_LOW_SWAP_RATE
