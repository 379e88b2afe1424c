"""FlashAttention: why the n×n score matrix never has to exist, and how separately computed tiles merge exactly.

Render: ``manim -qh scenes/flash_attention.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/flash_attention.py`` (9:16).
Every score, running max m, running sum ℓ and rescale α comes from ``flash_attention(..., return_trace=True)`` in
``shared/math/attention.py``; the comparison from ``scaled_dot_product_attention``. (The Transformer explainer that
leads here is ``scenes/transformer.py``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, Create, DashedLine, Dot, FadeIn, FadeOut, GrowFromEdge, LaggedStart, VGroup

from shared import theme
from shared.layout import Region
from shared.math.attention import flash_attention, scaled_dot_product_attention
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.heatmap import ColorScale, Heatmap
from shared.numbers import fill, num, term
from shared.scene import ExplainerScene, crossfade
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
    score_dtype: str = "float16"  # what one stored score costs (numpy dtype name)
    number_format: str = "{:.2f}"


CFG = FlashConfig()
GIB = 2**30


def tiny_format(x: float) -> str:
    """The format for a difference that should be ~0: "2e−16", or "0" when it is exactly 0."""
    return "{:g}" if x == 0 else "{:.0e}"


def pick_query_row(trace) -> int:
    """A query whose running max rises at tile 2 and not at the last tile (α < 1, then α = 1: both cases of the merge
    on one row, as the captions say), with the tile-2 α closest to ``CFG.target_alpha``.

    Raises
    ------
    ValueError
        When there are fewer than 3 tiles or no query has both properties: the captions would be false. The message
        names the ``FlashConfig`` fields to change.
    """
    if len(trace) < 3:
        raise ValueError(f"FlashConfig gives {len(trace)} tiles (length {CFG.length}, block_size {CFG.block_size}); "
                         f"the explainer needs at least 3: raise length or lower block_size.")
    alpha2, alpha_last = trace[1]["alpha"], trace[-1]["alpha"]
    candidates = np.flatnonzero((alpha2 < 1) & (alpha_last == 1))
    if not candidates.size:
        raise ValueError(f"No query of FlashConfig(seed={CFG.seed}, length={CFG.length}, head_dim={CFG.head_dim}, "
                         f"block_size={CFG.block_size}) has its running max rise at tile 2 and stay at the last tile; "
                         f"try another seed.")
    return int(candidates[np.argmin(np.abs(alpha2[candidates] - CFG.target_alpha))])


class FlashAttentionTiles(ExplainerScene):
    """FlashAttention's online softmax: tiles of keys, a running max m and sum ℓ, and the α rescale that merges them."""

    def construct(self):
        rng = np.random.default_rng(CFG.seed)
        self.q, self.k, self.v = rng.standard_normal((3, CFG.length, CFG.head_dim))  # each [n, d]
        self.out, self.trace = flash_attention(self.q, self.k, self.v, block_size=CFG.block_size, return_trace=True)
        self.plain_out, self.plain_weights = scaled_dot_product_attention(self.q, self.k, self.v)
        self.row = pick_query_row(self.trace)
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

    def query_label(self) -> str:
        return f"q{num('query_number', self.row + 1)}"

    def tile_label(self, b: int) -> str:
        return f"块 {num('tile', b + 1)}"

    def row_scores(self) -> np.ndarray:
        """The query row's scores against every key, tile after tile."""
        return np.concatenate([t["scores"][self.row] for t in self.trace])

    def build_stage(self):
        """The query's scores, one heatmap per tile (hidden until revealed), in a row or stacked; below them the exp
        bar chart and, right of it, the readout area."""
        pal = self.palette
        figure = self.layout.figure
        scores = self.row_scores()
        scale = ColorScale.diverging(scores)
        # Cell numbers in the smallest role that still reads at 14 CSS px in this aspect: they are what the section
        # is about (small in 16:9 and 9:16, body-sized in an article GIF or a square post).
        number_role = self.layout.role_at_least(theme.MIN_TEXT_CSS["body"])
        strip_area = figure.rows([0.3, 0.7])[0]
        if self.layout.stacked:
            slots = strip_area.rows(self.n_blocks, gap=0.08)
        else:  # the upper part holds the tile names
            slots = strip_area.rows([0.35, 0.65], gap=0.05)[1].cols(self.n_blocks, gap=0.15)
        tiles = VGroup()
        for b, (t, slot) in enumerate(zip(self.trace, slots)):
            labels = [self.tile_label(b)] if self.layout.stacked else ([self.query_label()] if b == 0 else [])
            hidden = np.full((1, t["stop"] - t["start"]), -np.inf)  # not computed yet: empty cells
            tile = Heatmap(hidden, scale, region=slot, max_cell=(1.6, 0.8), numbers=CFG.number_format,
                           name=f"tile_{b + 1}_scores", number_role=number_role, row_labels=labels,
                           label_role="label", masked_color=pal.panel,
                           label_colors=[self.block_colors()[b]] if self.layout.stacked else None)
            tile.target = t["scores"][self.row][None, :]
            tiles.add(tile)
        tags = VGroup()
        if self.layout.stacked:
            tiles.arrange(DOWN, buff=0.12, aligned_edge=RIGHT)
            header = zh(f"{self.query_label()} 的分数 s", "label", color=pal.muted)
            strip = VGroup(header, tiles).arrange(DOWN, buff=0.2, aligned_edge=LEFT)
            figure.place(strip, align="top")
        else:
            tiles.arrange(RIGHT, buff=0.15, aligned_edge=DOWN)
            strip_area.place(tiles, align="bottom")
            for b, tile in enumerate(tiles):  # tile names over the tiles
                tags.add(zh(self.tile_label(b), "label", color=self.block_colors()[b]).next_to(tile.cells, UP,
                                                                                              buff=0.12))
            strip = VGroup(tiles, tags)
        lower = Region(figure.left, figure.right, figure.bottom, strip.get_bottom()[1] - 0.3)
        chart_area, readout_area = lower.cols([0.6, 0.4], gap=0.5)
        chart = self.bar_chart(chart_area, 1.0, "exp(s − m)", "exp_tick")
        return strip, tiles, chart, readout_area

    def bar_chart(self, area, top: float, title: str, tick_name: str) -> Chart:
        """Bars per key, tiles named on the x axis, y from 0 to ``top``."""
        ticks = [(b * CFG.block_size + (CFG.block_size - 1) / 2, self.tile_label(b)) for b in range(self.n_blocks)]
        y_ticks = numeric_ticks(tick_name, [0.0, top / 2, top])
        chart = Chart(area, AxisSpec(-0.6, CFG.length - 0.4, ticks), AxisSpec(0, top, y_ticks, title))
        chart.area = area
        return chart

    def tile_bars(self, chart, b: int, m: float):
        """Bars exp(s − m) for tile ``b`` at running max ``m``."""
        t = self.trace[b]
        xs = np.arange(t["start"], t["stop"])
        return chart.bars(xs, np.exp(t["scores"][self.row] - m), self.block_colors()[b])

    def readout(self, area, b: int) -> VGroup:
        """The state after tile ``b``: a heading, then α (from tile 2 on), m, ℓ, in a column of body-sized text."""
        pal, t = self.palette, self.trace[b]
        values = {key: float(t[key][self.row]) for key in ("alpha", "m", "l")}
        prefix = f"tile_{b + 1}_"
        heading = zh(fill("第 {tile} 块之后", tile=num("tile", b + 1)), "body", color=self.block_colors()[b],
                     prose=False)
        lines = [zh(fill("m = {m:.2f}", prefix=prefix, m=values["m"]), "body", prose=False),
                 zh(fill("ℓ = {l:.2f}", prefix=prefix, l=values["l"]), "body", prose=False)]
        if b > 0:
            lines.insert(0, zh(fill("α = {alpha:.2f}", prefix=prefix, alpha=values["alpha"]), "body",
                               color=pal.accent, prose=False))
        group = VGroup(heading, *lines).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        return area.place(group, align="left")

    def reveal(self, tiles, b: int):
        """Animation: tile ``b``'s scores appear."""
        return tiles[b].morph(tiles[b].target)

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def full_matrix(self):
        self.next_section("存不下的矩阵")
        pal = self.palette
        self.show_title("n × n 的分数矩阵")
        scores = self.plotted("score_matrix", self.q @ self.k.T / np.sqrt(CFG.head_dim))  # what plain attention stores
        score_bytes = np.dtype(CFG.score_dtype).itemsize

        head_area, map_area = self.layout.figure.rows([0.14, 0.86], gap=0.1)
        matrix = Heatmap(scores, ColorScale.diverging(scores), region=map_area, max_cell=(0.5, 0.5))
        map_area.place(matrix)
        header = head_area.place(formula(f"S = Q K^T \\/ sqrt(d) : [n, n], n = {num('length', CFG.length)}"))
        cuts = VGroup()
        for b in range(1, self.n_blocks):
            x = (matrix.cell(0, b * CFG.block_size - 1).get_right()[0] + matrix.cell(0, b * CFG.block_size)
                 .get_left()[0]) / 2
            cuts.add(DashedLine([x, matrix.cells.get_top()[1] + 0.1, 0], [x, matrix.cells.get_bottom()[1] - 0.1, 0],
                                color=pal.accent, stroke_width=theme.STROKE))
        row_box = matrix.outline(rows=[self.row], color=pal.accent)

        with self.voice("先给答案：FlashAttention 从不存下整个分数矩阵。普通注意力却要先存下 n 乘 n 个分数。"):
            self.play(FadeIn(header), LaggedStart(*[FadeIn(matrix.row_group(i)) for i in range(CFG.length)],
                                                  lag_ratio=0.15), run_time=theme.SLOW)
            self.say("普通注意力：先把整个\nn × n 分数矩阵存下来")
            self.wait(theme.HOLD)
        memory = dict(long_context=CFG.long_context, long_context_gib=CFG.long_context**2 * score_bytes / GIB,
                      dtype=term(CFG.score_dtype))
        with self.voice(fill("n 到 {long_context}，一个头就要 {long_context_gib:g} GiB。", **memory)):
            self.say(fill("n = {long_context} 时，一个头\n就要 {long_context_gib:g} GiB（{dtype}）", **memory),
                     color=pal.warning, hold=True)
        with self.voice("FlashAttention 把 K、V 切成块，算完就扔。"):
            self.play(Create(cuts), run_time=theme.BEAT)
            self.say("FlashAttention：K、V 分块\n一块一块算，算完就扔", color=pal.accent)
            self.wait(theme.HOLD)
        query = dict(query_number=self.row + 1)
        with self.voice(fill("盯住第 {query_number} 个 query：分块算的 softmax 怎么拼？", **query)):
            self.play(Create(row_box), run_time=theme.QUICK)
            self.say(fill("盯住一行（第 {query_number} 个 query）：\n分块算的 softmax 怎么拼？", **query), hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def tile_by_tile(self):
        self.next_section("逐块更新")
        pal = self.palette
        self.show_title("逐块更新 m 和 ℓ")
        strip, tiles, chart, readout_area = self.build_stage()

        # Tile 1: its max is the running max; ℓ = Σ exp(s − m).
        bars1 = self.tile_bars(chart, 0, float(self.trace[0]["m"][self.row]))
        state = self.readout(readout_area, 0)
        with self.voice("答案：边算边记两样，最大值 m 和一个和。"):
            self.play(FadeIn(strip), FadeIn(chart), run_time=theme.BEAT)
            self.play(self.reveal(tiles, 0), Create(tiles[0].outline(color=self.block_colors()[0])),
                      run_time=theme.BEAT)
        with self.voice(fill("第 {tile} 块：m 是最大值，和是 e 的 s 减 m 次方之和。", tile=num("tile", 1))):
            self.play(*[GrowFromEdge(bar, DOWN) for bar in bars1], FadeIn(state), run_time=theme.BEAT)
            self.say(fill("第 {tile} 块：记下最大值 m\n和 ℓ = Σ exp(s − m)", tile=num("tile", 1)))
            self.wait(theme.HOLD)
        # Tile 2: a larger max. Everything summed so far was exp(s − m_old): multiply by α = exp(m_old − m_new).
        t2 = self.trace[1]
        m2, alpha2 = float(t2["m"][self.row]), float(t2["alpha"][self.row])
        bars2 = self.tile_bars(chart, 1, m2)
        with self.voice(fill("第 {tile} 块有更大的分数。", tile=num("tile", 2))):
            self.play(self.reveal(tiles, 1), Create(tiles[1].outline(color=self.block_colors()[1])),
                      run_time=theme.BEAT)
            self.say(fill("第 {tile} 块有更大的值 m′：\n旧的 exp 全部乘 α", tile=num("tile", 2)), color=pal.accent)
        new_state = self.readout(readout_area, 1)
        rescale, new_sum = "alpha = e^(m - m')", "ell' = alpha ell + sum e^(s - m')"
        with self.voice(fill("旧的和要乘上 α，e 的 m 减 m′ 次方，这里是 {alpha:.2f}；再加上新块的和。", prefix="tile_2_",
                             alpha=alpha2)):
            self.play(bars1.animate.stretch(alpha2, 1, about_edge=DOWN), *[GrowFromEdge(bar, DOWN) for bar in bars2],
                      crossfade(state, new_state, match=False), run_time=theme.SLOW)
            if self.is_portrait:  # one line is wider than the phone's caption band
                self.say(VGroup(formula(rescale), formula(new_sum)).arrange(DOWN, buff=0.25))
            else:
                self.say(formula(f"{rescale}, quad {new_sum}"))
            self.wait(theme.HOLD * 2)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def merge(self):
        self.next_section("分块也能合并")
        pal = self.palette
        self.show_title("分块也能合并")
        last = self.trace[-1]
        m_final, l_final = float(last["m"][self.row]), float(last["l"][self.row])
        scores = self.row_scores()
        flash_weights = self.plotted("flash_weights", np.exp(scores - m_final) / l_final)
        plain_weights = self.plotted("plain_weights", self.plain_weights[self.row])
        weight_gap = float(np.abs(flash_weights - plain_weights).max())
        output_gap = float(np.abs(self.out - self.plain_out).max())

        strip, tiles, chart, readout_area = self.build_stage()
        done = self.n_blocks - 1  # tiles already merged when this section opens
        for b in range(done):
            tiles[b].set_values(tiles[b].target)
        m_prev = float(self.trace[done - 1]["m"][self.row])
        old_bars = VGroup(*(self.tile_bars(chart, b, m_prev) for b in range(done)))
        state = self.readout(readout_area, done - 1)
        # The last tile: its max is not larger, so α = 1 and the old sums stay.
        alpha = float(last["alpha"][self.row])
        new_bars = self.tile_bars(chart, done, m_final)
        new_state = self.readout(readout_area, done)
        last_said = dict(tile=num("tile", done + 1), last_alpha=alpha)
        with self.voice(fill("第 {tile} 块没超过 m，α 等于 {last_alpha:.2f}，旧的和不动。", **last_said)):
            self.play(FadeIn(strip), FadeIn(chart), FadeIn(old_bars), FadeIn(state), run_time=theme.BEAT)
            self.play(self.reveal(tiles, done), run_time=theme.BEAT)
            self.play(old_bars.animate.stretch(alpha, 1, about_edge=DOWN),
                      *[GrowFromEdge(bar, DOWN) for bar in new_bars], crossfade(state, new_state, match=False),
                      run_time=theme.BEAT)
            self.say(fill("第 {tile} 块没超过 m：α = {last_alpha:.2f}", **last_said))
        # Divide by ℓ: the bars become the softmax weights (the y axis zooms in to show them); dots mark the plain,
        # one-shot softmax.
        bars = VGroup(old_bars, new_bars)
        zoom_top = float(np.ceil(flash_weights.max() * 10) / 10)
        weight_chart = self.bar_chart(chart.area, zoom_top, "权重 = exp(s − m) / ℓ", "weight_tick")
        plain_dots = VGroup(*(Dot(weight_chart.c2p(j, w), radius=0.06, color=pal.text)
                              for j, w in enumerate(plain_weights)))
        weight_diff = num("weight_max_difference", weight_gap, tiny_format(weight_gap))
        with self.voice(f"最后除以这个和，就是 softmax。圆点是一次算完的结果，最大差 {weight_diff}。"):
            self.play(bars.animate.stretch(1 / (l_final * zoom_top), 1, about_edge=DOWN), FadeOut(chart),
                      FadeIn(weight_chart), run_time=theme.SLOW)
            self.play(FadeIn(plain_dots, lag_ratio=0.1), run_time=theme.BEAT)
            self.say(f"最后除以 ℓ：圆点是一次算完的\nsoftmax，最大差 {weight_diff}", color=pal.value)
            self.wait(theme.HOLD)
        output_diff = num("output_max_difference", output_gap, tiny_format(output_gap))
        with self.voice(f"输出 O 也边乘 α 边累加，最大差 {output_diff}。"):
            self.say(f"输出 O 也边乘 α 边累加\n整体最大差 {output_diff}", color=pal.value)
            self.wait(theme.HOLD)
        with self.voice("计算量还是 n 的平方，但 n 乘 n 的矩阵从没存下：长上下文省的就是这块显存。"):
            self.say(f"计算量还是 {term('O(n²)')}\n但 n × n 矩阵从没存下", color=pal.accent, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
