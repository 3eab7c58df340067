"""launcher.scoring.entities: IOB2 <-> JSON entities, including the exact round trip over all of GMB."""

from __future__ import annotations

import json

import pytest

from jobs.data.gmb import Sentence, load_gmb
from launcher.scoring.entities import (
    Entity,
    bio_to_entities,
    entities_to_bio,
    occurrences,
    target_json,
)


def words(text: str) -> list[str]:
    return text.split()


@pytest.fixture(scope="module")
def gmb() -> list[Sentence]:
    return load_gmb()


def test_bio_to_entities_basic() -> None:
    tokens = words("Philip Alston said he is deeply concerned by the October 25 incident .")
    tags = ["B-per", "I-per", "O", "O", "O", "O", "O", "O", "O", "B-tim", "I-tim", "O", "O"]
    assert bio_to_entities(tokens, tags) == [
        Entity("Philip Alston", "per", 0),
        Entity("October 25", "tim", 0),
    ]


def test_order_counts_every_earlier_start_including_overlaps() -> None:
    # "Kosovo" starts once inside "Future of Kosovo" before it is tagged on its own.
    tokens = ["the", "Future", "of", "Kosovo", "party", "won", "in", "Kosovo"]
    tags = ["O", "B-org", "I-org", "I-org", "O", "O", "O", "B-geo"]
    assert bio_to_entities(tokens, tags) == [
        Entity("Future of Kosovo", "org", 0),
        Entity("Kosovo", "geo", 1),
    ]
    # overlapping matches of a repeated token sequence: "a a" starts at 0, 1 and 2
    tokens = ["a", "a", "a", "a"]
    tags = ["O", "O", "B-per", "I-per"]
    assert bio_to_entities(tokens, tags) == [Entity("a a", "per", 2)]
    assert occurrences(tokens, ["a", "a"]) == [0, 1, 2]


def test_adjacent_entities_and_labels_lowercased() -> None:
    tokens = ["Paris", "London", "Bush"]
    tags = ["B-GEO", "B-geo", "B-per"]
    ents = bio_to_entities(tokens, tags)
    assert ents == [Entity("Paris", "geo", 0), Entity("London", "geo", 0), Entity("Bush", "per", 0)]


@pytest.mark.parametrize(
    "tags",
    [["I-per", "O"], ["B-per", "I-geo"], ["O", "X-per"], ["B-", "O"]],
)
def test_bio_to_entities_rejects_invalid_iob2(tags: list[str]) -> None:
    with pytest.raises(ValueError):
        bio_to_entities(["a", "b"], tags)


def test_bio_to_entities_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        bio_to_entities(["a", "b"], ["O"])


def test_placement_uses_order_then_next_free_occurrence() -> None:
    tokens = ["US", "and", "US", "and", "US"]
    # order 1 -> the second "US"
    tags, stats = entities_to_bio(tokens, [Entity("US", "geo", 1)])
    assert tags == ["O", "O", "B-geo", "O", "O"]
    assert (stats.placed, stats.moved, stats.not_placed) == (1, 0, 0)
    # two entities claiming order 1: the second moves to the next free occurrence
    tags, stats = entities_to_bio(tokens, [Entity("US", "geo", 1), Entity("US", "gpe", 1)])
    assert tags == ["O", "O", "B-geo", "O", "B-gpe"]
    assert (stats.placed, stats.moved) == (2, 1)
    # order past the last occurrence: the first free one, counted as moved
    tags, stats = entities_to_bio(tokens, [Entity("US", "geo", 7)])
    assert tags == ["B-geo", "O", "O", "O", "O"]
    assert stats.moved == 1
    # after the preferred occurrence come later ones, then earlier ones
    ents = [Entity("US", "geo", 2), Entity("US", "geo", 2), Entity("US", "geo", 2)]
    tags, stats = entities_to_bio(tokens, ents)
    assert tags == ["B-geo", "O", "B-geo", "O", "B-geo"]
    assert stats.placed == 3


def test_placement_reports_hallucinated_and_unplaceable() -> None:
    tokens = ["New", "York", "and", "York"]
    ents = [
        Entity("New York", "geo", 0),
        Entity("York", "geo", 0),  # occurrence 0 is taken by "New York": moves to the next
        Entity("York", "per", 0),  # every occurrence taken: unplaceable
        Entity("Boston", "geo", 0),  # not in the sentence: hallucinated
        Entity("new york", "geo", 0),  # tokens compare exactly: hallucinated
        Entity("   ", "geo", 0),  # empty text: hallucinated
    ]
    tags, stats = entities_to_bio(tokens, ents)
    assert tags == ["B-geo", "I-geo", "O", "B-geo"]
    assert stats.placed == 2
    assert stats.moved == 1
    assert stats.unplaceable == [Entity("York", "per", 0)]
    assert [e.entity for e in stats.hallucinated] == ["Boston", "new york", "   "]
    assert stats.placed + stats.not_placed == len(ents)


def test_entity_text_is_split_on_any_whitespace() -> None:
    tags, stats = entities_to_bio(["New", "York"], [Entity(" New \t York ", "geo", 0)])
    assert tags == ["B-geo", "I-geo"]
    assert stats.placed == 1


def test_target_json_format_matches_the_research() -> None:
    ents = [Entity("Philip Alston", "per", 0), Entity("October 25", "tim", 0)]
    assert target_json(ents) == (
        '{"entities": [{"entity": "Philip Alston", "order": 0, "label": "per"}, '
        '{"entity": "October 25", "order": 0, "label": "tim"}]}'
    )
    assert target_json([]) == '{"entities": []}'
    assert target_json([Entity("Salé", "geo", 0)]) == (
        '{"entities": [{"entity": "Salé", "order": 0, "label": "geo"}]}'
    )
    assert json.loads(target_json([Entity('say "hi"', "art", 3)]))["entities"][0]["order"] == 3


def test_entity_from_dict() -> None:
    assert Entity.from_dict({"entity": "A", "label": "per"}) == Entity("A", "per", 0)
    assert Entity.from_dict({"entity": "A", "order": 2, "label": "per"}).order == 2
    for bad in (
        {"entity": "A", "order": "1", "label": "per"},
        {"entity": "A", "order": -1, "label": "per"},
        {"entity": "A", "order": True, "label": "per"},
        {"entity": 3, "label": "per"},
        {"entity": "A"},
    ):
        with pytest.raises(ValueError):
            Entity.from_dict(bad)
    assert Entity("A", "per", 1).to_dict() == {"entity": "A", "order": 1, "label": "per"}
    assert list(Entity("A", "per", 1).to_dict()) == ["entity", "order", "label"]


def test_every_gmb_sentence_round_trips_exactly(gmb: list[Sentence]) -> None:
    assert len(gmb) == 47_959
    n_entities = 0
    for s in gmb:
        ents = bio_to_entities(s.tokens, s.tags)
        tags, stats = entities_to_bio(s.tokens, ents)
        assert tags == s.tags, s.id
        assert stats.not_placed == 0 and stats.moved == 0, s.id
        # and through the JSON text the model is trained on
        back = [Entity.from_dict(d) for d in json.loads(target_json(ents))["entities"]]
        assert back == ents, s.id
        n_entities += len(ents)
    # one entity per B- tag (README tag counts)
    assert n_entities == 37_644 + 20_333 + 20_143 + 16_990 + 15_870 + 402 + 308 + 201
