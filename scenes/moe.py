"""MoE explainer: one big FFN vs many experts, how the router picks two, why loads collapse, how a loss or a bias
evens them out, and why DeepSeek-V3 is "671B" but runs 37B per token.

Render: ``manim -qh scenes/moe.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/moe.py`` (9:16).
Routing numbers come from ``shared/math/moe.py`` on a seeded toy router; every histogram and every claim about
training comes from the committed run logs in ``media/runs/moe/`` through ``shared/runs.py``; the 671B / 37B
split is counted from DeepSeek-V3's configuration by ``deepseek_v3_parameter_counts``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    Arrow,
    Create,
    Dot,
    FadeIn,
    FadeOut,
    Indicate,
    Rectangle,
    RoundedRectangle,
    ValueTracker,
    VGroup,
    VMobject,
    linear,
)

from shared import theme
from shared.layout import Region
from shared.math.attention import softmax
from shared.math.moe import (
    DeepSeekV3Config,
    bias_balanced_routing,
    deepseek_v3_parameter_counts,
    top_k_routing,
)
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.histogram import LiveBars, interpolate_rows
from shared.mobjects.tokens import TokenRow
from shared.runs import EVEN_LOAD_TOLERANCE, load_moe_run, moe_claims
from shared.scene import ExplainerScene
from shared.text import LiveNumber, formula, rich, zh


@dataclass(frozen=True)
class MoEConfig:
    """Everything the explainer computes from. Change a value and every number on screen follows."""

    # Toy router and experts for the routing sections (random, illustrative; said so on screen).
    sentence: tuple[str, ...] = ("MoE", "怎么", "选", "专家")
    focus_token: int = 3  # the token whose routing is shown step by step
    toy_dim: int = 4  # d: token vectors and expert outputs, (tokens, d)
    toy_expert_hidden: int = 8  # each toy expert: d → hidden → d with ReLU
    toy_seed: int = 0
    router_std: float = 1.0  # router weights ~ N(0, router_std²), (d, N): logits of order ±2
    n_experts: int = 8  # same as the training runs
    top_k: int = 2
    # DeepSeek demo: an illustrative bias pushing the token's favourite expert down, as if it were overloaded.
    bias_demo_penalty: float = 0.5
    # Run logs (media/runs/moe/NAME.json) and how they play.
    run_none: str = "none"
    run_none_no_offset: str = "none_no_offset"
    run_aux: str = "aux_loss"
    run_bias: str = "bias"
    early_phase_step: int = 200  # first play covers steps 0..this, slowly: the collapse happens there
    early_play_seconds: float = 3.0
    late_play_seconds: float = 5.0
    # 671B vs 37B
    grid_columns: int = 16  # 256 routed experts as 16 × 16
    active_demo_seed: int = 1  # which 8 experts light up for the two demo tokens (illustrative)
    active_demo_tokens: int = 2


CFG = MoEConfig()
BILLION = 1e9
PERCENT = 100.0
SHARE_LABEL_ROOM_EM = 1.5  # the share axis runs past 100 % by this many label ems, so a full bar's number fits
SHARE_TICKS = (0.0, 25.0, 50.0, 75.0, 100.0)  # percent
BIAS_TICKS = 5  # about this many round values span the bias axis
TICK_SPACING_EM = 1.4  # least distance between two tick labels, in label ems
FLOW_TIP = 0.16  # arrow tip length in the block diagrams, frame units
ARROW_BUFF = 0.08
PORTRAIT_EXPERT_COLUMN = 0.6  # width of the "E1…E8" column of a 9:16 table, relative to a number column


def expert_name(index: int) -> str:
    """Experts are numbered from 1 on screen (E1 … E8); the helpers and logs index them from 0."""
    return f"E{index + 1}"


def fmt_num(value: float, digits: int = 2) -> str:
    """A number with a real minus sign."""
    return f"{value:.{digits}f}".replace("-", "−")


def fmt_vector(v) -> str:
    return "(" + ", ".join(fmt_num(x) for x in v) + ")"


@dataclass(frozen=True)
class ToyRouting:
    """A seeded toy MoE layer applied to the sentence: what the routing sections show."""

    logits: np.ndarray  # (tokens, N) router logits x·W_r
    probs: np.ndarray  # (tokens, N) softmax over experts
    indices: np.ndarray  # (tokens, k) top-k experts, largest weight first
    weights: np.ndarray  # (tokens, k) renormalised top-k weights
    expert_outputs: np.ndarray  # (k, d) E_i(x) of the focus token's chosen experts
    output: np.ndarray  # (d,) Σ weight · E_i(x) for the focus token


def toy_routing(cfg: MoEConfig = CFG) -> ToyRouting:
    """Random token vectors, router and ReLU experts; routing by ``top_k_routing`` (Mixtral: softmax → top-k →
    renormalise), output = weighted sum of the chosen experts' outputs."""
    rng = np.random.default_rng(cfg.toy_seed)
    d, h, n = cfg.toy_dim, cfg.toy_expert_hidden, cfg.n_experts
    x = rng.normal(size=(len(cfg.sentence), d))  # (tokens, d)
    w_router = rng.normal(scale=cfg.router_std, size=(d, n))  # (d, N)
    w_in = rng.normal(scale=1 / np.sqrt(d), size=(n, d, h))  # (N, d, h)
    w_out = rng.normal(scale=1 / np.sqrt(h), size=(n, h, d))  # (N, h, d)
    logits = x @ w_router
    indices, weights = top_k_routing(logits, cfg.top_k)
    token = x[cfg.focus_token]
    outputs = np.stack([np.maximum(token @ w_in[e], 0) @ w_out[e] for e in indices[cfg.focus_token]])
    return ToyRouting(logits, softmax(logits, axis=-1), indices, weights, outputs,
                      weights[cfg.focus_token] @ outputs)


def covering_ticks(low: float, high: float, count: int) -> list[float]:
    """Round ticks (steps of 1, 2, 2.5 or 5 × 10^n, about ``count`` of them) from at or below ``low`` to at or
    above ``high``."""
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(s * magnitude for s in (1, 2, 2.5, 5, 10) if s * magnitude >= raw - 1e-12)
    first, last = np.floor(low / step + 1e-9) * step, np.ceil(high / step - 1e-9) * step
    return [float(v) + 0.0 for v in np.round(np.arange(first, last + step / 2, step), 10)]


def token_shares(log: dict) -> np.ndarray:
    """(records, N) percent of the window's tokens that had each expert among their top-k (sums to k·100)."""
    rows = np.array([r["load_window"] for r in log["history"]], dtype=float)
    tokens = rows.sum(axis=1, keepdims=True) / log["config"]["top_k"]
    return rows / tokens * PERCENT


