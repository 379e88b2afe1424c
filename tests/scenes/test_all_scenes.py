"""Every scene: one ExplainerScene per file; constructs in 16:9 and 9:16; sections ≤ 20 s with Chinese names;
and the layout check passes on every settled frame (nothing outside the safe area, no text below the legibility
minimum, at most 4 prose lines, no overlapping text)."""

from __future__ import annotations

import re
import shutil

import pytest
from scene_catalog import ASPECTS, scene_classes

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


@pytest.mark.parametrize("topic", TOPICS)
def test_every_section_is_narrated(scene_run, topic):
    """Narration is written beside the animation it speaks for: every section has voice() beats covering most of its
    time (the rest is the title and the clearing between sections)."""
    record, _, _ = scene_run(topic, "16:9")
    for section in record.sections:
        covered = sum(beat["end"] - beat["start"] for beat in section.narration if "end" in beat)
        assert section.narration, f"{topic}: section {section.name!r} has no narration"
        assert covered >= 0.6 * section.duration, (topic, section.name, covered, section.duration)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make installs it)")
@pytest.mark.parametrize("topic", TOPICS)
def test_narrated_short_layout(scene_run, topic):
    """Read aloud in 9:16 (the short): beats last their speech, the subtitles fit their band above the platform's
    bottom UI and every frame still passes the layout check."""
    record, problems, _ = scene_run(topic, "9:16", voice="espeak")
    found = {name: p for name, p in problems.items() if p}
    assert not found, "\n".join(f"{name}: {p}" for name, ps in found.items() for p in ps)
    for section in record.sections:
        for beat in section.narration:
            speech = sum(s["duration"] for s in beat["sentences"])
            assert beat["sentences"] and beat["end"] - beat["start"] >= speech - 1e-9, (section.name, beat["text"])
        assert section.subtitles and all(len(line) <= 16 for cue in section.subtitles for line in cue["lines"])
