"""Every number drawn is recorded: marks survive text composition, the check catches a digit typed by hand, and
the scene's inventory holds exactly what settled frames showed (value and exact string)."""

from __future__ import annotations

import numpy as np
import pytest
from manim import FadeIn, ValueTracker, tempconfig

from shared.checks import dry_run, layout_problems
from shared.layout import PIXEL_SIZES, configure_frame, current_layout
from shared.mobjects.heatmap import ColorScale, Heatmap
from shared.numbers import MINUS, fill, format_number, num, num_vector, split_marked, strip_marks, term
from shared.scene import ExplainerScene
from shared.text import LiveNumber, formula, rich, zh


@pytest.fixture(autouse=True)
def frame():
    width, height = PIXEL_SIZES["16:9"]["l"]
    with tempconfig({"pixel_width": width, "pixel_height": height}):
        configure_frame()
        yield


def test_format_number_writes_a_real_minus_and_no_negative_zero():
    assert format_number(-1.5, "{:.2f}") == f"{MINUS}1.50"
    assert format_number(-0.001, "{:.2f}") == "0.00"
    assert format_number(8, "÷{:g}") == "÷8"
    with pytest.raises(ValueError, match="digits"):
        format_number(3, "θ0 = {:g}")  # the 0 would be typed by hand, not the value's


def test_marks_survive_fstrings_and_name_their_value():
    text = f"d = {num('head_dim', 128)}，{fill('走了 {steps} 步', steps=40)}，{term('FP8')}"
    plain, spans = split_marked(text)
    assert plain == "d = 128，走了 40 步，FP8"
    assert [(plain[a:b], d.name, d.value, d.kind) for a, b, d in spans] == [
        ("128", "head_dim", 128, "number"), ("40", "steps", 40, "number"), ("FP8", "FP8", "FP8", "term")]
    assert strip_marks(num_vector("v", np.array([0.5, -1.25]))) == f"(0.50, {MINUS}1.25)"
    with pytest.raises(KeyError, match="steps"):
        fill("{steps} 步")


def test_texts_know_their_untraced_digits():
    assert zh("d = 8").untraced == "8"
    assert zh(f"d = {num('d', 8)}").untraced == ""
    assert formula(f"x + {num('one', 1)}").untraced == ""
    assert formula("x^2").untraced == "2"
    # colours in markup are not drawn; the digits inside the brackets are
    assert rich('#text(fill: rgb("#5AA9FF"))[学习率 3]').untraced == "3"
    assert rich(f'#text(fill: rgb("#5AA9FF"))[学习率 {num("lr", 3)}]').untraced == ""


def test_layout_check_fails_on_a_digit_typed_by_hand():
    layout = current_layout()
    typed = layout.title.place(zh("训练 5 个位置", "body"))
    problems = layout_problems([typed], layout)
    assert any("'5'" in p and "no recording call" in p for p in problems), problems
    traced = layout.title.place(zh(f"训练 {num('n_positions', 5)} 个位置", "body"))
    assert layout_problems([traced], layout) == []


def test_live_numbers_and_heatmaps_need_names():
    with pytest.raises(TypeError):
        LiveNumber(lambda: 1.0, "{:.1f}")  # noqa: the name is required
    with pytest.raises(ValueError, match="digits"):
        LiveNumber(lambda: 1.0, "x2 = {:.1f}", name="x")
    with pytest.raises(ValueError, match="name"):
        Heatmap(np.eye(2), ColorScale.sequential(), cell_width=0.5, numbers="{:.1f}")


class _Inventory(ExplainerScene):
    def construct(self):
        self.next_section(fill("第 {part} 部分", part=1))
        m = ValueTracker(0)
        counter = LiveNumber(m.get_value, "m = {:.0f}", name="m")
        hidden = zh(f"{num('never_shown', 7)}")  # made, never put on screen: not in the inventory
        self.play(FadeIn(counter))
        self.play(m.animate.set_value(40))
        self.say(fill("最慢的针转了 {angle:.2f}°", angle=2.2918))
        self.fine_print(fill("种子 {seed}", seed=3))
        hm = Heatmap(np.array([[0.25, -0.5]]), ColorScale.diverging([1]), cell_width=1.0, numbers="{:.2f}", name="w")
        self.play(FadeIn(hm.move_to(self.layout.figure.point(0.8, 0.2))))
        del hidden


def test_the_inventory_lists_what_settled_frames_showed():
    record, problems = dry_run(_Inventory, "16:9")
    assert not any(problems.values()), problems
    (section,) = record.sections
    assert section.name == "第 1 部分"
    numbers = section.to_json()["numbers"]
    assert numbers["m"] == {"value": [0.0, 40.0], "text": ["0", "40"]}
    assert numbers["angle"] == {"value": 2.2918, "text": "2.29"}
    assert numbers["w[0,1]"] == {"value": -0.5, "text": f"{MINUS}0.50"}
    assert "never_shown" not in numbers
    assert section.fine_print == ["种子 3"]
    assert record.numbers["part"] == 1 and record.numbers["m"] == [0.0, 40.0]


class _TypedSectionName(ExplainerScene):
    def construct(self):
        self.next_section("671B 与 37B")


def test_a_section_name_with_hand_typed_numbers_is_refused():
    with pytest.raises(ValueError, match="Section name"):
        dry_run(_TypedSectionName, "16:9")
