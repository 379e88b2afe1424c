"""Vectors on a sphere: what LayerNorm and RMSNorm do geometrically, the trained translator's states sliding over the
sphere, and why random directions in high dimension are nearly orthogonal (hence attention's 1/√d).

Render: ``manim -qh scenes/sphere.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/sphere.py`` (9:16).
3D is drawn as projected 2D (``shared/mobjects/projected.py``): no Surfaces, so it renders fast on a CPU.
Every point, radius and histogram comes from ``shared/math`` (norms, sphere, attention) or the committed translator
run (``shared.runs.load_translator``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, FadeIn, FadeOut, ReplacementTransform, Square, ValueTracker, VGroup, linear, smooth

from shared import theme
from shared.math.attention import softmax
from shared.math.norms import layer_norm, rms_norm
from shared.math.sphere import (
    circle_in_plane,
    cosine_similarity_density,
    pca,
    query_key_scores,
    random_cosine_similarities,
    slerp,
    sphere_wireframe,
)
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.projected import ProjectedView
from shared.numbers import fill, num, num_vector, term
from shared.runs import load_translator, short_device_name
from shared.scene import ExplainerScene, crossfade
from shared.text import LiveNumber, rich, zh


@dataclass(frozen=True)
class SphereConfig:
    """Everything the explainer computes from."""

    cloud_size: int = 36  # random 3D inputs
    cloud_seed: int = 4
    cloud_offset: tuple[float, float, float] = (0.8, 0.3, -0.5)  # so the cloud starts off the plane ⟂ (1, 1, 1)
    cloud_spread: float = 0.65
    layer_norm_eps: float = 1e-5
    axis_length: float = 2.0
    cosine_dims: tuple[int, ...] = (3, 64, 768, 12288)  # 12288 is GPT-3's d_model (Brown et al. 2020, Table 2.1)
    cosine_pairs: int = 4000
    cosine_bins: int = 40
    score_dim: int = 64
    score_queries: int = 400
    score_keys: int = 8  # keys per query: one softmax row
    seed: int = 0


CFG = SphereConfig()
ONES = np.ones(3)


class VectorsOnSphere(ExplainerScene):
    """LayerNorm/RMSNorm as geometry, then what high dimension does to dot products."""

    def construct(self):
        self.subtract_mean()
        self.divide_by_std()
        self.slide_on_sphere()
        self.nearly_orthogonal()
        self.why_scale_by_sqrt_d()

    # --- shared 3D stage ---------------------------------------------------------------------------------------------

    def stage(self, region) -> ProjectedView:
        """A projected 3D view filling ``region``, with x₁ x₂ x₃ axes, sized so the cloud and axes fit whatever the
        camera angle (the farthest point sits at ``extent`` from the origin)."""
        extent = 1.1 * max(CFG.axis_length * 1.12, float(np.linalg.norm(self.cloud(), axis=1).max()))
        view = ProjectedView(region.center, scale=0.6 * min(region.width, region.height) / extent, extent=extent)
        pal = self.palette
        for i in range(3):
            axis = np.eye(3)[i] * CFG.axis_length
            view.arrow(lambda: np.zeros(3), lambda a=axis: a, pal.muted, stroke_width=theme.STROKE_THIN)
            view.label(zh(fill("x{axis_index}", axis_index=i + 1), "label", color=pal.muted, prose=False),
                       lambda a=axis: a * 1.12)
        return view

    def cloud(self) -> np.ndarray:
        rng = np.random.default_rng(CFG.cloud_seed)
        return np.asarray(CFG.cloud_offset) + CFG.cloud_spread * rng.normal(size=(CFG.cloud_size, 3))

    def readout_and_stage(self):
        """The figure split into a strip for a live readout (top) and the 3D stage below it."""
        return self.layout.figure.rows([0.1, 0.9], gap=0.1)

    def readout(self, text: str, value, color, name: str) -> VGroup:
        """A live "text 1.7320" readout at the left of the readout strip, recorded as ``name``."""
        readout = VGroup(zh(text, "label", color=color, prose=False),
                         LiveNumber(value, "{:.4f}", "label", color=color, name=name)).arrange(RIGHT, buff=0.2)
        return self.readout_and_stage()[0].place(readout, align="left")

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def subtract_mean(self):
        self.next_section("减去均值")
        pal = self.palette
        self.show_title("第一步：减均值")
        x = self.cloud()
        centred = x - x.mean(axis=1, keepdims=True)  # each vector minus the mean of its own 3 entries
        t = ValueTracker(0)
        view = self.stage(self.readout_and_stage()[1])
        # everything added to the view is drawn by it: the plane, its normal, the moving points and their traces
        moving = lambda: (1 - t.get_value()) * x + t.get_value() * centred
        view.disk(lambda: circle_in_plane(ONES, 2.4, 64), pal.key, opacity=0.12)
        view.curve(lambda: circle_in_plane(ONES, 2.4, 64), pal.key, closed=True)
        view.segments(lambda: x, moving, pal.query, opacity=0.35)
        view.arrow(lambda: np.zeros(3), lambda: ONES / np.sqrt(3) * 1.8, pal.key)
        ones = lambda: num_vector("ones_direction", ONES, "{:g}")  # noqa: E731
        view.label(zh(ones(), "label", color=pal.key, prose=False), lambda: ONES / np.sqrt(3) * 1.8,
                   offset=(0.0, 0.35))
        view.dots(moving, pal.query, radius=0.07)
        total = self.readout("分量之和最大", lambda: float(np.abs(moving().sum(axis=1)).max()), pal.query,
                             "max_abs_component_sum")

        with self.voice(fill("先给答案：LayerNorm 把每个向量搬到一个球面上。先看 {dim} 维的随机向量。", dim=3)):
            self.play(FadeIn(view), FadeIn(total), run_time=theme.BEAT)
            self.say(fill("随机的 {dim} 维输入向量", dim=3))
            self.play(view.yaw.animate.increment_value(0.5), run_time=2, rate_func=linear)
        with self.voice("第一步，每个向量减去自己分量的均值，它就沿着全一方向移动。"):
            self.say(f"减去自己的均值：\n沿 {ones()} 方向移动")
            self.play(t.animate.set_value(1), view.yaw.animate.increment_value(0.6), run_time=3, rate_func=smooth)
        with self.voice("减完以后，分量之和都是零：所有点落进同一个平面。"):
            self.say(f"全都落进与 {ones()}\n垂直的平面", color=pal.key)
            self.play(view.pitch.animate.set_value(0.05), view.yaw.animate.increment_value(0.3), run_time=2)
            self.wait(theme.HOLD)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def divide_by_std(self):
        self.next_section("除以标准差")
        pal = self.palette
        self.show_title("第二步：除以标准差")
        x = self.cloud()
        centred = x - x.mean(axis=1, keepdims=True)
        ln = layer_norm(x, eps=CFG.layer_norm_eps)
        rms = rms_norm(x)
        radius = np.sqrt(3)
        t, s = ValueTracker(0), ValueTracker(0)
        view = self.stage(self.readout_and_stage()[1])
        view.yaw.set_value(1.7)
        view.pitch.set_value(0.3)
        circle = view.curve(lambda: circle_in_plane(ONES, radius, 96), pal.value, stroke_width=theme.STROKE, closed=True)
        ln_dots = view.dots(lambda: (1 - t.get_value()) * centred + t.get_value() * ln, pal.value)
        mean_length = lambda v: float(np.linalg.norm(v, axis=1).mean())
        readout = self.readout("平均长度", lambda: mean_length((1 - t.get_value()) * centred + t.get_value() * ln),
                               pal.value, "layer_norm_mean_length")
        sqrt3 = f"$sqrt({num('dim', 3)}) approx {num('sphere_radius', radius, '{:.3f}')}$"

        with self.voice("第二步，再除以标准差。"):
            self.play(FadeIn(view), FadeIn(readout), run_time=theme.BEAT)
            self.say("LayerNorm：再除以标准差")
        with self.voice(fill("每个点的长度都变成根号 {dim}：平面上的点，全落在同一个圆上。", dim=3)):
            self.play(t.animate.set_value(1), view.yaw.animate.increment_value(0.5), run_time=3)
            self.say(rich(f"落在半径 {sqrt3} 的圆上", color=pal.value))
            self.wait(theme.HOLD)
        # RMSNorm: no mean step, from the raw inputs straight onto the sphere of radius √3.
        wire = VGroup(*(view.curve(lambda c=c: c, pal.grid, closed=True) for c in sphere_wireframe(radius, 6, 3, 72)))
        rms_dots = view.dots(lambda: (1 - s.get_value()) * x + s.get_value() * rms, pal.extra)
        readout_rms = self.readout("平均长度", lambda: mean_length((1 - s.get_value()) * x + s.get_value() * rms),
                                   pal.extra, "rms_norm_mean_length")
        with self.voice("Llama 用的 RMSNorm 省掉了减均值这一步。"):
            self.play(FadeOut(ln_dots), FadeOut(circle), FadeOut(readout), FadeIn(wire), FadeIn(rms_dots),
                      FadeIn(readout_rms), run_time=theme.BEAT)
            self.say("RMSNorm 不减均值", color=pal.extra)
        with self.voice("于是点不再挤在一个平面里，而是铺满整个球面。"):
            self.play(s.animate.set_value(1), view.yaw.animate.increment_value(0.6), run_time=3)
            self.say(rich(f"落在整个半径 $sqrt({num('dim', 3)})$ 的球面上", color=pal.extra), hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def slide_on_sphere(self):
        self.next_section("球面上滑行")
        pal = self.palette
        self.show_title("在球面上滑行")
        run = load_translator()
        source = min(run.test_split, key=lambda pair: len(pair.source)).source  # the first of the shortest
        acts = run.model.activations(source)  # only the encoder's states are drawn
        # Each source token's path through the trained encoder: its input (embedding + position), then the
        # standardised vector of every LayerNorm (before γ, β: exactly on a sphere of radius ≈ √d).
        labels, normalised = acts.normalized_states("encoder", standardized=True)  # [n_norms, S, d]
        states = np.concatenate([acts.encoder_input[None], normalised])  # [1 + n_norms, S, d]
        reduced = pca(states.reshape(-1, states.shape[-1]), 3)
        coords = reduced.coords.reshape(states.shape[0], states.shape[1], 3)
        directions = coords / np.linalg.norm(coords, axis=-1, keepdims=True)  # PCA keeps most, not all: directions
        explained = float(reduced.explained_variance_ratio.sum())
        d_model = states.shape[-1]
        mean_norm = float(np.linalg.norm(normalised, axis=-1).mean())
        self.plotted("sphere_paths", directions)

        # each token's path: great-circle arcs between its consecutive states
        samples = np.linspace(0, 1, 16)
        paths = [np.concatenate([slerp(a, b, samples) for a, b in zip(directions[:-1, i], directions[1:, i])])
                 for i in range(states.shape[1])]
        progress = ValueTracker(0.0)
        here = lambda path: path[: max(2, int(progress.get_value() * (len(path) - 1)) + 1)]  # noqa: E731
        provenance = run.log["provenance"]
        note = self.fine_print(fill(
            "训练好的小翻译模型，测试句\nencoder 的 {n_norms} 次 LayerNorm\n（标准化，γ β 之前）\n"
            "PCA 到 {pca_dims} 维（{explained:.0%} 方差）\n{device}，训练 {wall:.0f} 秒",
            n_norms=len(labels), pca_dims=3, explained=explained,
            device=term(short_device_name(provenance["device"])), wall=provenance["wall_seconds"]))
        # The tokens' colours, in sentence order: a legend instead of labels on the sphere (they would collide).
        legend = VGroup(*(zh(word, "label", color=color, prose=False) for word, color in zip(source, pal.series)))
        legend.arrange(RIGHT, buff=0.35)
        stacked = self.layout.stacked  # portrait and square frames: legend and notes under the sphere
        if stacked and len(note):  # the legend as a small grid beside the notes, both under the sphere
            legend.arrange_in_grid(cols=3, buff=(0.4, 0.2), col_alignments="lll")
            below = VGroup(legend, note).arrange(RIGHT, buff=0.6, aligned_edge=UP)
        else:
            below = legend
        side_share = min(0.4, (below.height + 0.3) / self.layout.figure.height) if stacked else 0.4
        sphere_area, side = (self.layout.figure.rows([1 - side_share, side_share], gap=0.15) if stacked
                             else self.layout.figure.cols([0.6, 0.4], gap=0.3))
        if stacked:
            side.fit(below)
        else:
            legend.arrange_in_grid(cols=3, buff=(0.4, 0.2), col_alignments="lll")
            side.place(VGroup(legend, note).arrange(DOWN, buff=0.5, aligned_edge=LEFT) if len(note) else legend,
                       align="left")
        view = ProjectedView(sphere_area.center, scale=0.46 * min(sphere_area.width, sphere_area.height), extent=1.0)
        view.yaw.set_value(0.4)
        wire = VGroup(*(view.curve(lambda c=c: c, pal.grid, closed=True) for c in sphere_wireframe(1.0, 6, 3, 72)))
        tokens = VGroup()
        for path, color in zip(paths, pal.series):
            trail = view.curve(lambda p=path: here(p), color, stroke_width=theme.STROKE, depth_split=False)
            head = view.dots(lambda p=path: here(p)[-1:], color, radius=0.09)
            tokens.add(VGroup(trail, head))

        with self.voice(fill("联系真实模型：这是训练好的小翻译模型，读一句它没见过的中文。{n_tokens} 个词，每过一次 "
                             "LayerNorm，就在球面上挪一步。", n_tokens=len(paths))):
            self.play(FadeIn(wire), FadeIn(note), FadeIn(legend), FadeIn(tokens), run_time=theme.BEAT)
            self.say(fill("{n_tokens} 个词穿过 encoder\n的 {n_norms} 次 LayerNorm", n_tokens=len(paths),
                          n_norms=len(labels)))
            self.play(progress.animate.set_value(1), view.yaw.animate.increment_value(1.2), run_time=7,
                      rate_func=linear)
        with self.voice(fill("标准化以后长度都是根号 {d_model}，模型能改的只有方向。", d_model=d_model)):
            self.say(rich(f"长度都是 $sqrt({num('d_model', d_model)}) approx "
                          f"{num('standardized_norm_mean', mean_norm, '{:.3f}')}$\n变的只是方向", color=pal.accent),
                     hold=True)
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def nearly_orthogonal(self):
        self.next_section("高维里几乎都垂直")
        pal = self.palette
        self.show_title("维度越高越垂直")
        rows, cols = (2, 2) if self.is_portrait else (1, len(CFG.cosine_dims))
        note = self.fine_print(fill("d = {gpt3_dim} 是 GPT-{gpt3} 的隐藏维度", gpt3_dim=CFG.cosine_dims[-1],
                                    gpt3=term("3")))
        charts_area = self.layout.figure
        if len(note):
            charts_area, note_area = charts_area.rows([0.88, 0.12], gap=0.1)
            note_area.place(note, align="right")
        cells = [c for r in charts_area.rows(rows, gap=0.3) for c in r.cols(cols, gap=0.3)]
        bins = np.linspace(-1, 1, CFG.cosine_bins + 1)
        centers = (bins[:-1] + bins[1:]) / 2
        panels, stds = VGroup(), {}
        for cell, dim in zip(cells, CFG.cosine_dims):
            cos = random_cosine_similarities(dim, CFG.cosine_pairs, seed=CFG.seed)
            density, _ = np.histogram(cos, bins=bins, density=True)
            stds[dim] = float(cos.std())
            self.plotted(f"cosine_density[{dim}]", density)
            top = float(np.ceil(max(density.max(), cosine_similarity_density(0.0, dim)) * 1.1))
            chart = Chart(cell, AxisSpec(-1, 1, numeric_ticks("cosine_tick", [-1, 0, 1])), AxisSpec(0, top, []))
            bars = chart.bars(centers, density, pal.query)
            exact = chart.polyline(np.linspace(-0.999, 0.999, 200),
                                   cosine_similarity_density(np.linspace(-0.999, 0.999, 200), dim), pal.accent,
                                   stroke_width=theme.STROKE_THIN)
            title = zh(f"d = {num(f'cosine_dim[{dim}]', dim)}", "label", color=pal.text, prose=False)
            title.move_to(chart.box.top_center + DOWN * 0.1, aligned_edge=UP)
            spread = zh(f"std {num(f'cosine_std[{dim}]', stds[dim], '{:.3f}')}", "label", color=pal.accent,
                        prose=False)
            spread.next_to(title, DOWN, buff=0.1)
            panels.add(VGroup(chart, bars, exact, title, spread))

        with self.voice(fill("为什么 LayerNorm 后只剩方向也够用？因为高维空间里，随机两个方向几乎都垂直。"
                             "每种维度抽 {cosine_pairs} 对，看夹角余弦。", cosine_pairs=CFG.cosine_pairs)):
            self.say(fill("随机两个向量的夹角余弦\n各抽 {cosine_pairs} 对", cosine_pairs=CFG.cosine_pairs))
            self.play(FadeIn(note), run_time=theme.QUICK)
            for panel in panels:
                self.play(FadeIn(panel), run_time=theme.BEAT)
        with self.voice(fill("维度越高，分布越窄，宽度大约是根号 d 分之一。到 {gpt3_dim} 维，std 只有 "
                             "{gpt3_std:.3f}。", gpt3_dim=CFG.cosine_dims[-1], gpt3_std=stds[CFG.cosine_dims[-1]])):
            self.say(rich(f"宽度 $approx {num('std_numerator', 1)} \\/ sqrt(d)$：几乎都接近 {num('zero', 0)}",
                          color=pal.accent), hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def why_scale_by_sqrt_d(self):
        self.next_section("为什么除以 √d")
        pal = self.palette
        d = CFG.score_dim
        self.show_title(rich("为什么除以 $sqrt(d)$", "title", bold=True))
        raw, scaled = query_key_scores(d, CFG.score_queries, CFG.score_keys, seed=CFG.seed)
        variances = {"raw": float(raw.var()), "scaled": float(scaled.var())}
        shown_rows = 4  # the first rows, as they come: no picking
        weights = {"raw": softmax(raw), "scaled": softmax(scaled)}
        self.plotted("softmax_rows", {k: w[:shown_rows] for k, w in weights.items()})
        max_weight = {k: float(w.max(axis=1).mean()) for k, w in weights.items()}
        left, right = self.layout.panels(2)
        label_area, chart_area = left.rows([0.15, 0.85], gap=0.05)
        spread_chart = Chart(chart_area, AxisSpec(-30, 30, numeric_ticks("score_tick", [-30, -15, 0, 15, 30]),
                                                  "q·k 的分布"), AxisSpec(0, 1, []))
        bins = np.linspace(-30, 30, 61)
        centers = (bins[:-1] + bins[1:]) / 2
        hist = {k: np.histogram(v, bins=bins)[0] for k, v in (("raw", raw), ("scaled", scaled))}
        self.plotted("score_histograms", hist)
        peak = max(h.max() for h in hist.values())
        colors = {"raw": pal.warning, "scaled": pal.value}
        bars = {k: spread_chart.bars(centers, h / peak, colors[k]) for k, h in hist.items()}
        title_area, grid_area, stat_area = right.rows([0.18, 0.62, 0.2], gap=0.1)
        grids = {k: WeightGrid(w[:shown_rows], colors[k], pal.grid) for k, w in weights.items()}
        for grid in grids.values():
            grid_area.fit(grid, max_grow=3)
        grid_title = title_area.place(zh(fill("前 {shown_rows} 个 query 的 softmax", shown_rows=shown_rows), "label",
                                         color=pal.muted, prose=False))
        stats = {k: stat_area.place(zh(fill("最大权重平均 {w:.2f}", prefix=f"softmax_max_mean_{k}_", w=max_weight[k]),
                                       "label", color=colors[k], prose=False)) for k in weights}
        labels = {
            "raw": zh(fill("不缩放：方差 {raw_variance:.1f}", raw_variance=variances["raw"]), "label",
                      color=colors["raw"], prose=False),
            "scaled": rich(f"除以 $sqrt(d)$：方差 {num('scaled_variance', variances['scaled'], '{:.2f}')}", "label",
                           color=colors["scaled"], prose=False),
        }
        for label in labels.values():
            label_area.place(label, align="left")

        with self.voice(fill("最后联系注意力。q 和 k 各有 {d} 维，点积的方差就是 {d}，这里量出来是 {raw_variance:.1f}。",
                             d=d, raw_variance=variances["raw"])):
            self.play(FadeIn(spread_chart), FadeIn(bars["raw"]), FadeIn(labels["raw"]), run_time=theme.BEAT)
            self.say(fill("q·k 的方差 ≈ d = {d}", d=d))
        with self.voice(fill("分数这么分散，softmax 几乎变成 one-hot，最大权重平均 {w:.2f}。",
                             prefix="softmax_max_mean_raw_", w=max_weight["raw"])):
            self.play(FadeIn(grid_title), FadeIn(grids["raw"]), FadeIn(stats["raw"]), run_time=theme.BEAT)
            self.say("softmax 几乎变成 one-hot", color=pal.warning, hold=True)
        with self.voice("除以根号 d，方差回到一，注意力又能分散到好几个词上。"):
            self.play(ReplacementTransform(bars["raw"], bars["scaled"]), crossfade(labels["raw"], labels["scaled"],
                                                                                    match=False),
                      ReplacementTransform(grids["raw"], grids["scaled"]),
                      crossfade(stats["raw"], stats["scaled"], match=False), run_time=theme.SLOW)
            self.say(rich(f"除以 $sqrt(d)$：方差回到 {num('unit_variance', 1)}\n注意力重新分散开", color=pal.value),
                     hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here


class WeightGrid(VGroup):
    """Rows of attention weights as cells whose fill opacity is the weight (1 = solid)."""

    def __init__(self, weights, color, outline, cell: float = 0.5):
        super().__init__()
        for i, row in enumerate(np.asarray(weights)):
            for j, w in enumerate(row):
                square = Square(side_length=cell, stroke_color=outline, stroke_width=theme.STROKE_THIN)
                square.set_fill(color, float(w)).move_to([j * cell, -i * cell, 0])
                self.add(square)
