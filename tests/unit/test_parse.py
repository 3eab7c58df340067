"""launcher.scoring.parse: every messy kind of raw generation, hand-written, plus the research's real file."""

from __future__ import annotations

import json
import random
from collections import Counter

import pandas as pd
import pytest

from launcher.scoring.entities import Entity, target_json
from launcher.scoring.parse import ParseResult, parse_output, strip_special_tokens
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "ds_7b_output.csv"
RESEARCH_PROMPT = (
    "You are a natural language processing assistant. Please extract all named entities from the "
    "input text and return the results in JSON format. If the same entity appears multiple times, "
    "assign an increasing order starting from 0."
)
A = Entity("Philip Alston", "per", 0)
B = Entity("October 25", "tim", 0)
AB = target_json([A, B])
PAD = "<|vision_pad|>" * 40
MANGLED_BOS = "<???begin???of???sentence???>"
MANGLED_EOS = "<???end???of???sentence???>"


@pytest.fixture(scope="module")
def seed_rows() -> pd.DataFrame:
    assert FIXTURE.is_file(), f"missing test fixture {FIXTURE} (copy of shared/data/seed_outputs)"
    return pd.read_csv(FIXTURE, keep_default_na=False, dtype=str)


def ok(entities: list[Entity]) -> ParseResult:
    return ParseResult(entities, "ok", None)


# ---------------------------------------------------------------------------------------------
# clean and wrapped answers: status ok


def test_clean_json() -> None:
    assert parse_output(AB) == ok([A, B])
    assert parse_output('{"entities": []}') == ok([])
    assert parse_output('  {"entities" : [ ] }\n') == ok([])


def test_research_layout_with_padding_mangled_tokens_and_echo() -> None:
    prompt = RESEARCH_PROMPT + '\nSentence: "Philip Alston said ..."'
    raw = f"{PAD}{MANGLED_BOS}{MANGLED_BOS}{prompt}{MANGLED_EOS}{MANGLED_BOS}{AB}{MANGLED_EOS}"
    assert parse_output(raw) == ok([A, B])
    assert parse_output(raw, prompt=prompt) == ok([A, B])


@pytest.mark.parametrize(
    "debris",
    [
        "<｜end▁of▁sentence｜>",
        "<|im_end|>",
        "<|endoftext|><|endoftext|>",
        "</s>",
        "<???end???of???sentence???><???begin???of???sentence???>",
        "<｜Assistant｜>",
    ],
)
def test_special_token_debris_around_the_answer(debris: str) -> None:
    assert parse_output(debris + AB + debris) == ok([A, B])
    assert parse_output(AB + debris + "<|vision_pad|>" * 5) == ok([A, B])


def test_strip_special_tokens_keeps_real_text() -> None:
    assert strip_special_tokens("a<|x|>b<｜y▁z｜>c<???q???>d") == "a\nb\nc\nd"
    assert strip_special_tokens("Is it ? <not a token> a<b") == "Is it ? <not a token> a<b"


def test_text_after_the_json() -> None:
    assert parse_output(AB + "\n\nI found two entities. Let me know { if you need more.") == ok([A, B])
    assert parse_output("Here you go: " + AB + " Done.") == ok([A, B])


def test_code_fences() -> None:
    assert parse_output(f"```json\n{AB}\n```") == ok([A, B])
    assert parse_output(f"Sure!\n```\n{AB}\n```\nAnything else?") == ok([A, B])


def test_closed_think_block_is_ignored_even_if_it_holds_json() -> None:
    decoy = target_json([Entity("Alston", "org", 0)])
    raw = f"<think>\nMaybe {decoy}? No, Philip Alston is a person.\n</think>\n\n{AB}"
    assert parse_output(raw) == ok([A, B])
    # DeepSeek-R1 chat templates open <think> in the prompt: only the closing tag appears
    assert parse_output(f"Okay, the entities are...\n</think>\n{AB}") == ok([A, B])