def record_index(log: dict, step: int) -> int:
    """Index of the first logged record at or after ``step``."""
    return next(i for i, r in enumerate(log["history"]) if r["step"] >= step)


class MoERouting(ExplainerScene):
    """Mixture of Experts: routing with real numbers, load collapse and balancing from real runs, 671B vs 37B."""

    def construct(self):
        self.toy = toy_routing()
        self.dense_vs_sparse()
        self.router_scores()
        self.weighted_sum()
        self.winner_takes_all()
        self.balancing_loss()
        self.balancing_loss_run()
        self.bias_only_chooses()
        self.bias_run()
        self.total_vs_active()
        self.active_breakdown()

    # --- shared pieces ---------------------------------------------------------------------------------------------

    def box(self, text: str, width: float, height: float, *, color=None, fill=None, role: str = "label"):
        """A rounded box with a centred label (a token, the router, an expert)."""
        pal = self.palette
        rect = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=width, height=height,
                                stroke_color=color or pal.muted, stroke_width=theme.STROKE_THIN)
        rect.set_fill(fill or pal.panel, 1)
        label = zh(text, role, color=pal.text, prose=False)
        label.move_to(rect)
        return VGroup(rect, label)

    def arrow(self, start, end) -> Arrow:
        """A thin flow arrow whose tip has the same size whatever its length."""
        return Arrow(start, end, buff=ARROW_BUFF, color=self.palette.muted, stroke_width=theme.STROKE_THIN,
                     tip_length=FLOW_TIP, max_tip_length_to_length_ratio=1.0, max_stroke_width_to_length_ratio=100)

    def expert_grid(self, width: float, height: float, lit: dict[int, str]) -> VGroup:
        """N experts as a 2-row grid filling width × height; ``lit`` maps expert → colour."""
        pal = self.palette
        rows, cols = 2, CFG.n_experts // 2
        cell_w, cell_h = width / cols, height / rows
        grid = VGroup()
        for e in range(rows * cols):
            colour = lit.get(e)
            cell = self.box(expert_name(e), cell_w * 0.9, cell_h * 0.9, color=colour or pal.grid,
                            fill=pal.panel, role="small")
            if colour:
                cell[0].set_fill(colour, 0.45)
            cell.move_to([(e % cols - (cols - 1) / 2) * cell_w, ((rows - 1) / 2 - e // cols) * cell_h, 0])
            grid.add(cell)
        return grid

    def run_note(self, log: dict, extra: str = "") -> VMobject:
        """Small print under a run: what ran, on what, how long (from the log's config and provenance)."""
        cfg, prov = log["config"], log["provenance"]
        text = (f"真实训练：{cfg['n_experts']} 专家 top-{cfg['top_k']}，seed {cfg['seed']}\n"
                f"{prov['device']}，用时 {prov['wall_seconds']:.1f} 秒")
        return zh(text + extra, "small", color=self.palette.muted)

    def share_chart(self, region: Region, log: dict, compact: bool = False) -> Chart:
        """Percent of tokens per expert, 0–100 %, one bar slot per expert; ``compact``: no expert names under it
        and no room for numbers over the bars (a chart under it names the experts)."""
        n = log["config"]["n_experts"]
        ticks = SHARE_TICKS

        def chart(high: float) -> Chart:
            return Chart(
                region,
                AxisSpec(-0.5, n - 0.5, [] if compact else [(float(e), expert_name(e)) for e in range(n)], ""),
                AxisSpec(0, high, [(v, f"{v:.0f}") for v in ticks], "拿到的 token（%）"),
            )

        # The plot box depends neither on the y range nor on which ticks are labelled: measure it once. Unless
        # compact, the axis runs past 100 % by the room a bar's number needs; every other tick is dropped when
        # their labels would touch.
        em = self.layout.text_em("label")
        box_height = chart(PERCENT).box.height
        high = PERCENT if compact else PERCENT / (1 - SHARE_LABEL_ROOM_EM * em / box_height)
        if box_height * (ticks[1] - ticks[0]) / high < TICK_SPACING_EM * em:
            ticks = ticks[::2]
        return chart(high)

    def play_run(self, log: dict, chart: Chart, color, role: str = "label", bar_labels: bool = True):
        """Bars of ``token_shares`` that follow a tracker over the log's records, and a step counter.

        Returns (bars, step readout, tracker, index of the record that ends the early phase).
        """
        shares = token_shares(log)
        t = ValueTracker(0)
        bars = LiveBars(chart, np.arange(len(shares[0])), lambda: interpolate_rows(shares, t.get_value()), color,
                        label_fmt="{:.0f}" if bar_labels else None)
        steps = np.array([r["step"] for r in log["history"]], dtype=float)
        step_readout = LiveNumber(lambda: np.interp(t.get_value(), np.arange(len(steps)), steps), "step {:.0f}",
                                  role, color=self.palette.accent)
        return bars, step_readout, t, record_index(log, CFG.early_phase_step)

    def fair_label(self, log: dict) -> VMobject:
        fair = log["config"]["top_k"] / log["config"]["n_experts"] * PERCENT
        return zh(f"均分\n{fair:.0f}%", "small", color=self.palette.accent)

    def share_chart_with_fair_line(self, region: Region, log: dict, compact: bool = False):
        """The share chart, leaving room on its right for the fair-share label at the end of the dashed line at
        k/N. Returns (chart, VGroup(line, label))."""
        label = self.fair_label(log)
        gap = 0.15
        chart = self.share_chart(Region(region.left, region.right - label.width - gap, region.bottom, region.top),
                                 log, compact)
        fair = log["config"]["top_k"] / log["config"]["n_experts"] * PERCENT
        line = chart.hline(fair, self.palette.accent)
        label.next_to(line, RIGHT, buff=gap)
        return chart, VGroup(line, label)

    def place_step_readout(self, readout: LiveNumber, chart: Chart) -> None:
        """Top right, above the plot (beside the y-axis title), so no bar's number runs into it."""
        readout.move_to(chart.box.point(1, 1), aligned_edge=DOWN + RIGHT).shift(UP * 0.35 * readout.em_now)

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def dense_vs_sparse(self):
        self.next_section("一个大 FFN vs 一群专家")
        pal = self.palette
        self.show_title("大 FFN 还是一群专家")
        n, k = CFG.n_experts, CFG.top_k
        chosen = self.toy.indices[CFG.focus_token].tolist()
        self.show_number("experts_and_top_k", (n, k))
        self.show_number("sparse_active_fraction", k / n)
        self.show_number("diagram_lit_experts", chosen)

        dense_area, moe_area = self.layout.figure.rows(2, gap=self.layout.panel_gap)
        label_em = self.layout.text_em("label")
        panels = []
        for area, name in ((dense_area, "稠密"), (moe_area, "MoE")):
            if self.is_portrait:
                head, flow = area.rows([0.2, 0.8], gap=0.1)
            else:
                head, flow = area.cols([0.12, 0.88], gap=0.2)
            panels.append((head.place(zh(name, "label", bold=True, color=pal.muted), align="left"), flow))
        # One set of columns for both flows, so the FFN and the expert grid have the same size and place.
        flow = panels[0][1]
        # Box and gap widths in label ems; portrait is narrow, so everything but the expert grid gets tighter.
        token_w = (1.8 if self.is_portrait else 2.2) * label_em
        router_w = (3.0 if self.is_portrait else 4.2) * label_em
        gap = (1.2 if self.is_portrait else 1.6) * label_em
        block_w = flow.width - 2 * token_w - router_w - 3 * gap
        cols = flow.cols([token_w, gap, router_w, gap, block_w, gap, token_w])
        block_h = min(flow.height * 0.9, block_w * (0.7 if self.is_portrait else 0.5))

        def at(col: Region, row_area: Region) -> np.ndarray:
            return np.array([col.center[0], row_area.center[1], 0.0])

        diagrams = []
        for (head, area), kind in zip(panels, ("dense", "moe")):
            x_box = self.box("x", token_w, 1.6 * label_em, role="label").move_to(at(cols[0], area))
            y_box = self.box("y", token_w, 1.6 * label_em, role="label").move_to(at(cols[6], area))
            if kind == "dense":
                block = self.box("FFN", block_w, block_h, color=pal.query, role="label")
                block[0].set_fill(pal.query, 0.45)
                block.move_to(at(cols[4], area))
                arrows = VGroup(self.arrow(x_box.get_right(), block.get_left()),
                                self.arrow(block.get_right(), y_box.get_left()))
                parts = VGroup(x_box, block, y_box, arrows)
                path = [x_box.get_center(), block.get_center(), y_box.get_center()]
            else:
                router_name = "路由" if self.is_portrait else "路由器"
                router = self.box(router_name, router_w, 1.6 * label_em, color=pal.accent).move_to(at(cols[2], area))
                block = self.expert_grid(block_w, block_h, {chosen[0]: pal.query, chosen[1]: pal.key})
                block.move_to(at(cols[4], area))
                arrows = VGroup(self.arrow(x_box.get_right(), router.get_left()),
                                self.arrow(router.get_right(), block.get_left()),
                                self.arrow(block.get_right(), y_box.get_left()))
                parts = VGroup(x_box, router, block, y_box, arrows)
                path = [x_box.get_center(), router.get_center(), block[chosen[0]].get_center(),
                        y_box.get_center()]
            diagrams.append((head, parts, path, block))

        (dense_head, dense, dense_path, ffn), (moe_head, moe, moe_path, grid) = diagrams
        self.play(FadeIn(dense_head), FadeIn(dense), run_time=theme.BEAT)
        self.say("稠密：每个 token\n都走完整个 FFN")
        dot = Dot(dense_path[0], color=pal.accent, radius=0.5 * label_em / 2)
        self.play(FadeIn(dot), run_time=theme.QUICK / 2)
        for point in dense_path[1:]:
            self.play(dot.animate.move_to(point), run_time=theme.QUICK, rate_func=linear)
        self.play(Indicate(ffn, color=pal.query, scale_factor=1.03), FadeOut(dot), run_time=theme.BEAT)
        self.play(FadeIn(moe_head), FadeIn(moe), run_time=theme.BEAT)
        self.say(f"MoE：切成 {n} 个专家\n路由器只挑 {k} 个", color=pal.accent)
        dots = [Dot(moe_path[0], color=pal.accent, radius=0.5 * label_em / 2) for _ in range(k)]
        self.play(*[FadeIn(d) for d in dots], run_time=theme.QUICK / 2)
        self.play(*[d.animate.move_to(moe_path[1]) for d in dots], run_time=theme.QUICK, rate_func=linear)
        self.play(*[d.animate.move_to(grid[e].get_center()) for d, e in zip(dots, chosen)], run_time=theme.QUICK,
                  rate_func=linear)
        self.play(*[Indicate(grid[e], scale_factor=1.08, color=c) for e, c in zip(chosen, (pal.query, pal.key))],
                  run_time=theme.BEAT)
        self.play(*[d.animate.move_to(moe_path[-1]) for d in dots], run_time=theme.QUICK, rate_func=linear)
        self.play(*[FadeOut(d) for d in dots], run_time=theme.QUICK / 2)
        self.say(f"参数一样多\n每个 token 只算 {k}/{n}", color=pal.value, hold=True)
        self.wait(theme.HOLD)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def expert_table(self, region: Region, quantities: list[str], name_weight: float):
        # name_weight: width of the column of quantity names (16:9), relative to one expert's column; in 9:16 the
        # first column holds the short expert names instead.
        """Cell centres of a quantities × experts table: experts across in 16:9, down in 9:16.

        Returns (cell(q, e) → point, cell size (width, height), name mobjects, expert-label mobjects).
        """
        pal = self.palette
        n = CFG.n_experts
        if self.is_portrait:
            rows = region.rows(n + 1)
            cols = region.cols([PORTRAIT_EXPERT_COLUMN] + [1.0] * len(quantities))
            cell = lambda q, e: np.array([cols[q + 1].center[0], rows[e + 1].center[1], 0.0])
            name_at = lambda q: np.array([cols[q + 1].center[0], rows[0].center[1], 0.0])
            expert_at = lambda e: np.array([cols[0].center[0], rows[e + 1].center[1], 0.0])
            size = (cols[1].width, rows[1].height)
        else:
            rows = region.rows(len(quantities) + 1)
            cols = region.cols([name_weight] + [1.0] * n)
            cell = lambda q, e: np.array([cols[e + 1].center[0], rows[q + 1].center[1], 0.0])
            name_at = lambda q: np.array([cols[0].center[0], rows[q + 1].center[1], 0.0])
            expert_at = lambda e: np.array([cols[e + 1].center[0], rows[0].center[1], 0.0])
            size = (cols[1].width, rows[1].height)
        names = [zh(q, "label", color=pal.muted).move_to(name_at(i)) for i, q in enumerate(quantities)]
        experts = [zh(expert_name(e), "label", color=pal.muted).move_to(expert_at(e)) for e in range(n)]
        return cell, size, names, experts

    def column_box(self, cell, size, e: int, q_from: int, q_to: int, color) -> VMobject:
        """A frame around expert ``e``'s cells from quantity ``q_from`` to ``q_to``."""
        a, b = cell(q_from, e), cell(q_to, e)
        w, h = size
        width = abs(b[0] - a[0]) + 0.92 * w
        height = abs(b[1] - a[1]) + 0.92 * h
        frame = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=width, height=height, stroke_color=color,
                                 stroke_width=theme.STROKE)
        return frame.move_to((a + b) / 2)

    def router_scores(self):
        self.next_section("路由打分")
        pal = self.palette
        self.show_title("路由器怎么选专家")
        toy, f = self.toy, CFG.focus_token
        logits, probs = toy.logits[f], toy.probs[f]
        chosen, weights = toy.indices[f], toy.weights[f]
        self.show_number("toy_logits", logits.tolist())
        self.show_number("toy_probs", probs.tolist())
        self.show_number("toy_top_k", chosen.tolist())
        self.show_number("toy_top_k_weights", weights.tolist())

        tokens_area, table_area, note_area = self.layout.figure.rows([0.2, 0.68, 0.12], gap=0.1)
        row = TokenRow(CFG.sentence)
        row[f][0].set_stroke(pal.query, theme.STROKE)
        tokens_area.fit(row, max_grow=1.0)
        quantities = ["logit", "softmax", "权重"]
        cell, size, names, experts = self.expert_table(table_area, quantities, 1.8)
        logit_cells = VGroup(*(zh(fmt_num(v), "label", color=pal.text).move_to(cell(0, e))
                               for e, v in enumerate(logits)))
        prob_cells = VGroup(*(zh(fmt_num(p), "label", color=pal.text).move_to(cell(1, e))
                              for e, p in enumerate(probs)))
        colours = (pal.query, pal.key)
        weight_cells = VGroup(*(zh(fmt_num(w), "label", color=c).move_to(cell(2, e))
                                for e, w, c in zip(chosen, weights, colours)))
        frames = VGroup(*(self.column_box(cell, size, e, 0, 2, c) for e, c in zip(chosen, colours)))
        note = note_area.place(zh(f"路由器权重随机（示意），d = {CFG.toy_dim}", "small", color=pal.muted))
        header = VGroup(*experts)

        self.play(FadeIn(row), FadeIn(note), run_time=theme.BEAT)
        self.say(f"看「{CFG.sentence[f]}」这个 token")
        self.play(FadeIn(header), FadeIn(names[0]), FadeIn(logit_cells, lag_ratio=0.1), run_time=theme.BEAT)
        self.say(f"路由器给 {CFG.n_experts} 个专家打分\nlogit = x · W_r")
        self.wait(theme.HOLD)
        self.play(FadeIn(names[1]), FadeIn(prob_cells, lag_ratio=0.1), run_time=theme.BEAT)
        self.say("softmax：变成概率")
        self.wait(theme.HOLD)
        self.play(Create(frames), run_time=theme.BEAT)
        top_names = "、".join(expert_name(e) for e in chosen)
        self.say(f"只留最大的 {CFG.top_k} 个：{top_names}", color=pal.accent)
        self.wait(theme.HOLD)
        self.play(FadeIn(names[2]), FadeIn(weight_cells), run_time=theme.BEAT)
        total = " + ".join(fmt_num(w) for w in weights)
        self.say(f"两个重新归一\n{total} = {fmt_num(weights.sum())}", color=pal.value, hold=True)
        self.clear_stage()

    def weighted_sum(self):
        self.next_section("加权求和")
        pal = self.palette
        self.show_title("两个专家，加权求和")
        toy, f = self.toy, CFG.focus_token
        chosen, weights = toy.indices[f], toy.weights[f]
        self.show_number("toy_expert_outputs", toy.expert_outputs.tolist())
        self.show_number("toy_output", toy.output.tolist())
        self.show_number("toy_sentence_logits", toy.logits.tolist())
        self.show_number("toy_sentence_top_k", toy.indices.tolist())

        row = TokenRow(CFG.sentence)
        row[f][0].set_stroke(pal.query, theme.STROKE)
        tags = VGroup()
        for t, token_box in enumerate(row):
            tag = zh("\n".join(expert_name(e) for e in toy.indices[t]), "small",
                     color=pal.query if t == f else pal.muted)
            tags.add(tag.next_to(token_box, DOWN, buff=0.15))
        top_block = VGroup(row, tags)
        note = zh(f"专家是随机的小网络（示意），d = {CFG.toy_dim}", "small", color=pal.muted)
        # Rows sized by what they hold: the tokens with their tags, the note; the sum gets the rest.
        gap = 0.25
        figure = self.layout.figure
        tokens_area, sum_area, note_area = figure.rows(
            [top_block.height, figure.height - top_block.height - note.height - 2 * gap, note.height], gap=gap)
        tokens_area.place(top_block)
        note_area.place(note)
        tags.set_opacity(0)
        colours = (pal.query, pal.key)
        # E_a(x) = (…), E_b(x) = (…), then y = w_a·E_a(x) + w_b·E_b(x) = (…)
        names = [zh(f"{expert_name(e)}(x) =", "label", color=c) for e, c in zip(chosen, colours)]
        vectors = [zh(fmt_vector(v), "label", color=c) for v, c in zip(toy.expert_outputs, colours)]
        mix = " + ".join(f"{fmt_num(w)} × {expert_name(e)}(x)" for e, w in zip(chosen, weights))
        result_name = zh("y =", "label", color=pal.value)
        result_mix = zh(mix, "label", color=pal.value)
        equals = zh("=", "label", color=pal.value)
        result = zh(fmt_vector(toy.output), "label", color=pal.value)
        if self.is_portrait:  # each name above its vector
            lines = VGroup(*(VGroup(n, v).arrange(DOWN, aligned_edge=LEFT, buff=0.12) for n, v in zip(names, vectors)),
                           VGroup(result_name, result_mix).arrange(RIGHT, buff=0.2),
                           VGroup(equals, result).arrange(RIGHT, buff=0.2))
            lines.arrange(DOWN, aligned_edge=LEFT, buff=0.3)
            lines[3].shift(RIGHT * (result_mix.get_left()[0] - equals.get_left()[0]))
        else:  # names right-aligned in a column, values beside them
            lines = VGroup(*names, result_name, equals, *vectors, result_mix, result)
            lines.arrange_in_grid(rows=4, cols=2, col_alignments="rl", flow_order="dr", buff=(0.3, 0.3))
        block = lines
        sum_area.fit(block, max_grow=1.0 if self.is_portrait else 1.3)

        self.play(FadeIn(row), FadeIn(note), run_time=theme.QUICK)
        self.play(FadeIn(names[0]), FadeIn(vectors[0]), run_time=theme.BEAT)
        self.say(f"{expert_name(chosen[0])} 和 {expert_name(chosen[1])} 各算一遍")
        self.play(FadeIn(names[1]), FadeIn(vectors[1]), run_time=theme.BEAT)
        self.wait(theme.HOLD)
        self.play(FadeIn(result_name), FadeIn(result_mix), run_time=theme.BEAT)
        self.play(FadeIn(equals), FadeIn(result), run_time=theme.BEAT)
        self.say("按权重加起来，就是输出", color=pal.value)
        self.wait(theme.HOLD)
        self.play(tags.animate.set_opacity(1), run_time=theme.BEAT)
        self.say("每个 token 各挑各的", color=pal.accent)
        self.wait(theme.HOLD)
        idle = CFG.n_experts - CFG.top_k
        self.say(f"其余 {idle} 个专家\n这个 token 不用算", hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def run_stage(self, log: dict, color, note_extra: str = ""):
        """Chart, playing bars, fair line and small print of one run in the figure; returns what to animate."""
        note = self.run_note(log, note_extra)
        if self.is_portrait:  # chart, then the small print under it; the step counter above the plot
            note_height = note.height / self.layout.figure.height
            chart_area, note_area = self.layout.figure.rows([1 - note_height, note_height], gap=0.3)
            chart, fair = self.share_chart_with_fair_line(chart_area, log)
            bars, step_readout, t, split = self.play_run(log, chart, color)
            self.place_step_readout(step_readout, chart)
            note_area.place(note, align="left")
        else:  # chart on the left; step counter and small print in a column on the right
            chart_area, info_area = self.layout.figure.cols([0.56, 0.44], gap=0.5)
            chart, fair = self.share_chart_with_fair_line(chart_area, log)
            bars, step_readout, t, split = self.play_run(log, chart, color, role="body")
            step_readout.move_to(info_area.point(0, 1), aligned_edge=UP + LEFT)
            note.next_to(step_readout, DOWN, buff=0.5, aligned_edge=LEFT)
            VGroup(step_readout, note).move_to(info_area.center, coor_mask=np.array([0, 1, 0]))
        return chart, bars, step_readout, t, split, fair, note

    def winner_takes_all(self):
        self.next_section("赢家通吃")
        pal = self.palette
        self.show_title("赢家通吃")
        log = load_moe_run(CFG.run_none)
        claims = moe_claims(log)
        calm = moe_claims(load_moe_run(CFG.run_none_no_offset))
        offset = log["config"]["input_offset"]
        self.show_number("none_claims", claims)
        self.show_number("none_input_offset", offset)
        self.show_number("none_no_offset_max_over_min", calm["max_over_min"])
        self.show_number("none_shares", token_shares(log).tolist())
        extra = (f"\n注：输入都加了同一个偏移（长 {offset:g}）\n"
                 f"不加它就不塌缩：最忙/最闲 {calm['max_over_min']:.1f}×")
        chart, bars, step_readout, t, split, fair, note = self.run_stage(log, pal.warning, extra)

        self.play(FadeIn(chart), FadeIn(fair), FadeIn(note), FadeIn(bars), FadeIn(step_readout),
                  run_time=theme.BEAT)
        self.say("不加任何约束，直接训练")
        self.play(t.animate.set_value(split), run_time=CFG.early_play_seconds, rate_func=linear)
        self.say(f"前 {log['history'][split]['step']} 步：\n流量挤到少数专家", color=pal.warning)
        self.play(t.animate.set_value(len(log["history"]) - 1), run_time=CFG.late_play_seconds, rate_func=linear)
        busiest = expert_name(claims["busiest_expert"])
        self.say(f"最忙的 {busiest} 拿到\n{claims['busiest_token_share']:.0%} 的 token", color=pal.warning,
                 hold=True)
        self.say(f"{len(claims['idle_experts'])} 个专家\n一个 token 都没拿到", color=pal.warning, hold=True)
        bars.clear_updaters()
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def balancing_loss(self):
        self.next_section("负载均衡 loss")
        pal = self.palette
        self.show_title("负载均衡 loss")
        none_log, aux_log = load_moe_run(CFG.run_none), load_moe_run(CFG.run_aux)
        n, k = aux_log["config"]["n_experts"], aux_log["config"]["top_k"]
        # Perfect balance: f_i = k/N of the tokens, P_i = 1/N each, so N·Σ f_i·P_i = k.
        balanced = n * float(np.sum(np.full(n, k / n) * np.full(n, 1 / n)))
        collapsed = none_log["history"][-1]["aux_loss"]
        evened = aux_log["history"][-1]["aux_loss"]
        alpha = aux_log["config"]["aux_coef"]
        self.show_number("aux_loss_balanced", balanced)
        self.show_number("aux_loss_final", {"none": collapsed, "aux_loss": evened})
        self.show_number("aux_coef", alpha)

        formula_area, terms_area = self.layout.figure.rows([0.35, 0.65], gap=0.2)
        loss = formula('L_"aux" = N dot sum_(i=1)^N f_i dot P_i', "title", color=pal.text)
        formula_area.fit(loss, max_grow=1.2)
        term_text = [
            ("$N$", f"专家数（这里 {n}）", pal.text),
            ("$f_i$", "实际分给专家 i 的 token 比例\n（数出来的，不能求导）", pal.key),
            ("$P_i$", "路由器给专家 i 的平均概率\n（可以求导，梯度从这里走）", pal.query),
        ]
        terms = VGroup()
        for symbol, text, colour in term_text:
            terms.add(VGroup(rich(symbol, "label", color=colour), zh(text, "label", color=colour)))
        for term in terms:
            term.arrange(RIGHT, buff=0.4, aligned_edge=UP)
        terms.arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        terms_area.fit(terms, max_grow=1.0)
        self.play(FadeIn(loss), run_time=theme.BEAT)
        self.say("训练时加进总 loss")
        self.play(FadeIn(terms[0]), run_time=theme.QUICK)
        self.play(FadeIn(terms[1]), run_time=theme.QUICK)
        self.play(FadeIn(terms[2]), run_time=theme.QUICK)
        self.say("哪个专家又忙、概率又高\n它的项就大", color=pal.key, hold=True)
        self.say(f"负载全部均分时 = {balanced:g}\n塌缩的 none 跑到 {collapsed:.2f}", color=pal.value, hold=True)
        self.say(f"乘一个小系数 α = {alpha:g}\n把概率往闲的专家推", hold=True)
        self.clear_stage()

    def balancing_loss_run(self):
        self.next_section("辅助 loss 拉平负载")
        pal = self.palette
        self.show_title("加上辅助 loss 之后")
        log = load_moe_run(CFG.run_aux)
        claims = moe_claims(log)
        none_claims = moe_claims(load_moe_run(CFG.run_none))
        self.show_number("aux_claims", claims)
        self.show_number("aux_shares", token_shares(log).tolist())
        self.show_number("eval_loss_none_vs_aux", (none_claims["final_eval_loss"], claims["final_eval_loss"]))
        extra = f"\n均衡：每个专家在均值 ±{EVEN_LOAD_TOLERANCE:.0%} 内"
        chart, bars, step_readout, t, split, fair, note = self.run_stage(log, pal.key, extra)

        self.play(FadeIn(chart), FadeIn(fair), FadeIn(note), FadeIn(bars), FadeIn(step_readout),
                  run_time=theme.BEAT)
        self.say(f"同样的任务，α = {log['config']['aux_coef']:g}")
        self.play(t.animate.set_value(split), run_time=CFG.early_play_seconds, rate_func=linear)
        self.play(t.animate.set_value(len(log["history"]) - 1), run_time=CFG.late_play_seconds, rate_func=linear)
        self.say(f"第 {claims['balance_step']} 步起\n负载一直保持均衡", color=pal.key, hold=True)
        self.say(f"最后：最忙/最闲 = {claims['max_over_min']:.2f}×", color=pal.value, hold=True)
        self.say(f"任务 loss 也更低\n{claims['final_eval_loss']:.3f} vs none 的 {none_claims['final_eval_loss']:.3f}",
                 color=pal.value, hold=True)
        bars.clear_updaters()
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def bias_only_chooses(self):
        self.next_section("DeepSeek 不要辅助 loss")
        pal = self.palette
        self.show_title("DeepSeek 的偏置")
        toy, f, k = self.toy, CFG.focus_token, CFG.top_k
        logits = toy.logits[f : f + 1]  # (1, N): the same token as before
        scores = 1 / (1 + np.exp(-logits[0]))  # s_i = sigmoid(logit_i)
        no_bias = np.zeros(CFG.n_experts)
        plain, _ = bias_balanced_routing(logits, no_bias, k)
        favourite = int(plain[0, 0])
        bias = no_bias.copy()
        bias[favourite] = -CFG.bias_demo_penalty
        picked, weights = bias_balanced_routing(logits, bias, k)
        picked, weights = picked[0], weights[0]
        self.show_number("bias_demo_scores", scores.tolist())
        self.show_number("bias_demo_bias", bias.tolist())
        self.show_number("bias_demo_plain_choice", plain[0].tolist())
        self.show_number("bias_demo_choice", picked.tolist())
        self.show_number("bias_demo_weights", weights.tolist())

        table_area, note_area = self.layout.figure.rows([0.86, 0.14], gap=0.1)
        quantities = ["s", "b", "s + b", "权重"]
        cell, size, names, experts = self.expert_table(table_area, quantities, 1.2)
        s_cells = VGroup(*(zh(fmt_num(v), "label").move_to(cell(0, e)) for e, v in enumerate(scores)))
        b_cells = VGroup(*(zh(fmt_num(v), "label", color=pal.warning if v else pal.muted).move_to(cell(1, e))
                           for e, v in enumerate(bias)))
        sb_cells = VGroup(*(zh(fmt_num(v), "label").move_to(cell(2, e)) for e, v in enumerate(scores + bias)))
        # The experts keep the colours they had in the softmax example; a newcomer gets another one.
        colour_of = dict(zip(toy.indices[f].tolist(), (pal.query, pal.key)))
        colours = [colour_of.get(int(e), pal.extra) for e in picked]
        w_cells = VGroup(*(zh(fmt_num(w), "label", color=c).move_to(cell(3, e))
                           for e, w, c in zip(picked, weights, colours)))
        plain_frames = VGroup(*(self.column_box(cell, size, e, 0, 0, pal.muted) for e in plain[0]))
        frames = VGroup(*(self.column_box(cell, size, e, 2, 3, c) for e, c in zip(picked, colours)))
        note = note_area.place(zh(f"同一个「{CFG.sentence[f]}」，b 是假设的（示意）", "small",
                                  color=pal.muted))

        self.play(FadeIn(VGroup(*experts)), FadeIn(names[0]), FadeIn(s_cells), FadeIn(note), run_time=theme.BEAT)
        self.say("DeepSeek-V3：打分\ns = sigmoid(logit)")
        self.play(Create(plain_frames), run_time=theme.QUICK)
        self.say(f"不加偏置：选 {'、'.join(expert_name(e) for e in plain[0])}")
        self.play(FadeIn(names[1]), FadeIn(b_cells), FadeIn(names[2]), FadeIn(sb_cells), run_time=theme.BEAT)
        newcomers = "、".join(expert_name(e) for e in picked if e not in plain[0])
        self.say(f"{expert_name(favourite)} 太忙，b 被压低\n按 s + b 挑：换上 {newcomers}", color=pal.warning)
        self.play(FadeOut(plain_frames), Create(frames), run_time=theme.BEAT)
        self.wait(theme.HOLD)
        self.play(FadeIn(names[3]), FadeIn(w_cells), run_time=theme.BEAT)
        self.say("权重只用 s，b 不进输出", color=pal.value, hold=True)
        update = rich("太忙：$b_i <- b_i - gamma$ \\\n太闲：$b_i <- b_i + gamma$", "body", color=pal.accent)
        self.say(update, hold=True)
        self.say("不加辅助 loss，\n不碰梯度", color=pal.accent, hold=True)
        self.clear_stage()

    def bias_run(self):
        self.next_section("偏置拉平负载")
        pal = self.palette
        self.show_title("偏置拉平负载")
        log = load_moe_run(CFG.run_bias)
        claims = moe_claims(log)
        biases = np.array([r["bias"] for r in log["history"]])  # (records, N)
        penalised = int(np.unravel_index(np.argmin(biases), biases.shape)[1])
        self.show_number("bias_claims", claims)
        self.show_number("bias_shares", token_shares(log).tolist())
        self.show_number("bias_history", biases.tolist())
        self.show_number("bias_most_penalised_expert", penalised)
        self.show_number("bias_lowest", float(biases.min()))
        self.show_number("bias_lowest_step", log["history"][int(np.argmin(biases.min(axis=1)))]["step"])

        cfg, prov = log["config"], log["provenance"]
        note = zh(f"真实训练：γ = {cfg['bias_gamma']:g}，seed {cfg['seed']}\n{prov['device']}，"
                  f"用时 {prov['wall_seconds']:.1f} 秒", "small", color=pal.muted)
        note_share = (note.height + 0.3) / self.layout.figure.height
        if self.is_portrait:  # loads, then biases under them; only the lower chart names the experts
            loads_area, bias_area, note_area = self.layout.figure.rows(
                [0.42 * (1 - note_share), 0.58 * (1 - note_share), note_share], gap=0.15)
        else:
            body, note_area = self.layout.figure.rows([1 - note_share, note_share], gap=0.1)
            loads_area, bias_area = self.layout.panels(2, region=body)
        note_area.place(note, align="left")
        n = log["config"]["n_experts"]
        x_ticks = [(float(e), expert_name(e)) for e in range(n)]
        # The bias axis spans round values around the data; which of them get a label depends on the room.
        ticks = covering_ticks(float(biases.min()), float(biases.max()), BIAS_TICKS)
        zero_index = ticks.index(0.0)

        def bias_chart_in(region: Region, stride: int = 1) -> Chart:
            labelled = [v for i, v in enumerate(ticks) if (i - zero_index) % stride == 0]
            return Chart(region, AxisSpec(-0.5, n - 0.5, x_ticks, ""),
                         AxisSpec(ticks[0], ticks[-1], [(v, f"{v:g}".replace("-", "−")) for v in labelled], "偏置 b"))

        # Label every tick, or every 2nd, 3rd…, whatever leaves TICK_SPACING_EM between labels (the plot's height
        # does not depend on the labels).
        spacing = bias_chart_in(bias_area).box.height / (len(ticks) - 1)
        label_em = self.layout.text_em("label")
        stride = next(m for m in range(1, len(ticks)) if m * spacing >= TICK_SPACING_EM * label_em or
                      m == len(ticks) - 1)
        bias_chart = bias_chart_in(bias_area, stride)
        # Portrait is too short for numbers over the load bars here (the captions state them), and only the lower
        # chart names the experts.
        chart, fair = self.share_chart_with_fair_line(loads_area, log, compact=self.is_portrait)
        if self.is_portrait:  # line the two plots up, bar over bar: move each inward to the narrower one's edges
            left, right = max(chart.box.left, bias_chart.box.left), min(chart.box.right, bias_chart.box.right)

            def moved(area: Region, box: Region) -> Region:
                return Region(area.left + left - box.left, area.right + right - box.right, area.bottom, area.top)

            chart, fair = self.share_chart_with_fair_line(moved(loads_area, chart.box), log, compact=True)
            bias_chart = bias_chart_in(moved(bias_area, bias_chart.box), stride)
        bars, step_readout, t, _ = self.play_run(log, chart, pal.value, bar_labels=not self.is_portrait)
        self.place_step_readout(step_readout, chart)
        # The first play runs until the most penalised bias bottoms out, where the caption names it.
        deepest = int(np.argmin(biases.min(axis=1)))
        bias_bars = LiveBars(bias_chart, np.arange(n), lambda: interpolate_rows(biases, t.get_value()), pal.accent,
                             baseline=0.0)
        zero = bias_chart.hline(0.0, pal.muted, dashed=False)

        self.play(FadeIn(chart), FadeIn(fair), FadeIn(bars), FadeIn(step_readout), FadeIn(bias_chart), FadeIn(zero),
                  FadeIn(bias_bars), FadeIn(note), run_time=theme.BEAT)
        self.say("同样的任务，只用偏置")
        self.play(t.animate.set_value(deepest), run_time=CFG.early_play_seconds, rate_func=linear)
        self.say(f"{expert_name(penalised)} 太忙：它的 b\n一路压到 {fmt_num(biases.min())}", color=pal.accent)
        self.play(t.animate.set_value(len(log["history"]) - 1), run_time=CFG.late_play_seconds, rate_func=linear)
        self.say(f"第 {claims['balance_step']} 步起均衡\n最忙/最闲 = {claims['max_over_min']:.2f}×",
                 color=pal.value, hold=True)
        self.say("b 一起涨落不影响挑谁\n要紧的是差值", hold=True)
        bars.clear_updaters()
        bias_bars.clear_updaters()
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def total_vs_active(self):
        self.next_section("671B 与 37B")
        pal = self.palette
        config = DeepSeekV3Config()
        counts = deepseek_v3_parameter_counts(config)
        total, active = counts["total"], counts["active"]
        self.show_title(f"{total / BILLION:.0f}B 与 {active / BILLION:.1f}B")
        self.show_number("deepseek_total", total)
        self.show_number("deepseek_active", active)
        self.show_number("deepseek_active_fraction", active / total)

        if self.is_portrait:
            grid_area, numbers_area = self.layout.figure.rows([0.56, 0.44], gap=0.3)
        else:
            grid_area, numbers_area = self.layout.panels(2)
        # 256 routed experts drawn as one VMobject of squares (cheap to draw), the shared expert beside them; the
        # experts two demo tokens pick are lit on top. Built at unit size, then fitted to the region as one.
        n_routed, cols = config.n_routed_experts, CFG.grid_columns
        rows = int(np.ceil(n_routed / cols))
        fill = 0.84  # square side as a fraction of the grid pitch
        centre = lambda e: np.array([e % cols, -(e // cols), 0.0])
        squares = VMobject(stroke_color=pal.grid, stroke_width=1.0).set_fill(pal.panel, 1)
        for e in range(n_routed):
            h = fill / 2
            corners = [centre(e) + [dx, dy, 0] for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h), (-h, -h))]
            if e == 0:
                squares.set_points_as_corners(corners)
            else:
                squares.start_new_path(corners[0])
                squares.add_points_as_corners(corners[1:])
        shared_cells = 3  # the shared expert drawn 3 pitches wide, so it stands out
        shared = Rectangle(width=shared_cells * fill, height=shared_cells * fill, stroke_width=0)
        shared.set_fill(pal.value, 0.9).move_to([cols + shared_cells / 2, -(rows - 1) / 2, 0])
        rng = np.random.default_rng(CFG.active_demo_seed)
        token_sets = [rng.choice(n_routed, config.num_experts_per_tok, replace=False)
                      for _ in range(CFG.active_demo_tokens)]
        self.show_number("deepseek_demo_active_experts", [sorted(s.tolist()) for s in token_sets])
        lit_sets = [VGroup(*(Rectangle(width=fill, height=fill, stroke_width=0).set_fill(c, 1).move_to(centre(e))
                             for e in chosen)) for chosen, c in zip(token_sets, (pal.query, pal.key))]
        figure = VGroup(squares, shared, *lit_sets)
        label_room = 2.2 * self.layout.text_em("small")
        Region(grid_area.left, grid_area.right, grid_area.bottom + label_room, grid_area.top).fit(figure)
        routed_label = zh(f"{n_routed} 个路由专家", "small", color=pal.muted)
        routed_label.next_to(squares, DOWN, buff=0.15).align_to(squares, LEFT)
        shared_label = zh("共享", "small", color=pal.value).next_to(shared, DOWN, buff=0.15)
        grid = VGroup(squares, shared, routed_label, shared_label)

        total_line = VGroup(zh("总参数", "label", color=pal.muted),
                            LiveNumber(total / BILLION, "{:.1f}B", "title", color=pal.text))
        active_line = VGroup(zh("每个 token 激活", "label", color=pal.muted),
                             LiveNumber(active / BILLION, "{:.1f}B", "title", color=pal.accent))
        for line in (total_line, active_line):
            line.arrange(RIGHT, buff=0.3, aligned_edge=DOWN)
        fraction = zh(f"只占 {active / total:.1%}", "label", color=pal.accent)
        numbers = VGroup(total_line, active_line, fraction).arrange(DOWN, aligned_edge=LEFT, buff=0.35)
        numbers_area.fit(numbers, align="left" if not self.is_portrait else "center")

        self.play(FadeIn(grid), run_time=theme.BEAT)
        self.say(f"DeepSeek-V3 每层：{n_routed} 个\n路由专家 + {config.n_shared_experts} 个共享专家")
        self.play(FadeIn(lit_sets[0], lag_ratio=0.1), Indicate(shared, color=pal.value), run_time=theme.BEAT)
        self.say(f"每个 token 只挑 {config.num_experts_per_tok} 个\n共享专家人人都用", color=pal.query, hold=True)
        self.play(FadeOut(lit_sets[0]), FadeIn(lit_sets[1], lag_ratio=0.1), run_time=theme.BEAT)
        self.say("下一个 token，换一批")
        self.play(FadeIn(total_line), run_time=theme.BEAT)
        self.play(FadeIn(active_line), FadeIn(fraction), run_time=theme.BEAT)
        self.say(f"存的是 {total / BILLION:.0f}B\n算的是 {active / BILLION:.1f}B", color=pal.value, hold=True)
        self.wait(theme.HOLD)
        self.clear_stage()

    def active_breakdown(self):
        self.next_section("激活参数拆开看")
        pal = self.palette
        config = DeepSeekV3Config()
        counts = deepseek_v3_parameter_counts(config)
        parts, active = counts["parts"], counts["active"]
        self.show_title(f"{active / BILLION:.1f}B 里有什么")
        n_moe_layers = config.num_hidden_layers - config.first_k_dense_replace
        expert_params = 3 * config.hidden_size * config.moe_intermediate_size  # gate, up, down projections
        breakdown = [
            (f"{config.num_experts_per_tok} 个路由专家", parts["routed_experts"]["active"], pal.query),
            ("注意力（MLA）", parts["attention"]["active"], pal.key),
            (f"共享专家 + 前 {config.first_k_dense_replace} 层 FFN",
             parts["shared_experts"]["active"] + parts["dense_ffn"]["active"], pal.value),
            ("词表 + 输出头", parts["embedding"]["active"] + parts["output_head"]["active"], pal.extra),
        ]
        breakdown.append(("路由器和 norm", active - sum(v for _, v, _ in breakdown), pal.muted))
        idle_experts = config.n_routed_experts - config.num_experts_per_tok
        idle = parts["routed_experts"]["total"] - parts["routed_experts"]["active"]
        self.show_number("deepseek_active_breakdown", {name: v for name, v, _ in breakdown})
        self.show_number("deepseek_expert_params", expert_params)
        self.show_number("deepseek_idle_routed", idle)

        per_expert = f"3×{config.hidden_size}×{config.moe_intermediate_size} = {expert_params / 1e6:.0f}M 参数"
        how = zh(f"按 config.json 逐项相加\n{n_moe_layers} 个 MoE 层，每个专家\n{per_expert}" if self.is_portrait else
                 f"按 config.json 逐项相加：{n_moe_layers} 个 MoE 层，\n每个专家 {per_expert}", "small", color=pal.muted)
        figure, gap = self.layout.figure, 0.35
        bars_area, note_area = figure.rows([figure.height - how.height - gap, how.height], gap=gap)
        names = [zh(name, "label", color=colour) for name, _, colour in breakdown]
        values = [zh(f"{v / BILLION:.1f}B", "label", color=colour) for _, v, colour in breakdown]
        label_em = self.layout.text_em("label")
        if self.is_portrait:  # name above its bar
            rows = bars_area.rows(len(breakdown), gap=0.1)
            bar_left = bars_area.left
            bar_max = bars_area.width - 3.5 * label_em
        else:  # names in a column, bars to their right
            name_width = max(n.width for n in names) + label_em
            rows = bars_area.rows(len(breakdown), gap=0.1)
            bar_left = bars_area.left + name_width
            bar_max = bars_area.width - name_width - 3.5 * label_em
        largest = max(v for _, v, _ in breakdown)
        bars = VGroup()
        for (name, value, colour), name_mob, value_mob, row in zip(breakdown, names, values, rows):
            bar_h = 0.7 * label_em
            width = max(bar_max * value / largest, 0.03)
            bar = Rectangle(width=width, height=bar_h, stroke_width=0).set_fill(colour, 0.9)
            if self.is_portrait:
                name_mob.move_to(row.point(0, 0.75), aligned_edge=LEFT)
                bar.move_to(row.point(0, 0.25), aligned_edge=LEFT)
            else:
                name_mob.move_to(row.point(0, 0.5), aligned_edge=LEFT)
                bar.move_to([bar_left, row.center[1], 0], aligned_edge=LEFT)
            value_mob.next_to(bar, RIGHT, buff=0.2)
            bars.add(VGroup(name_mob, bar, value_mob))
        note_area.place(how, align="left")

        self.play(FadeIn(bars, lag_ratio=0.2), run_time=theme.SLOW)
        self.say(f"激活的 {active / BILLION:.1f}B：\n注意力每个 token 都要算")
        self.play(FadeIn(how), run_time=theme.QUICK)
        self.wait(theme.HOLD)
        self.say(f"没选中的 {idle_experts} 个专家\n{idle / BILLION:.1f}B：存着，不算", color=pal.accent, hold=True)
        self.wait(theme.HOLD)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
