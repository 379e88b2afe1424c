"""FlashAttention: why the n×n score matrix never has to exist, and how separately computed tiles merge exactly.

Render: ``manim -qh scenes/flash_attention.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/flash_attention.py`` (9:16).
Every score, running max m, running sum ℓ and rescale α comes from ``flash_attention(..., return_trace=True)`` in
``shared/math/attention.py``; the comparison from ``scaled_dot_product_attention``. (The Transformer explainer that
leads here is ``scenes/transformer.py``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    Create,
    DashedLine,
    FadeOut,
    Dot,
    FadeIn,
    GrowFromEdge,
    LaggedStart,
    VGroup,
)

from shared import theme
from shared.math.attention import flash_attention, scaled_dot_product_attention
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.heatmap import ColorScale, Heatmap
from shared.scene import ExplainerScene
from shared.text import formula, zh


@dataclass(frozen=True)
class FlashConfig:
    """Everything the explainer computes from."""

    length: int = 12  # n: queries = keys (a toy sequence)
    head_dim: int = 4  # d
    block_size: int = 4  # keys per tile → 3 tiles
    seed: int = 0  # q, k, v ~ N(0, 1)
    target_alpha: float = 0.5  # show the query whose tile-2 rescale α is closest to this: visible, not total
    long_context: int = 32768  # n for the memory of a full score matrix
    bytes_per_score: int = 2  # fp16
    number_format: str = "{:.2f}"


CFG = FlashConfig()
GIB = 2**30


def fmt_tiny(x: float) -> str:
    """A difference that should be ~0: "2e-16", or "0" when it is exactly 0."""
    return "0" if x == 0 else f"{x:.0e}"


def pick_query_row(trace, target_alpha: float) -> int:
    """A query whose running max rises at tile 2 and then stays (α < 1, then α = 1: both cases of the merge on one
    row), with the tile-2 α closest to ``target_alpha``. Falls back to row 0."""
    if len(trace) < 3:
        return 0
    alpha2 = trace[1]["alpha"]
    candidates = np.flatnonzero((alpha2 < 1) & (trace[2]["alpha"] == 1))
    if not candidates.size:
        return 0
    return int(candidates[np.argmin(np.abs(alpha2[candidates] - target_alpha))])


class FlashAttentionTiles(ExplainerScene):
    """FlashAttention's online softmax: tiles of keys, a running max m and sum ℓ, and the α rescale that merges them."""

    def construct(self):
        rng = np.random.default_rng(CFG.seed)
        self.q, self.k, self.v = rng.standard_normal((3, CFG.length, CFG.head_dim))  # each [n, d]
        self.out, self.trace = flash_attention(self.q, self.k, self.v, block_size=CFG.block_size, return_trace=True)
        self.plain_out, self.plain_weights = scaled_dot_product_attention(self.q, self.k, self.v)
        self.row = pick_query_row(self.trace, CFG.target_alpha)
        self.show_number("query_row", self.row)
        self.full_matrix()
        self.tile_by_tile()
        self.merge()

    # --- shared pieces ---------------------------------------------------------------------------------------------

    @property
    def n_blocks(self) -> int:
        return len(self.trace)

    def block_colors(self):
        pal = self.palette
        return [pal.series[b % len(pal.series)] for b in range(self.n_blocks)]

    def row_scores(self) -> np.ndarray:
        """The chosen query's scaled scores, tile after tile: [n]."""
        return np.concatenate([t["scores"][self.row] for t in self.trace])

    def strip_layout(self, values):
        """The query's scores as a strip: 1 × n in landscape, one tile per row in portrait."""
        if self.is_portrait:
            return values.reshape(self.n_blocks, CFG.block_size)
        return values[None, :]

    def block_cells(self, b: int) -> dict:
        """Which cells of the strip hold tile ``b`` (for outlines)."""
        keys = range(b * CFG.block_size, min((b + 1) * CFG.block_size, CFG.length))
        if self.is_portrait:
            return {"rows": [b], "cols": range(len(keys))}
        return {"rows": [0], "cols": keys}

    def build_stage(self):
        """Strip of scores (hidden until revealed), the exp bar chart and the readout area, laid out per aspect."""
        pal = self.palette
        scores = self.row_scores()
        figure = self.layout.figure
        if self.is_portrait:
            strip_area, chart_area, readout_area = figure.rows([0.32, 0.5, 0.18], gap=0.25)
        else:
            strip_area, lower = figure.rows([0.3, 0.7], gap=0.3)
            chart_area, readout_area = lower.cols([0.62, 0.38], gap=0.5)
        row_labels = [f"块 {b + 1}" for b in range(self.n_blocks)] if self.is_portrait else [f"q{self.row + 1}"]
        hidden = np.full_like(self.strip_layout(scores), -np.inf)
        max_cell = (1.4, 0.62) if self.is_portrait else (1.05, 0.62)  # portrait: 4 cells a row, room to spare
        strip = Heatmap(hidden, ColorScale.diverging(scores), region=strip_area, max_cell=max_cell,
                        numbers=CFG.number_format, number_role="small", row_labels=row_labels, label_role="label",
                        masked_color=pal.panel)  # tiles not computed yet: empty cells
        strip_area.place(strip)
        tags = VGroup()
        if not self.is_portrait:  # tile names over the strip
            for b, color in enumerate(self.block_colors()):
                cells = VGroup(*(strip.cell(0, j) for j in self.block_cells(b)["cols"]))
                tags.add(zh(f"块 {b + 1}", "label", color=color).next_to(cells, UP, buff=0.12))
        else:
            for b, color in enumerate(self.block_colors()):
                strip.row_labels[b].set_color(color)

        chart = self.bar_chart(chart_area, 1.0, "exp(s − m)")
        return strip, tags, chart, readout_area

    def bar_chart(self, area, top: float, title: str) -> Chart:
        """Bars per key, tiles named on the x axis, y from 0 to ``top``."""
        ticks = [(b * CFG.block_size + (CFG.block_size - 1) / 2, f"块 {b + 1}") for b in range(self.n_blocks)]
        y_ticks = [(0.0, "0"), (top / 2, f"{top / 2:g}"), (top, f"{top:g}")]
        chart = Chart(area, AxisSpec(-0.6, CFG.length - 0.4, ticks), AxisSpec(0, top, y_ticks, title))
        chart.area = area
        return chart

    def tile_bars(self, chart, b: int, m: float):
        """Bars exp(s − m) for tile ``b`` at running max ``m``."""
        t = self.trace[b]
        xs = np.arange(t["start"], t["stop"])
        return chart.bars(xs, np.exp(t["scores"][self.row] - m), self.block_colors()[b])

    def readout(self, area, lines: list[tuple[str, str]]) -> VGroup:
        """The state after a tile: a heading, then α, m, ℓ (a column in landscape, one line in portrait)."""
        texts = [zh(text, "label", color=color) for text, color in lines]
        if self.is_portrait:
            group = VGroup(texts[0], VGroup(*texts[1:]).arrange(RIGHT, buff=0.5)).arrange(DOWN, buff=0.2)
            return area.place(group)
        group = VGroup(*texts).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        return area.place(group, align="left")

    def state_lines(self, b: int) -> list[tuple[str, str]]:
        pal, t = self.palette, self.trace[b]
        m, l, alpha = (float(t[key][self.row]) for key in ("m", "l", "alpha"))
        lines = [(f"第 {b + 1} 块之后", self.block_colors()[b]), (f"m = {m:.2f}", pal.text), (f"ℓ = {l:.2f}", pal.text)]
        if b > 0:
            lines.insert(1, (f"α = {alpha:.2f}", pal.accent))
        return lines

    def reveal(self, strip, b: int):
        """Animation: tile ``b``'s scores appear in the strip."""
        shown = strip.values.copy()
        target = self.strip_layout(self.row_scores())
        cells = self.block_cells(b)
        for i in cells["rows"]:
            for j in cells["cols"]:
                shown[i, j] = target[i, j]
        return strip.morph(shown, rows=cells["rows"])

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def full_matrix(self):
        self.next_section("存不下的矩阵")
        pal = self.palette
        self.show_title("n × n 的分数矩阵")
        scores = self.q @ self.k.T / np.sqrt(CFG.head_dim)  # what plain attention materialises: [n, n]
        n_long = CFG.long_context
        gib = n_long**2 * CFG.bytes_per_score / GIB
        self.show_number("score_matrix", scores.tolist())
        self.show_number("long_context_gib", gib)

        head_area, map_area = self.layout.figure.rows([0.14, 0.86], gap=0.1)
        matrix = Heatmap(scores, ColorScale.diverging(scores), region=map_area, max_cell=(0.5, 0.5))
        map_area.place(matrix)
        header = head_area.place(formula(f"S = Q K^T \\/ sqrt(d) : [n, n], n = {CFG.length}", "label"))
        cuts = VGroup()
        for b in range(1, self.n_blocks):
            x = (matrix.cell(0, b * CFG.block_size - 1).get_right()[0] + matrix.cell(0, b * CFG.block_size)
                 .get_left()[0]) / 2
            cuts.add(DashedLine([x, matrix.cells.get_top()[1] + 0.1, 0], [x, matrix.cells.get_bottom()[1] - 0.1, 0],
                                color=pal.accent, stroke_width=theme.STROKE))
        row_box = matrix.outline(rows=[self.row], color=pal.accent)

        self.play(FadeIn(header), LaggedStart(*[FadeIn(matrix.row_group(i)) for i in range(CFG.length)],
                                              lag_ratio=0.15), run_time=theme.SLOW)
        self.say("普通注意力：先把整个\nn × n 分数矩阵存下来")
        self.wait(theme.HOLD)
        self.say(f"n = {n_long} 时，一个头\n就要 {gib:g} GiB（fp16）", color=pal.warning, hold=True)
        self.play(Create(cuts), run_time=theme.BEAT)
        self.say("FlashAttention：K、V 分块\n一块一块算，算完就扔", color=pal.accent)
        self.wait(theme.HOLD)
        self.play(Create(row_box), run_time=theme.QUICK)
        self.say(f"盯住一行（第 {self.row + 1} 个 query）：\n分块算的 softmax 怎么拼？", hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def tile_by_tile(self):
        self.next_section("逐块更新")
        pal = self.palette
        self.show_title("逐块更新 m 和 ℓ")
        for b, t in enumerate(self.trace):
            self.show_number(f"tile_{b + 1}_scores", t["scores"][self.row].tolist())
            self.show_number(f"tile_{b + 1}_state", {key: float(t[key][self.row]) for key in ("m", "l", "alpha")})
        strip, tags, chart, readout_area = self.build_stage()

        self.play(FadeIn(strip), FadeIn(tags), FadeIn(chart), run_time=theme.BEAT)
        # Tile 1: its max is the running max; ℓ = Σ exp(s − m).
        m1 = float(self.trace[0]["m"][self.row])
        bars1 = self.tile_bars(chart, 0, m1)
        state = self.readout(readout_area, self.state_lines(0))
        self.play(self.reveal(strip, 0), Create(strip.outline(**self.block_cells(0), color=self.block_colors()[0])),
                  run_time=theme.BEAT)
        self.play(*[GrowFromEdge(bar, DOWN) for bar in bars1], FadeIn(state), run_time=theme.BEAT)
        self.say("第 1 块：记下最大值 m\n和 ℓ = Σ exp(s − m)")
        self.wait(theme.HOLD)
        # Tile 2: a larger max. Everything summed so far was exp(s − m_old): multiply by α = exp(m_old − m_new).
        t2 = self.trace[1]
        m2, alpha2 = float(t2["m"][self.row]), float(t2["alpha"][self.row])
        bars2 = self.tile_bars(chart, 1, m2)
        self.play(self.reveal(strip, 1), Create(strip.outline(**self.block_cells(1), color=self.block_colors()[1])),
                  run_time=theme.BEAT)
        self.say("第 2 块有更大的值 m′：\n旧的 exp 全部乘 α", color=pal.accent)
        new_state = self.readout(readout_area, self.state_lines(1))
        self.play(bars1.animate.stretch(alpha2, 1, about_edge=DOWN), *[GrowFromEdge(bar, DOWN) for bar in bars2],
                  FadeOut(state), FadeIn(new_state), run_time=theme.SLOW)
        self.say(formula("alpha = e^(m - m'), quad ell' = alpha ell + sum e^(s - m')", "label"))
        self.wait(theme.HOLD * 2)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def merge(self):
        self.next_section("分块也能合并")
        pal = self.palette
        self.show_title("分块也能合并")
        last = self.trace[-1]
        m_final, l_final = float(last["m"][self.row]), float(last["l"][self.row])
        flash_weights = np.exp(self.row_scores() - m_final) / l_final
        weight_gap = float(np.abs(flash_weights - self.plain_weights[self.row]).max())
        output_gap = float(np.abs(self.out - self.plain_out).max())
        self.show_number("flash_weights", flash_weights.tolist())
        self.show_number("plain_weights", self.plain_weights[self.row].tolist())
        self.show_number("weight_max_difference", weight_gap)
        self.show_number("output_max_difference", output_gap)

        strip, tags, chart, readout_area = self.build_stage()
        done = self.n_blocks - 1  # tiles already merged when this section opens
        shown = self.strip_layout(self.row_scores()).copy()
        for b in range(done, self.n_blocks):
            cells = self.block_cells(b)
            for i in cells["rows"]:
                for j in cells["cols"]:
                    shown[i, j] = -np.inf
        strip.set_values(shown)
        m_prev = float(self.trace[done - 1]["m"][self.row])
        old_bars = VGroup(*(self.tile_bars(chart, b, m_prev) for b in range(done)))
        state = self.readout(readout_area, self.state_lines(done - 1))
        self.play(FadeIn(strip), FadeIn(tags), FadeIn(chart), FadeIn(old_bars), FadeIn(state), run_time=theme.BEAT)

        # The last tile: its max is not larger, so α = 1 and the old sums stay.
        alpha = float(last["alpha"][self.row])
        new_bars = self.tile_bars(chart, done, m_final)
        new_state = self.readout(readout_area, self.state_lines(done))
        self.play(self.reveal(strip, done), run_time=theme.BEAT)
        self.play(old_bars.animate.stretch(alpha, 1, about_edge=DOWN), *[GrowFromEdge(bar, DOWN) for bar in new_bars],
                  FadeOut(state), FadeIn(new_state), run_time=theme.BEAT)
        self.say(f"第 {done + 1} 块没超过 m：α = {alpha:.2f}")
        # Divide by ℓ: the bars become the softmax weights (the y axis zooms in to show them); dots mark the plain,
        # one-shot softmax.
        bars = VGroup(old_bars, new_bars)
        zoom_top = float(np.ceil(flash_weights.max() * 10) / 10)
        weight_chart = self.bar_chart(chart.area, zoom_top, "权重 = exp(s − m) / ℓ")
        plain_dots = VGroup(*(Dot(weight_chart.c2p(j, w), radius=0.06, color=pal.text)
                              for j, w in enumerate(self.plain_weights[self.row])))
        self.play(bars.animate.stretch(1 / (l_final * zoom_top), 1, about_edge=DOWN), FadeOut(chart),
                  FadeIn(weight_chart), run_time=theme.SLOW)
        self.play(FadeIn(plain_dots, lag_ratio=0.1), run_time=theme.BEAT)
        self.say(f"最后除以 ℓ：圆点是一次算完的\nsoftmax，最大差 {fmt_tiny(weight_gap)}", color=pal.value)
        self.wait(theme.HOLD)
        self.say(f"输出 O 也边乘 α 边累加\n整体最大差 {fmt_tiny(output_gap)}", color=pal.value)
        self.wait(theme.HOLD)
        self.say("计算量还是 O(n²)\n但 n × n 矩阵从没存下", color=pal.accent, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