def test_unclosed_think() -> None:
    result = parse_output(f"<think>\nThe answer is {AB} and I keep thinking")
    assert result.status == "repaired"
    assert result.entities == [A, B]
    assert "unclosed <think>" in (result.error or "")
    failed = parse_output("<think>\nLet me consider Philip Alston, who")
    assert failed.status == "failed" and failed.entities is None
    assert "unclosed <think>" in (failed.error or "")


def test_echoed_prompt_holding_a_json_example() -> None:
    example = target_json([Entity("Paris", "geo", 0)])
    prompt = (
        f"Extract the entities as JSON, for example: {example}\n"
        'Sentence: "Philip Alston said he is deeply concerned by the October 25 incident ."'
    )
    # complete answer after the echo
    raw = f"<｜begin▁of▁sentence｜>{prompt}<｜end▁of▁sentence｜>{AB}<｜end▁of▁sentence｜>"
    assert parse_output(raw, prompt=prompt) == ok([A, B])
    # cut-off answer after the echo: the example must not win
    cut = AB[: AB.index('{"entity": "October')]
    result = parse_output(f"{prompt}\n{cut}", prompt=prompt)
    assert result.status == "truncated"
    assert result.entities == [A]
    # the echo may differ in whitespace and special tokens from the prompt given
    squashed = prompt.replace(" .", ".").replace("\n", "  \n ")
    result = parse_output(f"<|im_start|>{squashed}<|im_end|>{cut}", prompt=prompt)
    assert (result.status, result.entities) == ("truncated", [A])
    # a generation without an echo is searched whole
    assert parse_output(AB, prompt=prompt) == ok([A, B])


def test_prompt_echo_found_by_its_last_line() -> None:
    prompt = "Instruction with an odd char: café\nSentence: Philip Alston said"
    mangled_echo = "Instruction with an odd char: caf??\nSentence: Philip Alston said"
    example_answer = '{"entities": []}'
    result = parse_output(f"{mangled_echo}\n{example_answer}", prompt=prompt)
    assert result == ok([])


def test_repeated_answer_takes_the_last_complete_one() -> None:
    assert parse_output(AB + "\n" + AB) == ok([A, B])
    assert parse_output(AB + "\n" + AB[:30]) == ok([A, B])


# ---------------------------------------------------------------------------------------------
# truncated


def test_truncated_keeps_complete_entities_before_the_cut() -> None:
    cut = AB[: AB.index('"label": "tim"')]
    result = parse_output(cut)
    assert result.status == "truncated"
    assert result.entities == [A]
    assert "kept 1 complete entities" in (result.error or "")


def test_truncated_before_any_entity() -> None:
    for raw in ('{"entities": [', '{"entities": [{"entity": "Phil', '{"entities"', "{'entities':"):
        result = parse_output(raw)
        assert (result.status, result.entities) == ("truncated", []), raw


def test_truncated_with_brackets_inside_strings() -> None:
    raw = '{"entities": [{"entity": "a}b]", "order": 0, "label": "art"}, {"entity": "x{'
    result = parse_output(raw)
    assert (result.status, result.entities) == ("truncated", [Entity("a}b]", "art", 0)])


def test_every_cut_of_a_real_answer_gives_a_prefix_of_its_entities(
    seed_rows: pd.DataFrame,
) -> None:
    row = max(seed_rows.itertuples(), key=lambda r: len(json.loads(r.output)["entities"]))
    full = parse_output(row.model_output)
    assert full.status == "ok" and full.entities and len(full.entities) >= 5
    start = row.model_output.rindex('{"entities"')
    statuses = Counter()
    for cut in range(start + 1, len(row.model_output) + 1):
        result = parse_output(row.model_output[:cut])
        statuses[result.status] += 1
        assert result.entities is not None
        assert result.entities == full.entities[: len(result.entities)]
        if result.status == "ok":
            assert result.entities == full.entities
    assert set(statuses) == {"ok", "repaired", "truncated"}
    assert parse_output(row.model_output[:start]).status == "failed"


# ---------------------------------------------------------------------------------------------
# repaired


def test_missing_final_brace_is_repaired() -> None:
    result = parse_output(AB[:-1])
    assert (result.status, result.entities) == ("repaired", [A, B])


