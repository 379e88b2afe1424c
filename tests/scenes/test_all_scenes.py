"""Every scene: one ExplainerScene per file; constructs in 16:9 and 9:16; sections ≤ 20 s with Chinese names;
and the layout check passes on every settled frame (nothing outside the safe area, no text below the legibility
minimum, at most 4 prose lines, no overlapping text)."""

from __future__ import annotations

import re

import pytest
from conftest import ASPECTS, scene_classes

from shared import theme

TOPICS = sorted(scene_classes())


@pytest.mark.parametrize("topic", TOPICS)
def test_one_scene_class_per_file(topic):
    assert len(scene_classes()[topic]) == 1, f"scenes/{topic}.py must define exactly one ExplainerScene"


@pytest.mark.parametrize("aspect", ASPECTS)
@pytest.mark.parametrize("topic", TOPICS)
def test_scene_sections(scene_run, topic, aspect):
    record, _, _ = scene_run(topic, aspect)
    assert len(record.sections) >= 2
    for section in record.sections:
        assert re.search(r"[\u4e00-\u9fff]", section.name), f"section {section.name!r} needs a Chinese name"
        assert 0 < section.duration <= theme.MAX_SECTION_SECONDS, (section.name, section.duration)


@pytest.mark.parametrize("aspect", ASPECTS)
@pytest.mark.parametrize("topic", TOPICS)
def test_scene_layout(scene_run, topic, aspect):
    _, problems, _ = scene_run(topic, aspect)
    found = {name: p for name, p in problems.items() if p}
    assert not found, "\n".join(f"{name}: {p}" for name, ps in found.items() for p in ps)


@pytest.mark.parametrize("topic", TOPICS)
def test_portrait_is_a_relayout_not_a_crop(scene_run, topic):
    """Same sections and the same numbers in both aspects: portrait tells the same story, laid out again."""
    land, _, _ = scene_run(topic, "16:9")
    port, _, _ = scene_run(topic, "9:16")
    assert [s.name for s in land.sections] == [s.name for s in port.sections]
    assert land.numbers.keys() == port.numbers.keys()
