"""Grokking from real training runs: memorise, plateau, then generalise suddenly, and weight decay as the spring.

Render: ``manim -qh scenes/grokking.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/grokking.py`` (9:16).
Every curve point, marked step and bar comes from a committed log in ``media/runs/grokking/`` (written by
``scripts/train_grokking.py``), read through ``shared/runs.py``; nothing is trained while rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, Create, FadeIn, FadeOut, Rectangle, Transform, ValueTracker, VGroup, linear

from shared import theme
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.grid import BinaryGrid
from shared.numbers import fill, num, term
from shared.math.spectrum import effective_frequencies, top_share
from shared.runs import (
    grokking_grid,
    grokking_phase_steps,
    grokking_snapshot_after_memorizing,
    load_grokking_run,
    short_device_name,
)
from shared.scene import ExplainerScene, crossfade
from shared.text import LiveNumber, formula, rich, zh


@dataclass(frozen=True)
class GrokkingSceneConfig:
    """Which committed runs the explainer shows, and what it points at."""

    main_run: str = "add_p59_wd1_seed0"  # weight decay 1.0: the curves of every chart section
    no_decay_run: str = "add_p59_wd0_seed0"  # weight decay 0, trained twice as long
    # Nanda et al. (2023)'s one-layer transformer: the run whose embedding ends with most of its energy in a few
    # frequencies; the main run's MLP stays more spread out (the spectrum section says by how much).
    spectrum_run: str = "add_p113_wd1_frac0.3_transformer_seed0"
    example_pair: tuple[int, int] = (30, 40)  # a cell of the table to read out
    top_frequencies: int = 5


CFG = GrokkingSceneConfig()


def step_ticks(high: float) -> list[tuple[float, str]]:
    """1, 10, 100, 1k, 10k … up to ``high``, each label a recorded number (thousands as "1k")."""
    ticks, value = [], 1
    while value <= high:
        label = num("step_tick_thousands", value // 1000, "{}k") if value >= 1000 else num("step_tick", value)
        ticks.append((float(value), label))
        value *= 10
    return ticks


class GrokkingCurves(ExplainerScene):
    """Memorisation, plateau and sudden generalisation in a real run of (a + b) mod p."""

    def setup(self):
        super().setup()
        self.run = load_grokking_run(CFG.main_run)
        self.no_decay = load_grokking_run(CFG.no_decay_run)
        self.phases = grokking_phase_steps(self.run)
        if self.phases.memorized is None:
            raise ValueError(f"{CFG.main_run} never memorises its training set (train accuracy ≥ 99%); the explainer "
                             f"starts from a run that does: set GrokkingSceneConfig.main_run to one.")
        self.last_step = self.run["history"][-1]["step"]
        self.step = ValueTracker(0.0)  # log10 of the training step the curves have reached

    def construct(self):
        self.show_task()
        self.memorize()
        self.plateau()
        self.grok()
        self.without_weight_decay()
        self.inside_the_model()
        self.throttle_and_spring()

    # --- pieces shared by the sections -------------------------------------------------------------------------

    def data_role(self) -> str:
        """The role for figure text that must be read (values, legends): label where it reads at 14 CSS px, else
        body (an article GIF at 343 px)."""
        return self.layout.role_at_least(theme.MIN_TEXT_CSS["body"], ("label", "body"))

    def run_note(self, run: dict, prefix: str, lead: str = ""):
        """Small print naming where ``run`` was trained (device, wall time, seed); recorded for the section."""
        prov = run["provenance"]
        return self.fine_print(fill(lead + "{device} · {wall_seconds:.0f} 秒 · seed {seed}", prefix=prefix,
                                    device=term(short_device_name(prov["device"])),
                                    wall_seconds=prov["wall_seconds"], seed=run["config"]["seed"]))

    def record_at(self, run, step) -> dict:
        """The history record at (or last before) ``step``."""
        return [r for r in run["history"] if r["step"] <= step][-1]

    def advance_to(self, step: float, run_time: float):
        self.play(self.step.animate.set_value(np.log10(step)), run_time=run_time, rate_func=linear)

    def build_charts(self):
        """Accuracy and ‖W‖ against the step (log axis): side by side in landscape, stacked in portrait (sharing the
        step axis, labelled once under the lower chart). The legend and the step counter head the figure."""
        pal = self.palette
        history = self.run["history"][1:]  # step 0 has no place on a log axis
        steps = self.plotted("main_run_step", np.array([r["step"] for r in history], dtype=float))
        last = max(self.last_step, self.no_decay["history"][-1]["step"])
        names = ("训练", "测试") if self.is_portrait else ("训练集准确率", "测试集准确率")
        legend = VGroup(zh(names[0], "body", color=pal.value, prose=False),
                        zh(names[1], "body", color=pal.key, prose=False)).arrange(RIGHT, buff=0.5)
        self.step_counter = LiveNumber(lambda: 10 ** self.step.get_value(), "step {:.0f}", "body", color=pal.accent,
                                       name="step")
        widest = LiveNumber(last, "step {:.0f}", "body", name="step")  # room for the longest count
        top_row, body = self.layout.figure.rows([legend.height, self.layout.figure.height - legend.height - 0.2],
                                                gap=0.2)
        top_row.place(legend, align="left")
        self.top_row = top_row
        self.step_counter.move_to(top_row.point(1, 0.5) + LEFT * widest.width, aligned_edge=LEFT)
        self.note = self.run_note(self.run, "main_run_")
        if len(self.note):
            body, note_area = body.rows([body.height - self.note.height - 0.15, self.note.height], gap=0.15)
            note_area.place(self.note, align="left")
        ticks = step_ticks(last)
        if self.is_portrait:
            acc_area, norm_area = body.rows([0.5, 0.5], gap=0.3)
            acc_x = AxisSpec(1, last, [(v, "") for v, _ in ticks], log=True)
            norm_x = AxisSpec(1, last, ticks, log=True)  # the step counter names the axis: no title, more height
        else:
            acc_area, norm_area = body.cols([0.6, 0.4], gap=0.5)
            acc_x = norm_x = AxisSpec(1, last, ticks, "训练步数", log=True)
        self.acc_chart = Chart(acc_area, acc_x, AxisSpec(0, 1, numeric_ticks("accuracy_tick", [0, 0.5, 1], "{:.0%}")))
        self.norm_area, self.norm_x = norm_area, norm_x
        self.norm_chart = self.norm_chart_for(self.run)
        reached = lambda: 10 ** self.step.get_value()  # noqa: E731
        column = lambda key: self.plotted(f"main_run_{key}", np.array([r[key] for r in history]))  # noqa: E731
        self.train_curve = self.acc_chart.growing_polyline(steps, column("train_acc"), pal.value, reached)
        self.test_curve = self.acc_chart.growing_polyline(steps, column("test_acc"), pal.key, reached)
        self.norm_curve = self.norm_chart.growing_polyline(steps, column("weight_norm"), pal.query, reached)
        self.wide_norm_chart = self.norm_chart_for(self.run, self.no_decay)  # once the λ = 0 run joins
        self.norm_tag = self.norm_tag_clear_of_curves()
        return VGroup(self.acc_chart, self.norm_chart, self.train_curve, self.test_curve, self.norm_curve, legend,
                      self.step_counter, self.norm_tag, self.note)

    def norm_tag_clear_of_curves(self):
        """The ‖W‖ chart's name, on one line or two, whichever first stays clear of the curves in both places it
        takes: under the main run's curve (which starts above the middle of its own range), then over both curves
        once the range widens for λ = 0."""
        def clear(tag, chart, *runs) -> bool:
            left, right, bottom, top = (tag.get_left()[0], tag.get_right()[0], tag.get_bottom()[1] - 0.1,
                                        tag.get_top()[1] + 0.1)
            for run in runs:
                history = run["history"][1:]
                points = chart.points_for([r["step"] for r in history], [r["weight_norm"] for r in history])
                inside = (points[:, 0] >= left) & (points[:, 0] <= right)
                if np.any(inside & (points[:, 1] >= bottom) & (points[:, 1] <= top)):
                    return False
            return True

        for text in ("权重范数 ‖W‖", "权重范数\n‖W‖"):
            tag = zh(text, self.data_role(), color=self.palette.query, prose=False)
            wide = tag.copy().move_to(self.wide_norm_chart.box.point(0.03, 0.97), aligned_edge=UP + LEFT)
            tag.move_to(self.norm_chart.box.point(0.03, 0.03), aligned_edge=DOWN + LEFT)
            if clear(tag, self.norm_chart, self.run) and clear(wide, self.wide_norm_chart, self.run, self.no_decay):
                break
        return tag

    def norm_chart_for(self, *runs) -> Chart:
        """The ‖W‖ chart with a y range that just holds ``runs``' norms (in tens): the main run's alone first, so its
        peak stands out; widened when the λ = 0 run joins."""
        norms = [r["weight_norm"] for run in runs for r in run["history"]]
        low, high = 10 * np.floor(min(norms) / 10), 10 * np.ceil(max(norms) / 10)
        return Chart(self.norm_area, self.norm_x, AxisSpec(low, high, numeric_ticks("weight_norm_tick", [low, high])))

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def show_task(self):
        self.next_section("任务")
        pal = self.palette
        p = self.run["config"]["p"]
        self.show_title(fill("任务：模 {p} 加法", p=p))
        train = self.plotted("train_split", grokking_grid(self.run["split"]["train"]))
        a, b = CFG.example_pair
        in_train = bool(train[a, b])
        role = self.data_role() if self.is_portrait else "body"
        a_, b_, p_ = num("example_a", a), num("example_b", b), num("p", p)
        total = num("example_sum", a + b)
        example = VGroup(
            zh(f"a = {a_}，b = {b_}", role, color=pal.accent, prose=False),
            zh(f"{a_} + {b_} = {total}", role, color=pal.accent, prose=False),
            zh(f"{total} mod {p_} = {num('example_answer', (a + b) % p)}", role, color=pal.accent, prose=False),
            zh("在训练集里" if in_train else "在测试集里", role, color=pal.value if in_train else pal.key,
               prose=False),
        )
        figure = self.layout.figure
        if self.is_portrait:  # the table above, the example in two columns under it
            example.arrange_in_grid(rows=2, cols=2, buff=(0.5, 0.25), col_alignments="ll")
            grid_area, side = figure.rows([figure.height - example.height - 0.4, example.height], gap=0.4)
        else:
            example.arrange(DOWN, aligned_edge=LEFT, buff=0.25)
            grid_area, side = figure.cols([0.5, 0.5], gap=0.4)
        side.place(example, align="center")
        table = BinaryGrid(train, pal.value, pal.grid)
        grid_area.inset(2 * self.layout.text_em("label")).fit(table, max_grow=10)  # room for the axis labels
        b_axis, a_axis = (zh(text, "label", color=pal.muted, prose=False) for text in ("b →", "a ↓"))
        labels = VGroup(b_axis.next_to(table, UP, buff=0.1, aligned_edge=LEFT),
                        a_axis.next_to(table, LEFT, buff=0.1, aligned_edge=UP))
        cell = table.height / p
        marker = Rectangle(width=cell * 2.2, height=cell * 2.2, color=pal.accent, stroke_width=theme.STROKE)
        marker.move_to(table.cell_center(a, b))

        with self.voice(fill("先给答案：grokking 是先背下题目，很久以后才突然学会。任务是模 {p} 加法。", p=p)):
            self.play(FadeIn(table), FadeIn(labels), run_time=theme.BEAT)
            self.say(fill("{p} × {p} = {pairs} 道加法题", p=p, pairs=p * p))
            self.wait(theme.QUICK)
        train_share = float(train.mean())
        with self.voice(fill("亮的 {train_share:.0%} 给模型背，暗的留着考试。", train_share=train_share)):
            self.say(fill("亮的 {train_share:.0%} 给模型背\n暗的留着考试", train_share=train_share))
            self.play(Create(marker), FadeIn(example, lag_ratio=0.3), run_time=theme.SLOW)
            self.wait(theme.HOLD)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def memorize(self):
        self.next_section("背诵")
        pal = self.palette
        self.show_title("先背下来")
        charts = self.build_charts()
        memorized = self.phases.memorized
        at = self.record_at(self.run, memorized)
        with self.voice("一次真实的训练，横轴是步数。训练集准确率很快冲了上去。"):
            self.play(FadeIn(charts), run_time=theme.BEAT)
            self.say("训练集准确率冲上去")
            self.advance_to(memorized, run_time=5)
        said = dict(memorized_step=memorized, memorized_train_acc=at["train_acc"], memorized_test_acc=at["test_acc"])
        with self.voice(fill("第 {memorized_step} 步，测试只有 {memorized_test_acc:.1%}：它只是背下来了。", **said)):
            self.say(fill("第 {memorized_step} 步：训练 {memorized_train_acc:.0%}\n测试 {memorized_test_acc:.1%}",
                          **said), color=pal.value, hold=True)

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def plateau(self):
        self.next_section("平台期")
        pal = self.palette
        self.show_title("平台期：没动静？")
        self.run_note(self.run, "main_run_")  # the note drawn in 背诵 is still on screen: record it for this section
        grokking = self.phases.grokking
        window = [r for r in self.run["history"] if grokking is None or r["step"] <= grokking]
        peak = max(window, key=lambda r: r["weight_norm"])
        # Stop short of the jump, so that the next section plays it; a run that never groks plays to its end here.
        end = self.last_step if grokking is None else max(peak["step"], int(0.8 * grokking))
        with self.voice("接下来很久，测试准确率还趴在地上。"):
            self.say("测试准确率还趴在地上", color=pal.key)
            self.advance_to(peak["step"], run_time=5)
        said = dict(norm_peak_step=peak["step"], norm_peak=peak["weight_norm"])
        if self.record_at(self.run, end)["weight_norm"] < peak["weight_norm"]:
            decay = "之后被 weight decay 拉小"
        else:
            decay = "之后也没有变小"
        with self.voice(fill("可权重范数在变：第 {norm_peak_step} 步见顶，", **said) + decay + "。"):
            self.say(fill("‖W‖ 在第 {norm_peak_step} 步见顶（{norm_peak:.0f}）\n", **said) + decay, color=pal.query)
            self.advance_to(end, run_time=4)
            self.wait(theme.QUICK)

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def grok(self):
        self.next_section("顿悟")
        pal = self.palette
        self.run_note(self.run, "main_run_")  # still on screen from 背诵
        reached = self.phases.generalized or self.phases.grokking
        self.show_title("顿悟：突然学会" if reached else "还没有顿悟")
        with self.voice("然后，测试准确率突然冲了上去。" if reached else "一直训练到最后，测试准确率也没上来。"):
            self.advance_to(self.last_step, run_time=5 if reached else theme.BEAT)
        names = {"memorized": "背下", "grokking": "过半", "generalized": "学会"}
        reached_phases = {key: step for key, step in self.phases._asdict().items() if step is not None}
        lines = VGroup(*(self.acc_chart.vline(step, pal.accent) for step in reached_phases.values()))
        # listed in the chart's empty upper left (nothing has been learnt in the first steps), not on the curves
        readings = VGroup(*(zh(f"{names[key]} {num(f'phase_{key}', step)}", self.data_role(), color=pal.accent,
                               prose=False) for key, step in reached_phases.items()))
        readings.arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        readings.move_to(self.acc_chart.box.point(0.03, 0.97), aligned_edge=UP + LEFT)
        marks = VGroup(lines, readings)
        self.phase_marks = marks
        if reached:
            reached_name = "学会" if self.phases.generalized else "过半"
            said = dict(memorized_step=self.phases.memorized, reached_step=reached)
            speech = fill(f"从第 {{memorized_step}} 步背下，到第 {{reached_step}} 步{reached_name}：这就是 grokking。",
                          **said)
            caption = f"从背下到{reached_name}：\n" + fill("{memorized_step} → {reached_step} 步", **said)
            color = pal.accent
        else:
            final = self.run["history"][-1]
            said = dict(last_step=final["step"], final_test_acc=final["test_acc"])
            speech = fill("到第 {last_step} 步，测试仍是 {final_test_acc:.0%}，这个 run 没等到顿悟。", **said)
            caption = fill("到第 {last_step} 步，测试仍是 {final_test_acc:.0%}\n这个 run 没等到顿悟", **said)
            color = pal.key
        with self.voice(speech):
            self.play(FadeIn(marks, lag_ratio=0.3), run_time=theme.BEAT)
            self.say(caption, color=color, hold=True)

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def without_weight_decay(self):
        self.next_section("没有 weight decay")
        pal = self.palette
        wd = fill("λ = {no_decay_weight_decay:g}", no_decay_weight_decay=self.no_decay["config"]["weight_decay"])
        self.show_title(f"{wd} 会怎样")
        self.run_note(self.run, "main_run_")
        history = self.no_decay["history"][1:]
        steps = self.plotted("no_decay_step", np.array([r["step"] for r in history], dtype=float))
        reached = ValueTracker(0.0)
        until = lambda: 10 ** reached.get_value()  # noqa: E731
        column = lambda key: self.plotted(f"no_decay_{key}", np.array([r[key] for r in history]))  # noqa: E731
        test = self.acc_chart.growing_polyline(steps, column("test_acc"), pal.warning, until)
        train = self.acc_chart.growing_polyline(steps, column("train_acc"), pal.warning, until,
                                                stroke_width=theme.STROKE_THIN)
        wide = self.wide_norm_chart
        main = self.run["history"][1:]
        self.norm_curve.clear_updaters()
        rescaled = wide.polyline(self.plotted("main_run_step", [r["step"] for r in main]),
                                 self.plotted("main_run_weight_norm", [r["weight_norm"] for r in main]), pal.query)
        norm = wide.growing_polyline(steps, column("weight_norm"), pal.warning, until)
        # the step counter belongs to the main run; the red curves run to their own last step, so a tag replaces it
        tag = zh(f"红线：{wd}", "body", color=pal.warning, prose=False)
        self.top_row.place(tag, align="right")
        note = self.run_note(self.no_decay, "no_decay_run_", "红线：")
        fades = [crossfade(self.note, note, match=False)] if len(self.note) else []
        if len(note):
            note.move_to(self.note, aligned_edge=LEFT)
        with self.voice(fill("为什么会顿悟？关掉 weight decay 试试：λ 等于 {no_decay_weight_decay:g}，看红线。",
                             no_decay_weight_decay=self.no_decay["config"]["weight_decay"])):
            self.play(FadeOut(self.phase_marks), crossfade(self.step_counter, tag, match=False), *fades,
                      FadeOut(self.norm_chart), FadeIn(wide), Transform(self.norm_curve, rescaled),
                      self.norm_tag.animate.move_to(wide.box.point(0.03, 0.97), aligned_edge=UP + LEFT),
                      run_time=theme.BEAT)
            self.add(test, train, norm)
            self.play(reached.animate.set_value(np.log10(steps[-1])), run_time=6, rate_func=linear)
        first, final = self.no_decay["history"][0], self.no_decay["history"][-1]
        said = dict(no_decay_final_train_acc=final["train_acc"], no_decay_final_test_acc=final["test_acc"],
                    no_decay_initial_norm=first["weight_norm"], no_decay_final_norm=final["weight_norm"])
        with self.voice(fill("训练 {no_decay_final_train_acc:.0%}，测试 {no_decay_final_test_acc:.0%}，权重范数涨到 "
                             "{no_decay_final_norm:.0f}：没有弹簧，它就停在死记硬背。", **said)):
            self.say(fill("{wd}：训练 {no_decay_final_train_acc:.0%}，测试 {no_decay_final_test_acc:.0%}\n"
                          "‖W‖ 从 {no_decay_initial_norm:.0f} 涨到 {no_decay_final_norm:.0f}", wd=wd, **said),
                     color=pal.warning, hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def inside_the_model(self):
        self.next_section("里面发生了什么")
        pal = self.palette
        self.show_title("里面：几个关键频率")
        run = load_grokking_run(CFG.spectrum_run)
        phases = grokking_phase_steps(run)
        early, late = grokking_snapshot_after_memorizing(run, phases), run["snapshots"][-1]
        k = CFG.top_frequencies
        power = {s["step"]: self.plotted(f"spectrum_share[{s['step']}]", np.array(s["embedding_fourier_power"]))
                 for s in (early, late)}
        top_k = np.sort(np.argsort(power[late["step"]])[::-1][:k])
        p = run["config"]["p"]
        frequencies = np.arange(p // 2 + 1)
        y_top = float(np.ceil(max(v.max() for v in power.values()) * 20) / 20)
        note = self.run_note(run, "spectrum_run_")
        role = self.data_role()
        model = zh(fill("transformer，模 {spectrum_p} 加法", spectrum_p=p), role, color=pal.muted, prose=False)
        learned = "学会后" if phases.generalized is not None and late["step"] >= phases.generalized else "最后"
        step_tag = zh(fill("第 {spectrum_early_step} 步（刚背下）", spectrum_early_step=early["step"]), role,
                      color=pal.muted, prose=False)
        late_tag = zh(fill("第 {spectrum_late_step} 步", spectrum_late_step=late["step"]) + f"（{learned}）", role,
                      color=pal.accent, prose=False)
        area = self.layout.figure
        if len(note):
            area, note_area = area.rows([0.9, 0.1], gap=0.1)
            note_area.place(note, align="left")
        y_title = "embedding 能量占比"
        tags = VGroup(model, step_tag).arrange(RIGHT, buff=0.4)  # which run, which step
        if tags.width + zh(y_title, "label").width + self.layout.text_em("label") * 2 > area.width:
            # no room on the y title's line: two lines in a row of their own above the chart
            tags.arrange(DOWN, aligned_edge=RIGHT, buff=0.15)
            tag_area, area = area.rows([tags.height, area.height - tags.height - 0.2], gap=0.2)
            tag_area.place(tags, align="right")
            late_tag.move_to(step_tag, aligned_edge=RIGHT)
        else:
            wider = max(0.0, late_tag.width - step_tag.width)  # room for the later step tag, left-aligned in place
            tags.move_to(area.point(1, 1) + LEFT * (tags.width + wider), aligned_edge=UP + LEFT)
            late_tag.move_to(step_tag, aligned_edge=LEFT)
        chart, bars, late_bars, top_labels = self.spectrum_chart(area, frequencies, y_top, y_title,
                                                                 power[early["step"]], power[late["step"]], top_k)
        mlp = self.run["snapshots"][-1]
        mlp_learned = self.phases.generalized is not None and mlp["step"] >= self.phases.generalized
        mlp_power = self.plotted("main_run_final_spectrum_share", np.array(mlp["embedding_fourier_power"]))

        early_said = dict(top_k=k, spectrum_early_top_share=top_share(power[early["step"]], k))
        with self.voice(fill("看模型里面：把 embedding 按频率拆开。刚背下时，前 {top_k} 个频率只占 "
                             "{spectrum_early_top_share:.0%}。", **early_said)):
            self.play(FadeIn(chart), FadeIn(bars), FadeIn(tags), FadeIn(note), run_time=theme.BEAT)
            self.say(fill("换个模型看：刚背下时\n前 {top_k} 个频率只占 {spectrum_early_top_share:.0%}", **early_said),
                     hold=True)
        late_said = dict(top_k=k, spectrum_late_top_share=top_share(power[late["step"]], k),
                         spectrum_late_effective_frequencies=effective_frequencies(power[late["step"]]))
        with self.voice(learned + fill("，前 {top_k} 个占到 {spectrum_late_top_share:.0%}，能量集中在约 "
                                       "{spectrum_late_effective_frequencies:.0f} 个频率上。", **late_said)):
            self.play(Transform(bars, late_bars), crossfade(step_tag, late_tag, match=False), run_time=theme.SLOW)
            self.play(FadeIn(top_labels), run_time=theme.QUICK)
            self.say(learned + fill("：前 {top_k} 个占 {spectrum_late_top_share:.0%}\n"
                                    "能量集中在约 {spectrum_late_effective_frequencies:.0f} 个频率上", **late_said),
                     color=pal.accent, hold=True)
        mlp_said = fill("能量还摊在约 {main_run_final_effective_frequencies:.0f} 个频率上",
                        main_run_final_effective_frequencies=effective_frequencies(mlp_power))
        mlp_when = "学会后" if mlp_learned else "到最后"
        with self.voice(f"前面那个 MLP {mlp_when}，{mlp_said}。"):
            self.say(f"前面的 MLP {mlp_when}：\n{mlp_said}", hold=True)
        self.clear_stage()

    def spectrum_chart(self, area, frequencies, y_top: float, y_title: str, early, late, top_k):
        """The spectrum chart, its bars before and after, and the labels over the top frequencies. The y axis runs to
        ``y_top``, or higher where the labels over the tallest bars would run into the y title (a chart squeezed by
        the subtitle band of a narrated short): the bars then leave the labels room under it."""
        pal = self.palette
        axis_top = y_top
        while True:
            chart = Chart(area, AxisSpec(-1, frequencies[-1] + 1, numeric_ticks("frequency_tick", frequencies[::10]),
                                         "频率 k"),
                          AxisSpec(0, axis_top, numeric_ticks("spectrum_share_tick", [0, y_top], "{:.0%}"), y_title))
            bars = chart.bars(frequencies, early, pal.muted)
            late_bars = chart.bars(frequencies, late, pal.query)
            for f in top_k:
                late_bars[f].set_fill(pal.accent)
            labels = VGroup(*(zh(num(f"top_frequency[{i}]", int(f)), "label", color=pal.accent, prose=False)
                              .next_to(late_bars[f], UP, buff=0.08) for i, f in enumerate(top_k)))
            gap = 0.3 * self.layout.text_em("label")
            for before, label in zip(labels, labels[1:]):  # neighbours too close side by side: lift the later
                if label.get_left()[0] < before.get_right()[0] + gap and label.get_bottom()[1] < before.get_top()[1]:
                    label.shift(UP * (before.get_top()[1] + 0.1 - label.get_bottom()[1]))
            title = chart.y_title
            clear = all(label.get_top()[1] < title.get_bottom()[1] or label.get_left()[0] > title.get_right()[0]
                        for label in labels)
            if clear or axis_top > 2 * y_top:
                return chart, bars, late_bars, labels
            axis_top *= 1.1

    # --- 7 ---------------------------------------------------------------------------------------------------------

    def throttle_and_spring(self):
        self.next_section("油门和弹簧")
        pal = self.palette
        self.show_title("油门和弹簧")
        lr, wd = self.run["config"]["lr"], self.run["config"]["weight_decay"]
        update = formula('W_"new" = {{ W_"old" : w }} - {{ eta : lr }} dot {{ g : g }} - '
                         '{{ eta dot lambda : wd }} dot W_"old"', "body" if self.is_portrait else "title")
        update.select("lr").set_color(pal.value)
        update.select("g").set_color(pal.query)
        update.select("wd").set_color(pal.key)
        role = self.data_role() if self.is_portrait else "body"
        notes = VGroup(
            rich(f'#text(fill: rgb("{pal.value}"))[$eta$ 学习率：标量 {num("lr", lr, "{:g}")}（油门）]', role,
                 prose=False),
            rich(f'#text(fill: rgb("{pal.query}"))[$g$ 梯度：矩阵（Adam 归一化后）]', role, prose=False),
            rich(f'#text(fill: rgb("{pal.key}"))[$lambda$ weight decay：标量 {num("weight_decay", wd, "{:g}")}'
                 f'（弹簧）]', role, prose=False),
            rich("$W$ 权重：矩阵", role, prose=False),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        block = VGroup(update, notes).arrange(DOWN, buff=0.6)
        self.layout.figure.fit(block, max_grow=1.5)  # text may grow into the room (the layout check fails if it shrank)
        # Llama 2 is trained with AdamW and weight decay 0.1 (Touvron et al. 2023, §2.2): the update drawn here.
        with self.voice("最后联系大模型：这是 AdamW 的更新，Llama 也用它。学习率是油门，weight decay 是弹簧。"):
            self.play(FadeIn(update), run_time=theme.BEAT)
            self.play(FadeIn(notes, lag_ratio=0.3), run_time=theme.SLOW)
        # AdamW's decoupled decay multiplies W by 1 − ηλ every step (torch.optim.AdamW, Loshchilov & Hutter 2019).
        factor = dict(decay_factor=1 - lr * wd)
        with self.voice(fill("梯度推着权重背题，λ 每步把它乘上 {decay_factor:g}。", **factor)):
            self.say(fill("梯度推着 W 背题\nλ 每步把 W 乘上 {decay_factor:g}", **factor))
            self.wait(theme.HOLD)
        with self.voice("等更小的权重也能解题，泛化就出现了。"):
            self.say("能用更小的 W 解题时\n泛化就出现了", color=pal.accent, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
