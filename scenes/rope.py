"""RoPE explainer: why attention needs positions, how RoPE rotates, and how it stretches to long contexts.

Render: ``manim -qh scenes/rope.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/rope.py`` (9:16).
Every number, angle and bar comes from ``shared/math/rope.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import (
    DOWN,
    LEFT,
    ORIGIN,
    RIGHT,
    UP,
    Arrow,
    Circle,
    Create,
    Dot,
    FadeIn,
    GrowArrow,
    Indicate,
    ReplacementTransform,
    ValueTracker,
    VGroup,
    linear,
)

from shared import theme
from shared.math.rope import (
    apply_rope,
    ntk_scaled_base,
    rope_angles,
    rope_decay_curve,
    rope_frequencies,
    rope_self_attention,
    yarn_attention_factor,
    yarn_correction_range,
    yarn_frequencies,
    yarn_logit_scale,
    interpolated_frequencies,
)
from shared.math.tiny_transformer import sinusoidal_positional_encoding
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.clock import Clock
from shared.mobjects.tokens import TokenRow
from shared.mobjects.vectors import PolarArrow
from shared.numbers import fill, num, num_vector, term
from shared.scene import ExplainerScene, crossfade
from shared.text import LiveNumber, formula, zh


@dataclass(frozen=True)
class RoPEConfig:
    """Everything the explainer computes from. Change a value and every number on screen follows."""

    base: float = 10000.0
    toy_dim: int = 4  # d of the 狗咬人 toy attention (random embeddings and projections)
    toy_seed: int = 0
    toy_words: tuple[str, ...] = ("狗", "咬", "人")
    clock_dim: int = 8  # 4 pairs → 4 clocks, θ = 1, 0.1, 0.01, 0.001
    clock_last_position: int = 40  # m runs 0 → 40
    rotate_to_position: int = 5  # the RoPE arrow of 加法还是乘法 turns from m = 0 to this m
    dot_dim: int = 8  # q, k for the relative-position demo
    dot_seed: int = 3
    dot_positions: tuple[int, int] = (2, 5)  # m, n at the start
    dot_shift: int = 6  # q and k move together by this many positions
    dot_extra_key_shift: int = 3  # then k alone moves on
    decay_dim: int = 128  # RoFormer Figure 2
    decay_max_distance: int = 256
    head_dim: int = 128  # Llama-style head for the extrapolation bars
    train_context: int = 4096
    target_context: int = 131072


CFG = RoPEConfig()


class RoPERotation(ExplainerScene):
    """RoPE, from "attention can't see order" to YaRN."""

    def construct(self):
        self.why_positions()
        self.add_or_rotate()
        self.clock_bank()
        self.relative_position()
        self.long_range_decay()
        self.extrapolation()

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def why_positions(self):
        self.next_section("为什么需要位置")
        pal = self.palette
        self.show_title("为什么需要位置？")
        words = CFG.toy_words
        rng = np.random.default_rng(CFG.toy_seed)
        embedding = {w: rng.normal(size=CFG.toy_dim) for w in words}
        w_q, w_k, w_v = (rng.normal(size=(CFG.toy_dim, CFG.toy_dim)) for _ in range(3))
        sentences = [list(words), list(reversed(words))]  # 狗 咬 人 / 人 咬 狗
        dog = words[0]

        def dog_output(sentence, positions):
            x = np.stack([embedding[w] for w in sentence])
            out, _ = rope_self_attention(x, w_q, w_k, w_v, positions, CFG.base)
            return out[sentence.index(dog)]

        plain = [dog_output(s, None) for s in sentences]
        rotated = [dog_output(s, np.arange(len(s))) for s in sentences]
        gap = float(np.abs(rotated[0] - rotated[1]).max())

        rows = [TokenRow(s) for s in sentences]
        for row, sentence in zip(rows, sentences):
            row[sentence.index(dog)][0].set_stroke(pal.query, theme.STROKE)
        header = zh(f"“{dog}”的输出", "body", color=pal.query)
        rope_header = zh(f"加 RoPE 后“{dog}”的输出", "body", color=pal.value)
        outputs = [zh(num_vector(f"dog_output_no_position[{i}]", p), "label", color=pal.query)
                   for i, p in enumerate(plain)]
        with_rope = [zh(num_vector(f"dog_output_rope[{i}]", r), "label", color=pal.value) for i, r in enumerate(rotated)]
        # Each output shares a slot with the one that replaces it, so the layout has room for the wider of the two.
        align = ORIGIN if self.is_portrait else LEFT
        slots = [VGroup(o, r.move_to(o, aligned_edge=align)) for o, r in zip(outputs, with_rope)]
        heads = VGroup(header, rope_header.move_to(header, aligned_edge=align))
        if self.is_portrait:  # token row, then its output below it
            block = VGroup(heads, *[VGroup(r, o).arrange(DOWN, buff=0.3) for r, o in zip(rows, slots)])
            block.arrange(DOWN, buff=0.6)
        else:  # token rows on the left, outputs in a column on the right
            left = VGroup(*rows).arrange(DOWN, buff=0.6)
            right = VGroup(*slots).arrange(DOWN, buff=0.6, aligned_edge=LEFT)
            for row, slot in zip(rows, slots):
                slot.match_y(row)
            block = VGroup(left, right).arrange(RIGHT, buff=1.0)
            heads.next_to(right, UP, buff=0.5, aligned_edge=LEFT)
            block.add(heads)
        note = self.fine_print(fill("随机 embedding 和权重，d = {toy_dim}，单头", toy_dim=CFG.toy_dim))
        content = self.layout.figure
        if len(note):
            content, note_area = content.rows([0.88, 0.12], gap=0.1)
            note_area.place(note)
        content.fit(block, max_grow=1.6)

        with self.voice("先给答案：注意力本身不知道词的顺序，位置要另外告诉它。看这个例子：狗咬人，人咬狗。"):
            self.play(*[FadeIn(r, shift=0.2 * DOWN) for r in rows], FadeIn(note), run_time=theme.BEAT)
            self.say("词序反了，意思全变")
            self.wait(theme.HOLD)
        with self.voice("没有位置信息，两句话里“狗”的输出一模一样，注意力分不出谁咬谁。"):
            self.play(FadeIn(header), *[FadeIn(o) for o in outputs], run_time=theme.BEAT)
            self.say("没有位置：“狗”的输出\n一模一样", color=pal.warning)
            self.play(*[Indicate(o, color=pal.warning, scale_factor=1.05) for o in outputs], run_time=theme.SLOW)
            self.wait(theme.HOLD)
        with self.voice(fill("加上 RoPE 以后，输出就不一样了，最大相差 {dog_output_rope_max_difference:.2f}。",
                             dog_output_rope_max_difference=gap)):
            self.play(crossfade(header, rope_header, match=False),
                      *[crossfade(o, n, match=False) for o, n in zip(outputs, with_rope)], run_time=theme.BEAT)
            self.say(fill("加上 RoPE：不一样了\n最大相差 {dog_output_rope_max_difference:.2f}",
                          dog_output_rope_max_difference=gap), color=pal.value, hold=True)
            self.wait(theme.HOLD)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def add_or_rotate(self):
        self.next_section("加法还是乘法")
        pal = self.palette
        self.show_title("加法还是乘法？")
        panels = self.layout.panels(2)
        heads, planes, notes = [], [], []
        for panel in panels:
            head, body = panel.rows([0.16, 0.84], gap=0.1)
            plane, note = body.cols([0.58, 0.42], gap=0.2)
            heads.append(head), planes.append(plane), notes.append(note)

        # Sinusoidal: x + PE(m); with d = 2 the encoding is (sin m, cos m) (Vaswani et al. §3.5).
        m_add = 2
        x = np.array([0.8, 0.9])
        pe = sinusoidal_positional_encoding(m_add + 1, 2, CFG.base)[m_add]
        tips = np.array([[0, 0], x, x + pe])
        scale = 0.9 * min(planes[0].width / np.ptp(tips[:, 0]), planes[0].height / np.ptp(tips[:, 1]),
                          planes[1].width / 2 / 1.25, planes[1].height / 2 / 1.25)  # frame units per plane unit
        origin_l = planes[0].center - scale * np.array([*(tips.min(0) + tips.max(0)) / 2, 0.0])
        to_l = lambda v: origin_l + scale * np.array([v[0], v[1], 0.0])  # noqa: E731
        add_x = Arrow(origin_l, to_l(x), buff=0, color=pal.query)
        add_p = Arrow(to_l(x), to_l(x + pe), buff=0, color=pal.key)
        add_sum = Arrow(origin_l, to_l(x + pe), buff=0, color=pal.value)
        add_head = heads[0].place(zh("Sinusoidal：加上去", "body"), align="left")
        add_text = VGroup(
            formula(f'x + "PE"({num("pe_position", m_add)})', "label", color=pal.value),
            zh(fill("长度 {length_before:.2f}\n→ {length_after:.2f}", length_before=np.linalg.norm(x),
                    length_after=np.linalg.norm(x + pe)), "label", color=pal.muted),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        notes[0].place(add_text, align="left")
        self.plotted("sinusoidal_arrows", {"x": x, "pe": pe})

        # RoPE: q turns by m·θ; d = 2 has one pair, θ_0 = 1 rad per position.
        theta0 = rope_frequencies(2, CFG.base)[0]
        q = np.array([1.2, 0.3])
        m = ValueTracker(0)
        origin_r = planes[1].center
        rotated = lambda: apply_rope(q[None, :], [m.get_value()], CFG.base)[0]  # noqa: E731
        dial = Circle(radius=scale * np.linalg.norm(q), color=pal.grid, stroke_width=theme.STROKE_THIN)
        dial.move_to(origin_r)
        q0 = Arrow(origin_r, origin_r + scale * np.array([*q, 0.0]), buff=0, color=pal.muted,
                   stroke_width=theme.STROKE_THIN)
        q_m = PolarArrow(origin_r, scale * np.linalg.norm(q), lambda: float(np.arctan2(*rotated()[::-1])), pal.query)
        rot_head = heads[1].place(zh("RoPE：转一下", "body"), align="left")
        readout = VGroup(
            LiveNumber(m.get_value, "m = {:.1f}", "label", color=pal.query, name="position_m"),
            LiveNumber(lambda: m.get_value() * theta0, "m θ = {:.2f}", "label", color=pal.query,
                       name="angle_m_theta"),
            LiveNumber(lambda: np.linalg.norm(rotated()), "|q| = {:.3f}", "label", color=pal.muted,
                       name="rotated_length"),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        notes[1].place(readout, align="left")

        with self.voice(fill("告诉它位置有两种办法。原始 Transformer 用加法：把位置编码加到向量上，长度从 "
                             "{length_before:.2f} 变成了 {length_after:.2f}。", length_before=np.linalg.norm(x),
                             length_after=np.linalg.norm(x + pe))):
            self.play(FadeIn(add_head), GrowArrow(add_x), run_time=theme.QUICK)
            self.play(GrowArrow(add_p), run_time=theme.QUICK)
            self.play(GrowArrow(add_sum), FadeIn(add_text), run_time=theme.BEAT)
            self.say("加法：把向量本身改了")
        with self.voice("RoPE 用乘法：位置是 m，向量就转过 m 乘 θ 的角度。"):
            self.play(FadeIn(rot_head), Create(dial), FadeIn(q0), GrowArrow(q_m), FadeIn(readout), run_time=theme.BEAT)
            self.say("乘法：位置 m 就转 m θ")
        with self.voice("转一转，长度不变，变的只是方向。"):
            self.play(m.animate.set_value(CFG.rotate_to_position), run_time=4, rate_func=linear)
            self.say("长度不变，只转角度", color=pal.value, hold=True)
        q_m.clear_updaters()
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def clock_bank(self):
        self.next_section("多频率时钟")
        pal = self.palette
        n_clocks = CFG.clock_dim // 2
        self.show_title(fill("d = {clock_dim}：{n_clocks} 个时钟", clock_dim=CFG.clock_dim, n_clocks=n_clocks))
        theta = rope_frequencies(CFG.clock_dim, CFG.base)
        m = ValueTracker(0)
        top, grid_area = self.layout.figure.rows([0.12, 0.88], gap=0.1)
        rows, cols = (2, 2) if self.is_portrait else (1, 4)
        cells = [c for r in grid_area.rows(rows, gap=0.25) for c in r.cols(cols, gap=0.3)]
        label_em = self.layout.text_em("label")
        clocks = VGroup()
        for i, (cell, th) in enumerate(zip(cells, theta)):
            radius = min(cell.width, cell.height - 1.8 * label_em) / 2 * 0.95
            color = pal.query if i < len(theta) // 2 else pal.key
            clock = Clock(radius, lambda i=i: float(rope_angles([m.get_value()], CFG.clock_dim, CFG.base)[0, i]), color)
            clock.move_to(cell.point(0.5, 1) + DOWN * (radius + 0.05))
            label = zh(f"θ{num(f'clock_pair[{i}]', i)} = {num(f'clock_theta[{i}]', th, '{:.3g}')}", "label",
                       color=pal.muted)
            label.next_to(clock, DOWN, buff=0.15)
            clocks.add(VGroup(clock, label))
        counter = LiveNumber(m.get_value, "m = {:.0f}", "body", color=pal.accent, name="clock_position")
        top.place(counter, align="left")

        with self.voice(fill("向量的维度两两一对，每一对就是一个时钟。d 等于 {clock_dim}，就有 {n_clocks} 个时钟，"
                             "转速一个比一个慢。", clock_dim=CFG.clock_dim, n_clocks=n_clocks)):
            self.play(FadeIn(clocks, lag_ratio=0.1), FadeIn(counter), run_time=theme.BEAT)
            self.say(formula(f"theta_i = {num('base', CFG.base, '{:g}')}^(-{term('2i')} \\/ d)"))
        with self.voice("快针转得快，相邻的字它就能分清。"):
            self.play(m.animate.set_value(CFG.clock_last_position / 2), run_time=4, rate_func=linear)
            self.say("快针：分辨近处的字", color=pal.query)
        with self.voice("慢针转得慢，离得很远的字，要靠它来分。"):
            self.play(m.animate.set_value(CFG.clock_last_position), run_time=4, rate_func=linear)
            self.say("慢针：分辨远处的字", color=pal.key, hold=True)
        slowest_degrees = np.degrees(CFG.clock_last_position * theta[-1])
        with self.voice(fill("真实模型的头维度是 {head_dim}，就是 {n_real_clocks} 个时钟。", head_dim=CFG.head_dim,
                             n_real_clocks=CFG.head_dim // 2)):
            self.say(fill("真实模型 d = {head_dim}\n就是 {n_real_clocks} 个时钟", head_dim=CFG.head_dim,
                          n_real_clocks=CFG.head_dim // 2))
        with self.voice(fill("这里走了 {steps} 步，最慢的针只转了 {slowest_hand_degrees:.2f} 度。",
                             steps=CFG.clock_last_position, slowest_hand_degrees=slowest_degrees)):
            self.say(fill("走了 {steps} 步，最慢的针\n只转了 {slowest_hand_degrees:.2f}°",
                          steps=CFG.clock_last_position, slowest_hand_degrees=slowest_degrees), color=pal.key, hold=True)
        for group in clocks:
            group[0].hand.clear_updaters()
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def relative_position(self):
        self.next_section("相对位置")
        pal = self.palette
        self.show_title("只看相对位置")
        rng = np.random.default_rng(CFG.dot_seed)
        q, k = rng.normal(size=CFG.dot_dim), rng.normal(size=CFG.dot_dim)
        m0, n0 = CFG.dot_positions
        m, n = ValueTracker(m0), ValueTracker(n0)

        def dot() -> float:
            return float(apply_rope(q[None], [m.get_value()], CFG.base)[0] @ apply_rope(k[None], [n.get_value()],
                                                                                     CFG.base)[0])

        plane, readout_area = self.layout.panels(2, weights=[1.15, 0.85])
        radius = min(plane.width, plane.height) * 0.42
        center = plane.center
        dial = Circle(radius=radius, color=pal.grid, stroke_width=theme.STROKE_THIN).move_to(center)

        def pair0_angle(v, pos) -> float:  # direction of the first pair (x_0, x_1) after rotation
            x0, x1 = apply_rope(v[None], [pos], CFG.base)[0][:2]
            return float(np.arctan2(x1, x0))

        q_arrow = PolarArrow(center, radius, lambda: pair0_angle(q, m.get_value()), pal.query)
        k_arrow = PolarArrow(center, radius, lambda: pair0_angle(k, n.get_value()), pal.key)
        q_tag = zh("q", "label", color=pal.query)
        k_tag = zh("k", "label", color=pal.key)
        q_tag.add_updater(lambda t: t.move_to(center + 1.14 * (q_arrow.get_end() - center)))
        k_tag.add_updater(lambda t: t.move_to(center + 1.14 * (k_arrow.get_end() - center)))

        readouts = VGroup(
            LiveNumber(m.get_value, "m = {:.1f}", "body", color=pal.query, name="query_position_m"),
            LiveNumber(n.get_value, "n = {:.1f}", "body", color=pal.key, name="key_position_n"),
            LiveNumber(lambda: n.get_value() - m.get_value(), "n − m = {:.1f}", "body", color=pal.text,
                       name="relative_distance"),
            LiveNumber(dot, "q·k = {:.4f}", "body", color=pal.accent, name="rotated_dot_product"),
        )
        if self.is_portrait:
            readouts.arrange_in_grid(rows=2, cols=2, buff=(0.6, 0.3), col_alignments="ll")
        else:
            readouts.arrange(DOWN, aligned_edge=LEFT, buff=0.35)
        notes = VGroup(
            self.fine_print(fill("d = {dot_dim}，q、k 随机", dot_dim=CFG.dot_dim)),
            zh(fill("圆上画的是第 {drawn_pair} 对\n（θ = {drawn_pair_theta:g}）", drawn_pair=0,
                    drawn_pair_theta=rope_frequencies(CFG.dot_dim, CFG.base)[0]), "label", color=pal.muted),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        notes.next_to(readouts, DOWN, aligned_edge=LEFT, buff=0.35)
        readout_area.fit(VGroup(readouts, notes), align="left" if not self.is_portrait else "center", max_grow=1.2)

        with self.voice("为什么说 RoPE 编码的是相对位置？q 在位置 m，k 在位置 n，注意力看的是它们的点积。"):
            self.play(Create(dial), GrowArrow(q_arrow), GrowArrow(k_arrow), FadeIn(q_tag), FadeIn(k_tag),
                      FadeIn(readouts), FadeIn(notes), run_time=theme.BEAT)
            self.say("q 在位置 m，k 在位置 n")
        with self.voice("把两个一起往后挪，各自都转了，点积却一点没变。"):
            self.play(m.animate.set_value(m0 + CFG.dot_shift), n.animate.set_value(n0 + CFG.dot_shift), run_time=4,
                      rate_func=linear)
            self.say("一起平移：点积不变", color=pal.value)
            self.wait(theme.HOLD)
        with self.voice("只挪 k，距离变了，点积马上就变。点积只认 n 减 m。"):
            self.play(n.animate.set_value(n0 + CFG.dot_shift + CFG.dot_extra_key_shift), run_time=3,
                      rate_func=linear)
            self.say("距离一变，点积就变", color=pal.key, hold=True)
        for mob in (q_arrow, k_arrow, q_tag, k_tag):
            mob.clear_updaters()
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def long_range_decay(self):
        self.next_section("远程衰减")
        pal = self.palette
        self.show_title("离得越远，影响越小")
        distances = np.arange(CFG.decay_max_distance + 1)
        bound = self.plotted("decay_curve", rope_decay_curve(CFG.decay_dim, distances, CFG.base))
        step = CFG.decay_max_distance // 4
        y_top = float(np.ceil(bound.max() / 10) * 10)
        chart = Chart(
            self.layout.figure,
            AxisSpec(0, CFG.decay_max_distance, numeric_ticks("distance_tick", distances[::step]), "相对距离 n − m"),
            AxisSpec(0, y_top, numeric_ticks("bound_tick", np.arange(0, y_top + 1, 10)), "点积上界（相对）"),
        )
        curve = chart.polyline(distances, bound, pal.query)
        marks = VGroup()
        readings = VGroup()  # listed in the chart's empty upper right, so no label sits on the wiggly curve
        for d in (0, step, CFG.decay_max_distance):
            marks.add(Dot(chart.c2p(d, bound[d]), color=pal.accent, radius=0.07))
            readings.add(zh(f"Δ = {num(f'decay_distance[{d}]', d)}：{num(f'decay_bound[{d}]', bound[d], '{:.2f}')}",
                            "label", color=pal.accent))
        readings.arrange(DOWN, aligned_edge=LEFT, buff=0.2)
        readings.move_to(chart.box.point(0.98, 0.97), aligned_edge=UP + RIGHT)
        marks.add(readings)

        with self.voice(fill("RoFormer 论文给了点积的一个上界，这里 d 等于 {decay_dim}。", decay_dim=CFG.decay_dim)):
            self.play(FadeIn(chart), run_time=theme.QUICK)
            self.say(fill("RoFormer 的上界，d = {decay_dim}", decay_dim=CFG.decay_dim))
            self.play(Create(curve), run_time=4, rate_func=linear)
        with self.voice("距离越远，上界越低：远处的字影响自然变小，这正是语言想要的。"):
            self.play(FadeIn(marks, lag_ratio=0.3), run_time=theme.BEAT)
            self.say("远处的字，点积被压低", color=pal.query, hold=True)
            self.wait(theme.HOLD)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def extrapolation(self):
        self.next_section("外推")
        pal = self.palette
        scale = CFG.target_context / CFG.train_context
        self.show_title(fill("训练 {train_context_k}K，要用 {target_context_k}K", train_context_k=CFG.train_context // 1024,
                             target_context_k=CFG.target_context // 1024))
        d = CFG.head_dim
        theta = rope_frequencies(d, CFG.base)
        methods = {
            "PI": interpolated_frequencies(d, CFG.base, scale),
            "NTK": rope_frequencies(d, ntk_scaled_base(CFG.base, scale, d)),
            "YaRN": yarn_frequencies(d, CFG.base, scale, CFG.train_context),
        }
        # Bar height: how many times slower pair i turns, log2(θ / θ'), 0 (unchanged) … log2(scale).
        squeeze = self.plotted("slowdown_log2", {name: np.log2(theta / f) for name, f in methods.items()})
        pairs = np.arange(d // 2)
        top = float(np.log2(scale))
        levels = np.arange(0, int(top) + 1)
        chart = Chart(
            self.layout.figure,
            AxisSpec(-1, d // 2, numeric_ticks("pair_tick", np.arange(0, d // 2 + 1, 16)), "第 i 对（快 → 慢）"),
            AxisSpec(0, top, numeric_ticks("slowdown_tick", levels, "÷{:g}", shown=2**levels), "转速变慢几倍"),
        )
        bars = chart.bars(pairs, np.zeros_like(pairs, dtype=float), pal.query)
        with self.voice(fill("最后联系真实的大模型：训练只见过 {train_context_k}K，用的时候要 {target_context_k}K。"
                             "时钟转速要怎么改？", train_context_k=CFG.train_context // 1024,
                             target_context_k=CFG.target_context // 1024)):
            self.play(FadeIn(chart), FadeIn(bars), run_time=theme.QUICK)
            self.say(fill("原始 RoPE：{n_pairs} 对都不变", n_pairs=d // 2))
        slowdown = {name: 2 ** s for name, s in squeeze.items()}
        captions = {
            "PI": fill("PI：全部 ÷{pi_slowdown:g}\n近处的字挤成一团", pi_slowdown=slowdown["PI"][0]),
            "NTK": fill("NTK：改 base\n最快的针 ÷{ntk_fastest:.0f}，最慢的 ÷{ntk_slowest:.0f}",
                        ntk_fastest=slowdown["NTK"][0], ntk_slowest=slowdown["NTK"][-1]),
            "YaRN": "YaRN：快针不动，慢针插值\n中间线性过渡",
        }
        narration = {
            "PI": fill("位置插值 PI：所有时钟一起放慢 {pi_slowdown:g} 倍，近处的字就挤成一团。",
                       pi_slowdown=slowdown["PI"][0]),
            "NTK": fill("NTK 改的是 base：最快的针不动，越慢的针放得越慢，最慢的放慢 {ntk_slowest:.0f} 倍。",
                        ntk_slowest=slowdown["NTK"][-1]),
            "YaRN": "YaRN 分三段：快针不动，慢针插值，中间线性过渡。",
        }
        colors = {"PI": pal.warning, "NTK": pal.key, "YaRN": pal.value}
        for name in methods:
            with self.voice(narration[name]):
                new = chart.bars(pairs, squeeze[name], colors[name])
                self.play(ReplacementTransform(bars, new), run_time=theme.BEAT)
                bars = new
                self.say(captions[name], color=colors[name])
                self.wait(theme.HOLD)
        low, high = yarn_correction_range(d, CFG.base, CFG.train_context)
        bounds = VGroup(*(chart.vline(i, pal.accent) for i in (low, high)))
        bound_labels = VGroup(*(zh(num(f"yarn_ramp_{end}", i), "label", color=pal.accent)
                                .next_to(chart.c2p(i, top), UP, buff=0.08) for end, i in (("low", low), ("high", high))))
        factor = yarn_attention_factor(scale)
        with self.voice(fill("它还把 q 和 k 各乘 {yarn_attention_factor:.2f}，所以注意力 logits 乘的是 "
                             "{yarn_logit_scale:.2f}。", yarn_attention_factor=factor,
                             yarn_logit_scale=yarn_logit_scale(scale))):
            self.play(Create(bounds), FadeIn(bound_labels), run_time=theme.BEAT)
            self.say(fill("YaRN 再把 q、k 各乘 {yarn_attention_factor:.2f}\n注意力 logits 就乘 {yarn_logit_scale:.2f}",
                          yarn_attention_factor=factor, yarn_logit_scale=yarn_logit_scale(scale)), color=pal.value,
                     hold=True)
            self.wait(theme.HOLD)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
