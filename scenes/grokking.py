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
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.grid import BinaryGrid
from shared.runs import (
    grokking_grid,
    grokking_phase_steps,
    grokking_snapshot,
    load_grokking_run,
    short_device_name,
)
from shared.scene import ExplainerScene
from shared.text import LiveNumber, formula, rich, zh


@dataclass(frozen=True)
class GrokkingSceneConfig:
    """Which committed runs the explainer shows, and what it points at."""

    main_run: str = "add_p59_wd1_seed0"  # weight decay 1.0
    no_decay_run: str = "add_p59_wd0_seed0"  # weight decay 0, trained twice as long
    example_pair: tuple[int, int] = (30, 40)  # a cell of the table to read out
    spectrum_early_step: int = 500  # a snapshot after memorising, before generalising
    top_frequencies: int = 5


CFG = GrokkingSceneConfig()


def log_ticks(high: float) -> list[tuple[float, str]]:
    """1, 10, 100, 1k, 10k … up to ``high``."""
    ticks, value = [], 1
    while value <= high:
        ticks.append((float(value), f"{value // 1000}k" if value >= 1000 else f"{value}"))
        value *= 10
    return ticks


class GrokkingCurves(ExplainerScene):
    """Memorisation, plateau and sudden generalisation in a real run of (a + b) mod 59."""

    def setup(self):
        super().setup()
        self.run = load_grokking_run(CFG.main_run)
        self.no_decay = load_grokking_run(CFG.no_decay_run)
        self.phases = grokking_phase_steps(self.run)
        self.show_number("phases", self.phases._asdict())
        self.show_number("no_decay_phases", grokking_phase_steps(self.no_decay)._asdict())
        self.step = ValueTracker(0.0)  # log10 of the training step the curves have reached

    def construct(self):
        self.show_task()
        self.memorize()
        self.plateau()
        self.grok()
        self.without_weight_decay()
        self.inside_the_model()
        self.throttle_and_spring()

    # --- the accuracy and weight-norm charts, built once and kept across sections -------------------------------

    def build_charts(self):
        pal = self.palette
        history = self.run["history"][1:]  # step 0 has no place on a log axis
        steps = np.array([r["step"] for r in history], dtype=float)
        last = max(self.run["history"][-1]["step"], self.no_decay["history"][-1]["step"])
        top_row, body, note_area = self.layout.figure.rows([0.1, 0.82, 0.08], gap=0.1)
        ticks = log_ticks(last)
        if self.is_portrait:  # stacked, sharing the step axis
            # tick labels hang half a line past each chart: leave a label's height and more between the two
            acc_area, norm_area = body.rows([0.56, 0.44], gap=1.3 * self.layout.text_em("label"))
            acc_x = AxisSpec(1, last, [(v, "") for v, _ in ticks], log=True)
        else:  # side by side, each with its own step axis
            acc_area, norm_area = body.cols([0.6, 0.4], gap=0.5)
            acc_x = AxisSpec(1, last, ticks, "训练步数", log=True)
        self.acc_chart = Chart(acc_area, acc_x, AxisSpec(0, 1, [(0, "0%"), (0.5, "50%"), (1, "100%")]))
        norms = [r["weight_norm"] for r in self.run["history"] + self.no_decay["history"]]
        low, high = 10 * np.floor(min(norms) / 10), 10 * np.ceil(max(norms) / 10)
        self.norm_chart = Chart(norm_area, AxisSpec(1, last, ticks, "训练步数", log=True),
                                AxisSpec(low, high, [(low, f"{low:g}"), (high, f"{high:g}")]))
        reached = lambda: 10 ** self.step.get_value()
        column = lambda key: np.array([r[key] for r in history])
        self.train_curve = self.acc_chart.growing_polyline(steps, column("train_acc"), pal.value, reached)
        self.test_curve = self.acc_chart.growing_polyline(steps, column("test_acc"), pal.key, reached)
        self.norm_curve = self.norm_chart.growing_polyline(steps, column("weight_norm"), pal.query, reached)
        names = ("训练", "测试") if self.is_portrait else ("训练集准确率", "测试集准确率")
        legend = VGroup(zh(names[0], "label", color=pal.value, prose=False),
                        zh(names[1], "label", color=pal.key, prose=False)).arrange(RIGHT, buff=0.5)
        top_row.place(legend, align="left")
        self.legend = legend
        norm_tag = zh("权重范数 ‖W‖", "label", color=pal.query, prose=False)
        norm_tag.move_to(self.norm_chart.box.point(0.02, 1.0), aligned_edge=UP + LEFT)
        self.norm_tag = norm_tag
        prov = self.run["provenance"]
        self.provenance_note = note_area.place(
            zh(f"{short_device_name(prov['device'])} · {prov['wall_seconds']:.0f} 秒 · seed {self.run['config']['seed']}", "small",
               color=pal.muted), align="left")
        self.step_counter = LiveNumber(lambda: 10 ** self.step.get_value(), "step {:.0f}", "label", color=pal.accent)
        widest = LiveNumber(last, "step {:.0f}", "label")  # room for the longest count, right-aligned
        self.step_counter.move_to(top_row.point(1, 0.5) + LEFT * widest.width, aligned_edge=LEFT)
        return VGroup(self.acc_chart, self.norm_chart, self.train_curve, self.test_curve, self.norm_curve, legend, norm_tag,
                      self.provenance_note, self.step_counter)

    def record_at(self, run, step) -> dict:
        """The history record at (or last before) ``step``."""
        return [r for r in run["history"] if r["step"] <= step][-1]

    def advance_to(self, step: float, run_time: float):
        self.play(self.step.animate.set_value(np.log10(step)), run_time=run_time, rate_func=linear)

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def show_task(self):
        self.next_section("任务")
        pal = self.palette
        p = self.run["config"]["p"]
        self.show_title(f"任务：模 {p} 加法")
        train = grokking_grid(self.run["split"]["train"])
        share = float(train.mean())
        self.show_number("train_share", share)
        grid_area, side = self.layout.figure.rows([0.66, 0.34], gap=0.2) if self.is_portrait else \
            self.layout.figure.cols([0.5, 0.5], gap=0.4)
        table = BinaryGrid(train, pal.value, pal.grid)
        grid_area.inset(1.6 * self.layout.text_em("label")).fit(table, max_grow=10)  # room for the axis labels
        labels = VGroup(zh("b →", "label", color=pal.muted, prose=False).next_to(table, UP, buff=0.1, aligned_edge=LEFT),
                        zh("a ↓", "label", color=pal.muted, prose=False).next_to(table, LEFT, buff=0.1, aligned_edge=UP))
        a, b = CFG.example_pair
        answer = (a + b) % p
        in_train = bool(train[a, b])
        self.show_number("example", {"a": a, "b": b, "answer": answer, "in_train": in_train})
        cell = table.height / p
        marker = Rectangle(width=cell * 2.2, height=cell * 2.2, color=pal.accent, stroke_width=theme.STROKE)
        marker.move_to(table.cell_center(a, b))
        role = "label" if self.is_portrait else "body"
        example = VGroup(
            zh(f"a = {a}，b = {b}", role, color=pal.accent, prose=False),
            zh(f"{a} + {b} = {a + b}", role, color=pal.accent, prose=False),
            zh(f"{a + b} mod {p} = {answer}", role, color=pal.accent, prose=False),
            zh("在训练集里" if in_train else "在测试集里", role, color=pal.value if in_train else pal.key,
               prose=False),
        )
        if self.is_portrait:
            example.arrange_in_grid(rows=2, cols=2, buff=(0.5, 0.25), col_alignments="ll")
        else:
            example.arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        side.place(example, align="center")

        self.play(FadeIn(table), FadeIn(labels), run_time=theme.BEAT)
        self.say(f"{p} × {p} = {p * p} 道加法题")
        self.wait(theme.QUICK)
        self.say(f"亮的 {share:.0%} 给模型背\n暗的留着考试")
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
        self.show_number("at_memorized", at)
        self.play(FadeIn(charts), run_time=theme.BEAT)
        self.say("训练集准确率冲上去")
        self.advance_to(memorized, run_time=5)
        self.say(f"第 {memorized} 步：训练 {at['train_acc']:.0%}\n测试 {at['test_acc']:.1%}", color=pal.value,
                 hold=True)

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def plateau(self):
        self.next_section("平台期")
        pal = self.palette
        self.show_title("平台期：没动静？")
        before = int(0.8 * self.phases.grokking)
        norms = [(r["step"], r["weight_norm"]) for r in self.run["history"] if r["step"] <= self.phases.grokking]
        peak_step, peak_norm = max(norms, key=lambda sn: sn[1])
        self.show_number("norm_peak", {"step": peak_step, "weight_norm": peak_norm})
        at = self.record_at(self.run, before)
        self.show_number("at_plateau_end", at)
        self.say("测试准确率还趴在地上", color=pal.key)
        self.advance_to(peak_step, run_time=5)
        self.say(f"‖W‖ 在第 {peak_step} 步见顶\n之后被 weight decay 拉小", color=pal.query)
        self.advance_to(before, run_time=4)
        self.wait(theme.QUICK)

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def grok(self):
        self.next_section("顿悟")
        pal = self.palette
        self.show_title("顿悟：突然学会")
        end = self.run["history"][-1]["step"]
        self.advance_to(end, run_time=5)
        marks = VGroup()
        names = {"memorized": "背下", "grokking": "过半", "generalized": "学会"}
        top, line_step = self.acc_chart.c2p(1, 0.6)[1], 1.35 * self.layout.text_em("label")  # stacked, never touching
        for i, (key, step) in enumerate(self.phases._asdict().items()):
            line = self.acc_chart.vline(step, pal.accent)
            tag = zh(f"{names[key]} {step}", "label", color=pal.accent, prose=False)
            point = np.array([self.acc_chart.c2p(step, 0)[0], top - i * line_step, 0])
            fits_right = point[0] + 0.1 + tag.width < self.acc_chart.box.right
            tag.next_to(point, RIGHT if fits_right else LEFT, buff=0.1)
            marks.add(VGroup(line, tag))
        self.phase_marks = marks
        self.play(FadeIn(marks, lag_ratio=0.3), run_time=theme.BEAT)
        final = self.run["history"][-1]
        self.show_number("final", final)
        self.say(f"从背下到学会：\n{self.phases.memorized} → {self.phases.generalized} 步", color=pal.accent, hold=True)

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def without_weight_decay(self):
        self.next_section("没有 weight decay")
        pal = self.palette
        self.show_title("λ = 0 会怎样")
        history = self.no_decay["history"][1:]
        steps = np.array([r["step"] for r in history], dtype=float)
        reached = ValueTracker(0.0)
        until = lambda: 10 ** reached.get_value()
        column = lambda key: np.array([r[key] for r in history])
        test = self.acc_chart.growing_polyline(steps, column("test_acc"), pal.warning, until)
        train = self.acc_chart.growing_polyline(steps, column("train_acc"), pal.warning, until,
                                                stroke_width=theme.STROKE_THIN)
        norm = self.norm_chart.growing_polyline(steps, column("weight_norm"), pal.warning, until)
        tag = zh("红线：λ = 0", "label", color=pal.warning, prose=False).next_to(self.legend, RIGHT, buff=0.5)
        final = self.no_decay["history"][-1]
        self.show_number("no_decay_final", final)
        # the step counter belongs to the λ = 1 run; the red curves run to their own last step, so it goes
        self.play(FadeOut(self.phase_marks), FadeOut(self.step_counter), FadeIn(tag), run_time=theme.QUICK)
        self.add(test, train, norm)
        self.play(reached.animate.set_value(np.log10(steps[-1])), run_time=6, rate_func=linear)
        self.say(f"λ = 0：训练 {final['train_acc']:.0%}，测试 {final['test_acc']:.0%}\n"
                 f"‖W‖ 一路涨到 {final['weight_norm']:.0f}", color=pal.warning, hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def inside_the_model(self):
        self.next_section("里面发生了什么")
        pal = self.palette
        self.show_title("里面：几个关键频率")
        early = grokking_snapshot(self.run, CFG.spectrum_early_step)
        late = self.run["snapshots"][-1]
        spectra = {s["step"]: np.array(s["embedding_fourier_power"]) for s in (early, late)}
        top_share = {step: float(np.sort(power)[::-1][: CFG.top_frequencies].sum()) for step, power in spectra.items()}
        top_k = np.argsort(spectra[late["step"]])[::-1][: CFG.top_frequencies]
        self.show_number("fourier_top_share", top_share)
        self.show_number("fourier_top_frequencies", sorted(int(k) for k in top_k))
        p = self.run["config"]["p"]
        frequencies = np.arange(p // 2 + 1)
        peak = max(float(v.max()) for v in spectra.values())
        y_top = float(np.ceil(peak * 20) / 20)
        chart = Chart(self.layout.figure,
                      AxisSpec(-1, p // 2 + 1, [(float(k), f"{k}") for k in range(0, p // 2 + 1, 5)], "频率 k"),
                      AxisSpec(0, y_top, [(0, "0%"), (y_top, f"{y_top:.0%}")], "embedding 能量占比"))
        bars = chart.bars(frequencies, spectra[early["step"]], pal.muted)
        late_bars = chart.bars(frequencies, spectra[late["step"]], pal.query)
        for k in top_k:
            late_bars[k].set_fill(pal.accent)
        step_tag = zh(f"第 {early['step']} 步（背下后）", "label", color=pal.muted, prose=False)
        late_tag = zh(f"第 {late['step']} 步（学会后）", "label", color=pal.accent, prose=False)
        for tag in (step_tag, late_tag):
            tag.move_to(chart.box.point(0.98, 0.98), aligned_edge=UP + RIGHT)

        self.play(FadeIn(chart), FadeIn(bars), FadeIn(step_tag), run_time=theme.BEAT)
        self.say(f"前 {CFG.top_frequencies} 个频率只占 {top_share[early['step']]:.0%}")
        self.wait(theme.QUICK)
        self.play(Transform(bars, late_bars), Transform(step_tag, late_tag), run_time=theme.SLOW)
        self.say(f"学会后：前 {CFG.top_frequencies} 个占 {top_share[late['step']]:.0%}\n用少数频率做模加法",
                 color=pal.accent, hold=True)
        self.clear_stage()

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
        role = "label" if self.is_portrait else "body"
        notes = VGroup(
            rich(f'#text(fill: rgb("{pal.value}"))[$eta$ 学习率：标量 {lr:g}（油门）]', role, prose=False),
            rich(f'#text(fill: rgb("{pal.query}"))[$g$ 梯度：矩阵（Adam 归一化后）]', role, prose=False),
            rich(f'#text(fill: rgb("{pal.key}"))[$lambda$ weight decay：标量 {wd:g}（弹簧）]', role, prose=False),
            rich("$W$ 权重：矩阵", role, prose=False),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        block = VGroup(update, notes).arrange(DOWN, buff=0.6)
        self.layout.figure.fit(block)
        self.play(FadeIn(update), run_time=theme.BEAT)
        self.play(FadeIn(notes, lag_ratio=0.3), run_time=theme.SLOW)
        self.say("梯度推着 W 背题\nλ 每步把 W 往 0 拉")
        self.wait(theme.HOLD)
        self.say("能用更小的 W 解题时\n泛化就出现了", color=pal.accent, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