def test_trailing_commas_are_repaired() -> None:
    raw = '{"entities": [{"entity": "Philip Alston", "order": 0, "label": "per",},],}'
    result = parse_output(raw)
    assert (result.status, result.entities) == ("repaired", [A])


def test_python_literal_quoting_is_repaired() -> None:
    raw = "{'entities': [{'entity': \"Kosovo 's\", 'order': 0, 'label': 'org'}]}"
    result = parse_output(raw)
    assert (result.status, result.entities) == ("repaired", [Entity("Kosovo 's", "org", 0)])


def test_bare_list_is_repaired() -> None:
    raw = 'Answer: [{"entity": "Philip Alston", "order": 0, "label": "per"}]'
    result = parse_output(raw)
    assert (result.status, result.entities) == ("repaired", [A])


def test_schema_coercions_are_repaired() -> None:
    raw = json.dumps(
        {
            "entities": [
                {"entity": "Philip Alston", "order": "0", "label": "PER"},
                {"entity": "October 25", "label": " tim "},
                {"entity": "", "order": 0, "label": "per"},
                {"entity": "X", "order": -1, "label": "per"},
                "stray string",
            ]
        }
    )
    result = parse_output(raw)
    assert result.status == "repaired"
    assert result.entities == [A, B]
    assert "dropped 3 malformed" in (result.error or "")


# ---------------------------------------------------------------------------------------------
# failed


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   \n",
        "<|vision_pad|>" * 30,
        "I could not find any entities.",
        '{"entities": 5}',
        '{"entity": "Philip Alston"}',
        "```json\n```",
    ],
)
def test_failures(raw: str) -> None:
    result = parse_output(raw)
    assert result.status == "failed"
    assert result.entities is None
    assert result.error


def test_never_raises_on_random_debris(seed_rows: pd.DataFrame) -> None:
    rng = random.Random(0)
    pieces = [
        '{"entities"',
        ": [",
        "{",
        "}",
        "]",
        '"',
        "'",
        ",",
        "<think>",
        "</think>",
        "```",
        "<|vision_pad|>",
        MANGLED_EOS,
        '"entity": "A"',
        '"order": 1',
        '"label": "per"',
        "\\",
    ]
    for _ in range(1_000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        result = parse_output(raw, prompt=rng.choice([None, "", "Sentence: A"]))
        assert result.status in ("ok", "repaired", "truncated", "failed")
        assert (result.entities is None) == (result.status == "failed")
    for raw in seed_rows.model_output.sample(50, random_state=0):
        a, b = sorted(rng.sample(range(len(raw)), 2))
        parse_output(raw[a:b])


# ---------------------------------------------------------------------------------------------
# the research's real outputs


def test_real_file_parses_ok_and_matches_its_json(seed_rows: pd.DataFrame) -> None:
    assert len(seed_rows) == 1_000
    statuses: Counter[str] = Counter()
    for sentence, raw in zip(seed_rows.sentence, seed_rows.model_output, strict=True):
        result = parse_output(raw)
        statuses[result.status] += 1
        answer = raw.split(MANGLED_EOS + MANGLED_BOS)[-1].removesuffix(MANGLED_EOS)
        expected = [Entity.from_dict(d) for d in json.loads(answer)["entities"]]
        assert result.entities == expected
        prompt = RESEARCH_PROMPT + "\nSentence: " + sentence
        assert parse_output(raw, prompt=prompt) == result
    assert statuses == Counter(ok=1_000)


@pytest.mark.parametrize(
    "raw",
    ['{"entities": ' + "[" * 100_000 + "]" * 100_000 + "}", "[" * 200_000, "{" * 50_000],
    ids=["closed", "open-list", "open-object"],
)
def test_json_nested_deeper_than_the_stack_scores_as_no_entities(raw: str) -> None:
    """Nested deeper than Python's recursion limit: never a RecursionError, zero predictions."""
    result = parse_output(raw)
    assert result.status in ("failed", "truncated") and not result.entities
