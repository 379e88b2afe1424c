"""Vectors on a sphere: what LayerNorm and RMSNorm do geometrically, the residual stream sliding over the sphere,
and why random directions in high dimension are nearly orthogonal (hence attention's 1/√d).

Render: ``manim -qh scenes/sphere.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/sphere.py`` (9:16).
3D is drawn as projected 2D (``shared/mobjects/projected.py``): no Surfaces, so it renders fast on a CPU.
Every point, radius and histogram comes from ``shared/math`` (norms, sphere, attention, tiny_transformer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import DOWN, RIGHT, UP, FadeIn, FadeOut, Square, Transform, ValueTracker, VGroup, linear, smooth

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
from shared.math.tiny_transformer import SOURCE_SENTENCE, TinyTransformerConfig, run_tiny_transformer
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.projected import ProjectedView
from shared.scene import ExplainerScene
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
    model_layers: int = 6  # the tiny Transformer's encoder depth for the trajectory
    traced_token: int = 0  # which source token's path to draw (我)
    cosine_dims: tuple[int, ...] = (3, 64, 768, 12288)  # GPT-3's d_model is 12288
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
            view.label(zh(f"x{i + 1}", "label", color=pal.muted, prose=False), lambda a=axis: a * 1.12)
        return view

    def cloud(self) -> np.ndarray:
        rng = np.random.default_rng(CFG.cloud_seed)
        return np.asarray(CFG.cloud_offset) + CFG.cloud_spread * rng.normal(size=(CFG.cloud_size, 3))

    def readout_and_stage(self):
        """The figure split into a strip for a live readout (top) and the 3D stage below it."""
        return self.layout.figure.rows([0.1, 0.9], gap=0.1)

    def readout(self, text: str, value, color) -> VGroup:
        """A live "text 1.7320" readout at the left of the readout strip."""
        readout = VGroup(zh(text, "label", color=color, prose=False),
                         LiveNumber(value, "{:.4f}", "label", color=color)).arrange(RIGHT, buff=0.2)
        return self.readout_and_stage()[0].place(readout, align="left")

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def subtract_mean(self):
        self.next_section("减去均值")
        pal = self.palette
        self.show_title("第一步：减均值")
        x = self.cloud()
        centred = x - x.mean(axis=1, keepdims=True)  # each vector minus the mean of its own 3 entries
        self.show_number("max_abs_sum_after_centering", float(np.abs(centred.sum(axis=1)).max()))
        t = ValueTracker(0)
        view = self.stage(self.readout_and_stage()[1])
        # everything added to the view is drawn by it: the plane, its normal, the moving points and their traces
        moving = lambda: (1 - t.get_value()) * x + t.get_value() * centred
        view.disk(lambda: circle_in_plane(ONES, 2.4, 64), pal.key, opacity=0.12)
        view.curve(lambda: circle_in_plane(ONES, 2.4, 64), pal.key, closed=True)
        view.segments(lambda: x, moving, pal.query, opacity=0.35)
        view.arrow(lambda: np.zeros(3), lambda: ONES / np.sqrt(3) * 1.8, pal.key)
        view.label(zh("(1,1,1)", "label", color=pal.key, prose=False), lambda: ONES / np.sqrt(3) * 1.8,
                   offset=(0.0, 0.35))
        view.dots(moving, pal.query, radius=0.07)
        total = self.readout("分量之和最大", lambda: float(np.abs(moving().sum(axis=1)).max()), pal.query)

        self.play(FadeIn(view), FadeIn(total), run_time=theme.BEAT)
        self.say("随机的 3 维输入向量")
        self.play(view.yaw.animate.increment_value(0.5), run_time=2, rate_func=linear)
        self.say("减去自己的均值：\n沿 (1,1,1) 方向移动")
        self.play(t.animate.set_value(1), view.yaw.animate.increment_value(0.6), run_time=3, rate_func=smooth)
        self.say("全都落进与 (1,1,1)\n垂直的平面", color=pal.key)
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
        self.show_number("layer_norm_radius_mean", float(np.linalg.norm(ln, axis=1).mean()))
        self.show_number("layer_norm_plane_max_abs_sum", float(np.abs(ln.sum(axis=1)).max()))
        self.show_number("rms_norm_radius_mean", float(np.linalg.norm(rms, axis=1).mean()))
        t, s = ValueTracker(0), ValueTracker(0)
        view = self.stage(self.readout_and_stage()[1])
        view.yaw.set_value(1.7)
        view.pitch.set_value(0.3)
        circle = view.curve(lambda: circle_in_plane(ONES, radius, 96), pal.value, stroke_width=theme.STROKE, closed=True)
        ln_dots = view.dots(lambda: (1 - t.get_value()) * centred + t.get_value() * ln, pal.value)
        mean_length = lambda v: float(np.linalg.norm(v, axis=1).mean())
        readout = self.readout("平均长度", lambda: mean_length((1 - t.get_value()) * centred + t.get_value() * ln),
                               pal.value)

        self.play(FadeIn(view), FadeIn(readout), run_time=theme.BEAT)
        self.say("LayerNorm：再除以标准差")
        self.play(t.animate.set_value(1), view.yaw.animate.increment_value(0.5), run_time=3)
        self.say(rich(f"落在半径 $sqrt(3) approx {radius:.3f}$ 的圆上", color=pal.value))
        self.wait(theme.HOLD)
        # RMSNorm: no mean step, from the raw inputs straight onto the sphere of radius √3.
        wire = VGroup(*(view.curve(lambda c=c: c, pal.grid, closed=True) for c in sphere_wireframe(radius, 6, 3, 72)))
        rms_dots = view.dots(lambda: (1 - s.get_value()) * x + s.get_value() * rms, pal.extra)
        readout_rms = self.readout("平均长度", lambda: mean_length((1 - s.get_value()) * x + s.get_value() * rms),
                                   pal.extra)
        self.play(FadeOut(ln_dots), FadeOut(circle), FadeOut(readout), FadeIn(wire), FadeIn(rms_dots),
                  FadeIn(readout_rms), run_time=theme.BEAT)
        self.say("RMSNorm 不减均值", color=pal.extra)
        self.play(s.animate.set_value(1), view.yaw.animate.increment_value(0.6), run_time=3)
        self.say(rich("落在整个半径 $sqrt(3)$ 的球面上", color=pal.extra), hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def slide_on_sphere(self):
        self.next_section("球面上滑行")
        pal = self.palette
        self.show_title("在球面上滑行")
        activations = run_tiny_transformer(TinyTransformerConfig(n_encoder_layers=CFG.model_layers, seed=CFG.seed))
        labels, states = activations.normalized_states("encoder")  # [n_norms, seq, d_model], Post-LN
        reduced = pca(states.reshape(-1, states.shape[-1]), 3)
        coords = reduced.coords.reshape(states.shape[0], states.shape[1], 3)
        directions = coords / np.linalg.norm(coords, axis=-1, keepdims=True)  # PCA keeps most, not all: show direction
        explained = float(reduced.explained_variance_ratio.sum())
        norms = np.linalg.norm(states, axis=-1)
        self.show_number("pca_explained_variance", explained)
        self.show_number("state_norms", norms.round(6).tolist())
        d_model = states.shape[-1]

        # each token's path: great-circle arcs between its consecutive normalised states
        samples = np.linspace(0, 1, 16)
        paths = [np.concatenate([slerp(a, b, samples) for a, b in zip(directions[:-1, i], directions[1:, i])])
                 for i in range(states.shape[1])]
        progress = ValueTracker(0.0)
        here = lambda path: path[: max(2, int(progress.get_value() * (len(path) - 1)) + 1)]
        note = zh(f"随机权重 · {CFG.model_layers} 层 Post-LN · d = {d_model}\n"
                  f"每次 LayerNorm 后的向量，{len(labels)} 次\nPCA 到 3 维（{explained:.0%} 方差），只看方向",
                  "small", color=pal.muted)
        sphere_area, note_area = (self.layout.figure.rows([0.74, 0.26], gap=0.2) if self.is_portrait
                                  else self.layout.figure.cols([0.56, 0.44], gap=0.3))
        note_area.place(note, align="bottom" if self.is_portrait else "left")
        view = ProjectedView(sphere_area.center, scale=0.42 * min(sphere_area.width, sphere_area.height), extent=1.0)
        view.yaw.set_value(0.4)
        wire = VGroup(*(view.curve(lambda c=c: c, pal.grid, closed=True) for c in sphere_wireframe(1.0, 6, 3, 72)))
        tokens = VGroup()
        for i, (path, color) in enumerate(zip(paths, pal.series)):
            trail = view.curve(lambda p=path: here(p), color, stroke_width=theme.STROKE, depth_split=False)
            head = view.dots(lambda p=path: here(p)[-1:], color, radius=0.09)
            tag = view.label(zh(SOURCE_SENTENCE[i], "label", color=color, prose=False), lambda p=path: here(p)[-1] * 1.2)
            tokens.add(VGroup(trail, head, tag))

        self.play(FadeIn(wire), FadeIn(note), FadeIn(tokens), run_time=theme.BEAT)
        self.say(f"{len(paths)} 个 token 穿过 {CFG.model_layers} 层")
        self.play(progress.animate.set_value(1), view.yaw.animate.increment_value(1.2), run_time=7, rate_func=linear)
        self.say(rich(f"长度始终 $sqrt({d_model}) approx {norms.mean():.3f}$\n变的只是方向", color=pal.accent),
                 hold=True)
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def nearly_orthogonal(self):
        self.next_section("高维里几乎都垂直")
        pal = self.palette
        self.show_title("维度越高越垂直")
        rows, cols = (2, 2) if self.is_portrait else (1, len(CFG.cosine_dims))
        cells = [c for r in self.layout.figure.rows(rows, gap=0.3) for c in r.cols(cols, gap=0.3)]
        bins = np.linspace(-1, 1, CFG.cosine_bins + 1)
        centers = (bins[:-1] + bins[1:]) / 2
        panels, stds = VGroup(), {}
        for cell, dim in zip(cells, CFG.cosine_dims):
            cos = random_cosine_similarities(dim, CFG.cosine_pairs, seed=CFG.seed)
            density, _ = np.histogram(cos, bins=bins, density=True)
            stds[dim] = float(cos.std())
            top = float(np.ceil(max(density.max(), cosine_similarity_density(0.0, dim)) * 1.1))
            chart = Chart(cell, AxisSpec(-1, 1, [(-1, "−1"), (0, "0"), (1, "1")]), AxisSpec(0, top, []))
            bars = chart.bars(centers, density, pal.query)
            exact = chart.polyline(np.linspace(-0.999, 0.999, 200),
                                   cosine_similarity_density(np.linspace(-0.999, 0.999, 200), dim), pal.accent,
                                   stroke_width=theme.STROKE_THIN)
            title = zh(f"d = {dim}", "label", color=pal.text, prose=False)
            title.move_to(chart.box.top_center + DOWN * 0.1, aligned_edge=UP)
            spread = zh(f"std {stds[dim]:.3f}", "label", color=pal.accent, prose=False)
            spread.next_to(title, DOWN, buff=0.1)
            panels.add(VGroup(chart, bars, exact, title, spread))
        self.show_number("cosine_std", stds)
        self.show_number("cosine_std_theory", {d: 1 / np.sqrt(d) for d in CFG.cosine_dims})

        self.say(f"随机两个向量的夹角余弦\n各抽 {CFG.cosine_pairs} 对")
        for panel in panels:
            self.play(FadeIn(panel), run_time=theme.BEAT)
        self.say(rich("宽度 $approx 1 \\/ sqrt(d)$：几乎都接近 0", color=pal.accent), hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def why_scale_by_sqrt_d(self):
        self.next_section("为什么除以 √d")
        pal = self.palette
        d = CFG.score_dim
        self.show_title(rich("为什么除以 $sqrt(d)$", "title", bold=True))
        raw, scaled = query_key_scores(d, CFG.score_queries, CFG.score_keys, seed=CFG.seed)
        variances = {"raw": float(raw.var()), "scaled": float(scaled.var())}
        self.show_number("score_variance", variances)
        shown_rows = 4  # the first rows, as they come: no picking
        weights = {"raw": softmax(raw), "scaled": softmax(scaled)}
        self.show_number("softmax_rows", {k: w[:shown_rows].tolist() for k, w in weights.items()})
        max_weight = {k: float(w.max(axis=1).mean()) for k, w in weights.items()}
        self.show_number("softmax_max_mean", max_weight)
        left, right = self.layout.panels(2)
        ticks = [(float(v), f"{v:g}") for v in (-30, -15, 0, 15, 30)]
        label_area, chart_area = left.rows([0.15, 0.85], gap=0.05)
        spread_chart = Chart(chart_area, AxisSpec(-30, 30, ticks, "q·k 的分布"), AxisSpec(0, 1, []))
        bins = np.linspace(-30, 30, 61)
        centers = (bins[:-1] + bins[1:]) / 2
        hist = {k: np.histogram(v, bins=bins)[0] for k, v in (("raw", raw), ("scaled", scaled))}
        peak = max(h.max() for h in hist.values())
        colors = {"raw": pal.warning, "scaled": pal.value}
        bars = {k: spread_chart.bars(centers, h / peak, colors[k]) for k, h in hist.items()}
        title_area, grid_area, stat_area = right.rows([0.18, 0.62, 0.2], gap=0.1)
        grids = {k: WeightGrid(w[:shown_rows], colors[k], pal.grid) for k, w in weights.items()}
        for grid in grids.values():
            grid_area.fit(grid, max_grow=3)
        grid_title = title_area.place(zh(f"前 {shown_rows} 个 query 的 softmax", "label", color=pal.muted,
                                         prose=False))
        stats = {k: stat_area.place(zh(f"最大权重平均 {max_weight[k]:.2f}", "label", color=colors[k], prose=False))
                 for k in weights}
        labels = {
            "raw": zh(f"不缩放：方差 {variances['raw']:.1f}", "label", color=colors["raw"], prose=False),
            "scaled": rich(f"除以 $sqrt(d)$：方差 {variances['scaled']:.2f}", "label", color=colors["scaled"],
                           prose=False),
        }
        for label in labels.values():
            label_area.place(label, align="left")
        raw_label, scaled_label = labels["raw"], labels["scaled"]

        self.play(FadeIn(spread_chart), FadeIn(bars["raw"]), FadeIn(raw_label), run_time=theme.BEAT)
        self.say("q·k 的方差 = d")
        self.play(FadeIn(grid_title), FadeIn(grids["raw"]), FadeIn(stats["raw"]), run_time=theme.BEAT)
        self.say("softmax 几乎变成 one-hot", color=pal.warning, hold=True)
        self.play(Transform(bars["raw"], bars["scaled"]), Transform(raw_label, scaled_label),
                  Transform(grids["raw"], grids["scaled"]), Transform(stats["raw"], stats["scaled"]),
                  run_time=theme.SLOW)
        self.say(rich("除以 $sqrt(d)$：方差回到 1\n注意力重新分散开", color=pal.value), hold=True)
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
