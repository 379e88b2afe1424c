"""The last full frame of every section of every scene, in both aspects, against committed controls."""

from __future__ import annotations

import pytest
from scene_catalog import ASPECTS, scene_classes
from frame_compare import assert_matches_control


@pytest.mark.parametrize("aspect", ASPECTS)
@pytest.mark.parametrize("topic", sorted(scene_classes()))
def test_section_frames(scene_run, topic, aspect):
    record, _, frames = scene_run(topic, aspect)
    assert set(frames) == {s.name for s in record.sections}
    for index, section in enumerate(record.sections):
        assert_matches_control(frames[section.name], f"{topic}/{aspect.replace(':', 'x')}/{index}")
