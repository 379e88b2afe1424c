"""Quantization explainer: integer grids on real weights, memory saved, outliers, accuracy lost, why FP4 is a float.

Render: ``manim -qh scenes/quantization.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/quantization.py`` (9:16).
Every weight, scale, code, error and accuracy comes from the committed run of ``scripts/quantize_translator.py``
(``shared.runs.load_quant_run``: the trained tiny translator quantized with ``shared/math/quant.py``); the memory of
Llama-3-8B from ``shared.math.model_configs`` and ``shared.math.quant.quantized_model_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import (
    DOWN,
    LEFT,
    DashedLine,
    RIGHT,
    UP,
    Dot,
    FadeIn,
    Indicate,
    Line,
    Rectangle,
    ReplacementTransform,
    VGroup,
)

from shared import theme
from shared.layout import Region
from shared.math.model_configs import MODEL_CONFIGS, parameter_count
from shared.math.quant import fp4_e2m1_values, quantized_model_bytes
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.numbers import fill, num, term
from shared.runs import load_quant_run, quant_setting, short_device_name
from shared.scene import ExplainerScene, crossfade
from shared.text import formula, zh

PERCENT = 100


@dataclass(frozen=True)
class QuantConfig:
    """What the explainer reads and the published facts it cites."""

    run: str = "translator"  # media/runs/quant/translator.json
    memory_model: str = "Llama-3-8B"
    memory_bits: tuple[int, ...] = (32, 16, 8, 4)  # FP32, FP16, INT8, INT4
    memory_group: int = 128  # weights per scale in GPTQ / AWQ INT4 checkpoints (shared.math.quant.quantize_groupwise)
    scale_bytes: int = 2  # one FP16 scale per group
    # Dettmers et al. 2022, "LLM.int8()" (arXiv 2208.07339) §1: "large features with magnitudes up to 20x larger than
    # in other dimensions first appear in about 25% of all transformer layers [...]. At around 6.7B parameters, a
    # phase shift occurs, and all transformer layers and 75% of all sequence dimensions are affected by extreme
    # magnitude features." These are features of the hidden states (activations).
    llm_int8_magnitude: int = 20
    llm_int8_params_b: float = 6.7
    # NVIDIA technical blog "Introducing NVFP4 for Efficient and Accurate Low-Precision Inference" (2025): Blackwell's
    # NVFP4 stores E2M1 values with one FP8 E4M3 scale per 16-value micro-block (plus an FP32 per-tensor scale).
    nvfp4_block: int = 16


CFG = QuantConfig()
FORMAT_NAMES = {"int8": "INT8", "fp8_e4m3fn": "E4M3", "fp8_e5m2": "E5M2", "int4": "INT4", "fp4_e2m1": "FP4",
                "int3": "INT3", "int2": "INT2"}  # fmt: skip
GRANULARITY_NAMES = {"tensor": "每张量", "channel": "每通道", "group": "每组"}


def keep_inside(mob, region: Region):
    """Shift ``mob`` sideways just enough to lie within ``region``'s width; returns it."""
    mob.shift(RIGHT * max(region.left - mob.get_left()[0], 0) + LEFT * max(mob.get_right()[0] - region.right, 0))
    return mob


class NumberLine(VGroup):
    """A horizontal axis in ``region`` for values in [−half_width, half_width]: ticks for grid levels, dots for
    weights."""

    def __init__(self, region: Region, half_width: float, y: float, **kwargs):
        super().__init__(**kwargs)
        self.region, self.half_width, self.y = region, half_width, y
        self.add(Line([region.left, y, 0], [region.right, y, 0], color=theme.palette().muted,
                      stroke_width=theme.STROKE_THIN))  # fmt: skip

    def x(self, value: float) -> float:
        return self.region.center[0] + value / self.half_width * self.region.width / 2

    def point(self, value: float, dy: float = 0.0) -> np.ndarray:
        return np.array([self.x(value), self.y + dy, 0.0])

    def ticks(self, levels, height: float, color, stroke_width: float = theme.STROKE_THIN) -> VGroup:
        return VGroup(*(Line(self.point(v, -height / 2), self.point(v, height / 2), color=color,
                             stroke_width=stroke_width) for v in levels))  # fmt: skip

    def dots(self, values, dy: float, color, radius: float = 0.06) -> VGroup:
        return VGroup(*(Dot(self.point(v, dy), radius=radius, color=color) for v in values))

    def connectors(self, values, landed, dy: float, color, stroke_width: float = theme.STROKE_THIN) -> VGroup:
        """A line from each value (drawn ``dy`` above the axis) down to where it lands on the axis."""
        return VGroup(*(Line(self.point(v, dy), self.point(q, 0), color=color, stroke_width=stroke_width)
                        for v, q in zip(values, landed)))  # fmt: skip


class Quantization(ExplainerScene):
    """Quantization on the real weights of the tiny translator, linked to Llama-3-8B, LLM.int8() and Blackwell."""

    def construct(self):
        self.log = load_quant_run(CFG.run)
        self.what_is_quantization()
        self.memory()
        self.outlier()
        self.per_channel_and_group()
        self.accuracy()
        self.why_float()

    # --- shared pieces ---------------------------------------------------------------------------------------------

    def run_note(self):
        """Small print: where the numbers come from."""
        prov = self.log["provenance"]
        return self.fine_print(fill("真实权重，{n_quantized} 个参与量化\n{device}，实测 {wall_seconds:.0f} 秒",
                                    n_quantized=self.log["parameters"]["quantized"],
                                    device=term(short_device_name(prov["device"])),
                                    wall_seconds=prov["wall_seconds"]))  # fmt: skip

    def figure_and_note(self, note):
        """The figure region, less a strip at the bottom for the small print when there is one."""
        return self.note_under(self.layout.figure, note, gap=0.15)

    @property
    def side_by_side(self) -> bool:
        """Whether the figure is wide enough for two panels side by side (16:9), else they stack (9:16, 3:4, 1:1)."""
        figure = self.layout.figure
        return figure.width > 1.8 * figure.height

    def split(self, region: Region, weights, gap: float) -> list[Region]:
        """Two panels: columns when :attr:`side_by_side`, else rows."""
        return region.cols(weights, gap=gap) if self.side_by_side else region.rows(weights, gap=gap)

    @property
    def readout_role(self) -> str:
        """Text beside a figure reads at body size; under a stacked figure it is a label, so the figure keeps room."""
        return "body" if self.side_by_side else "label"

    def beside(self, region: Region, block, gap: float) -> Region:
        """Put the text ``block`` at its own size on the right of ``region`` (side by side) or at its bottom
        (stacked); return what is left of ``region`` for the figure."""
        if self.side_by_side:
            block.move_to([region.right - block.width / 2, region.center[1], 0])
            return Region(region.left, region.right - block.width - gap, region.bottom, region.top)
        block.move_to([region.center[0], region.bottom + block.height / 2, 0])
        return Region(region.left, region.right, region.bottom + block.height + gap, region.top)

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def what_is_quantization(self):
        self.next_section("量化是什么")
        pal = self.palette
        line_log = self.log["number_line"]
        weights = self.plotted("row_weights", np.array(line_log["weights"]))
        q8, q4 = line_log["int8"], line_log["int4"]
        self.show_title("量化是什么？")
        note = self.run_note()
        figure = self.figure_and_note(note)
        rule = formula('q = "clamp"("round"(w \\/ s) + z)', "body")
        figure.place(rule, align="top")
        figure = Region(figure.left, figure.right, figure.bottom, rule.get_bottom()[1] - 0.3)
        readouts = VGroup(
            zh(fill("{fmt}：s = {int8_scale:.5f}，误差≤{int8_max_error:.5f}", fmt=term("INT8"),
                    int8_scale=q8["scale"], int8_max_error=q8["max_abs_error"]), self.readout_role, color=pal.muted,
               prose=False),
            zh(fill("{fmt}：s = {int4_scale:.4f}，误差≤{int4_max_error:.4f}", fmt=term("INT4"),
                    int4_scale=q4["scale"], int4_max_error=q4["max_abs_error"]), self.readout_role, color=pal.key,
               prose=False),
        )  # fmt: skip
        readouts.arrange(DOWN, aligned_edge=LEFT, buff=0.35)
        middle = self.beside(figure, readouts, gap=0.5)
        source = zh(fill("真实权重：编码器 W_Q 第 {example_row} 行", example_row=line_log["channel"]), "label",
                    color=pal.query)
        middle.place(source, align="top")
        lane = Region(middle.left, middle.right, middle.bottom, source.get_bottom()[1] - 0.15)
        below = 0.35 + 1.3 * self.layout.text_em("label")  # room under the axis for the code labels
        axis = NumberLine(lane, 1.1 * (-q4["qmin"]) * q4["scale"], lane.bottom + max(0.3 * lane.height, below))
        lift = lane.top - 0.15 - axis.y
        originals = axis.dots(weights, lift, pal.query, radius=0.08)
        int8_ticks = axis.ticks([k * q8["scale"] for k in range(q8["qmin"], q8["qmax"] + 1)], 0.16, pal.muted, 1.0)
        int4_levels = [k * q4["scale"] for k in range(q4["qmin"], q4["qmax"] + 1)]
        int4_ticks = axis.ticks(int4_levels, 0.4, pal.key, theme.STROKE)
        code_labels = VGroup(*(zh(num(f"int4_code_label[{k}]", k), "label", color=pal.key)
                               .next_to(axis.point(k * q4["scale"], -0.2), DOWN, buff=0.08)
                               for k in (q4["qmin"], 0, q4["qmax"])))  # fmt: skip
        to_int8 = axis.connectors(weights, q8["dequantized"], lift, pal.muted)
        to_int4 = axis.connectors(weights, q4["dequantized"], lift, pal.accent)
        landed = axis.dots(q4["dequantized"], 0, pal.accent, radius=0.07)
        (clamped,) = [i for i, (a, b) in enumerate(zip(q4["unclamped_codes"], q4["codes"])) if a != b][:1]
        unclamped = q4["unclamped_codes"][clamped]
        ghost = DashedLine(axis.point(unclamped * q4["scale"], -0.2), axis.point(unclamped * q4["scale"], 0.2),
                           color=pal.warning, stroke_width=theme.STROKE)  # fmt: skip
        ghost_label = zh(num("int4_unclamped_code", unclamped), "label", color=pal.warning)
        ghost_label.next_to(ghost, DOWN, buff=0.08)
        levels = q8["qmax"] - q8["qmin"] + 1, q4["qmax"] - q4["qmin"] + 1
        error_ratio = q4["max_abs_error"] / q8["max_abs_error"]

        with self.voice("先给标准答案：量化就是给每个权重找最近的一个整数格子，只存格子的编号 q，用的时候再乘回缩放 s。"):
            self.play(FadeIn(rule), FadeIn(axis), FadeIn(originals, lag_ratio=0.05), FadeIn(source), FadeIn(note),
                      run_time=theme.BEAT)
            self.say(fill("只存编号 q 和缩放 s\n对称量化：零点 z = {int4_zero_point}", int4_zero_point=q4["zero_point"]))
        with self.voice(fill("{fmt} 有 {int8_levels} 个格子，密得几乎贴着每个权重，最大误差只有 {int8_max_error:.5f}。",
                             fmt=term("INT8"), int8_levels=levels[0], int8_max_error=q8["max_abs_error"])):
            self.play(FadeIn(int8_ticks), FadeIn(to_int8), FadeIn(readouts[0]), run_time=theme.BEAT)
            self.say(fill("{fmt}：{int8_levels} 格，几乎没挪", fmt=term("INT8"), int8_levels=levels[0]))
            self.wait(theme.QUICK)
        with self.voice(fill("{fmt} 只有 {int4_levels} 个格子，每个权重都要挪到最近的格子上，误差大了 {error_ratio:.0f} 倍。"
                             "这里是对称量化，零点 z 取 {int4_zero_point}。", fmt=term("INT4"), int4_levels=levels[1],
                             error_ratio=error_ratio, int4_zero_point=q4["zero_point"])):  # fmt: skip
            self.play(FadeIn(int4_ticks), FadeIn(code_labels), ReplacementTransform(to_int8, to_int4),
                      FadeIn(landed), FadeIn(readouts[1]), run_time=theme.SLOW)
            self.say(fill("{fmt}：{int4_levels} 格\n误差大了 {error_ratio:.0f} 倍", fmt=term("INT4"), int4_levels=levels[1],
                          error_ratio=error_ratio), color=pal.key)
        with self.voice(fill("最大的那个权重除以 s 正好是 {clamped_over_scale:.1f}，四舍五入成 {unclamped}，超出了上限 "
                             "{qmax}，只能截到 {qmax}：这就是截断。", clamped_over_scale=weights[clamped] / q4["scale"],
                             unclamped=unclamped,
                             qmax=q4["qmax"])):  # fmt: skip
            self.play(FadeIn(ghost), FadeIn(ghost_label), to_int4[clamped].animate.set_color(pal.warning),
                      Indicate(originals[clamped], color=pal.warning, scale_factor=1.6), run_time=theme.SLOW)
            self.say(fill("w/s = {clamped_over_scale:.1f} → {unclamped}\n超出 {qmax}，截成 {qmax}",
                          clamped_over_scale=weights[clamped] / q4["scale"],
                          unclamped=unclamped, qmax=q4["qmax"]), color=pal.warning, hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def memory(self):
        self.next_section("省几倍显存")
        pal = self.palette
        cfg = MODEL_CONFIGS[CFG.memory_model]
        n = parameter_count(cfg)
        gb = {bits: quantized_model_bytes(n, bits) / 1e9 for bits in CFG.memory_bits}
        int4_bits = min(CFG.memory_bits)
        with_scales = quantized_model_bytes(n, int4_bits, CFG.memory_group, CFG.scale_bytes) / 1e9
        fp32 = gb[max(CFG.memory_bits)]
        names = {32: "FP32", 16: "FP16", 8: "INT8", 4: "INT4"}
        self.show_title("能省几倍显存？")
        figure = self.layout.figure
        bits_per_weight = int4_bits + 8 * CFG.scale_bytes / CFG.memory_group
        ratio = fp32 / with_scales
        role = self.readout_role
        lines = VGroup(  # the figure's readouts (prose=False: they are not paragraphs to read)
            zh(fill("每个权重 {fp32_bits} 位 → {int4_bits} 位", fp32_bits=max(CFG.memory_bits), int4_bits=int4_bits),
               role, color=pal.query, prose=False),
            zh(fill("每 {group} 个权重一个 {fp16} 缩放\n= {bits_per_weight:.3f} 位/权重", group=CFG.memory_group,
                    fp16=term("FP16"), bits_per_weight=bits_per_weight), role, color=pal.accent, prose=False),
            zh(fill("实际省 {memory_ratio:.2f} 倍", memory_ratio=ratio), role, color=pal.value, prose=False),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        chart_area = self.beside(figure, lines, gap=0.5)
        xs = np.arange(len(CFG.memory_bits))
        top = float(np.ceil(fp32 / 10) * 10)
        tick_step = 10 if self.side_by_side else 20  # a stacked chart is short: fewer ticks keep their labels apart
        chart = Chart(chart_area,
                      AxisSpec(-0.6, len(xs) - 0.4, [(float(x), term(names[b])) for x, b in zip(xs, CFG.memory_bits)]),
                      AxisSpec(0, top, numeric_ticks("gb_tick", np.arange(0, top + 1, tick_step)),
                               fill("{model} 权重（GB）", model=term(cfg.name))))  # fmt: skip
        heights = self.plotted("memory_gb", [gb[b] for b in CFG.memory_bits])
        bars = chart.bars(xs, heights, pal.query)
        labels = VGroup(*(zh(num(f"memory_gb[{names[b]}]", gb[b], "{:.1f}"), "label", color=pal.text)
                          .next_to(bar, UP, buff=0.1) for b, bar in zip(CFG.memory_bits, bars)))  # fmt: skip
        int4_bar = bars[-1]
        scales_part = self.plotted("memory_int4_scales_gb", with_scales - gb[int4_bits])
        scale_bar = Rectangle(width=int4_bar.width, height=max(scales_part / top * chart.box.height, 0.03),
                              stroke_width=0).set_fill(pal.accent, 0.95)  # fmt: skip
        scale_bar.next_to(int4_bar, UP, buff=0)
        new_label = zh(num("memory_gb[INT4+scales]", with_scales, "{:.2f}"), "label", color=pal.accent)
        new_label.next_to(scale_bar, UP, buff=0.1)

        with self.voice(fill("先给答案：{fp32} 每个权重占 {fp32_bits} 位，{int4} 只占 {int4_bits} 位，编号本身就小了 "
                             "{bits_ratio} 倍。", fp32=term("FP32"), int4=term("INT4"), fp32_bits=max(CFG.memory_bits),
                             int4_bits=int4_bits, bits_ratio=max(CFG.memory_bits) // int4_bits)):  # fmt: skip
            self.play(FadeIn(chart), FadeIn(bars, lag_ratio=0.2), FadeIn(labels, lag_ratio=0.2), FadeIn(lines[0]),
                      run_time=theme.SLOW)
            self.say(fill("{fp32_bits} 位 → {int4_bits} 位：{bits_ratio} 倍", fp32_bits=max(CFG.memory_bits),
                          int4_bits=int4_bits, bits_ratio=max(CFG.memory_bits) // int4_bits))  # fmt: skip
        with self.voice(fill("可是缩放也要存：每 {group} 个权重一个 {fp16} 缩放，平均每个权重 {bits_per_weight:.3f} 位，"
                             "所以实际省 {memory_ratio:.2f} 倍，不是整 {bits_ratio} 倍。", group=CFG.memory_group,
                             fp16=term("FP16"), bits_per_weight=bits_per_weight, memory_ratio=ratio,
                             bits_ratio=max(CFG.memory_bits) // int4_bits)):  # fmt: skip
            self.play(FadeIn(scale_bar, shift=0.2 * UP), crossfade(labels[-1], new_label, match=False),
                      FadeIn(lines[1:]), run_time=theme.BEAT)
            self.say(fill("加上缩放：省 {memory_ratio:.2f} 倍", memory_ratio=ratio), color=pal.value)
            self.wait(theme.HOLD)
        with self.voice(fill("放到 {model} 上：{n_params_b:.2f}B 个参数，{fp32} 要 {fp32_gb:.1f} GB，量化成 {int4} 只要 "
                             "{int4_gb:.2f} GB。", model=term(cfg.name), n_params_b=n / 1e9, fp32=term("FP32"),
                             fp32_gb=fp32, int4=term("INT4"), int4_gb=with_scales)):  # fmt: skip
            self.play(Indicate(new_label, color=pal.value), run_time=theme.BEAT)
            self.say(fill("{fp32_gb:.1f} GB → {int4_gb:.2f} GB", fp32_gb=fp32, int4_gb=with_scales), color=pal.value,
                     hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def outlier(self):
        self.next_section("异常值")
        pal = self.palette
        demo = self.log["outlier"]
        row = np.array(demo["row"])
        j = demo["input"]
        stretched = row.copy()
        stretched[j] = demo["value"]
        self.plotted("outlier_row", {"before": row, "after": stretched})
        before, after = demo["without_outlier"]["tensor"], demo["with_outlier"]["tensor"]
        n_others = len(row) - 1
        (landing_code,) = {c for i, c in enumerate(after["codes"]) if i != j}  # every other weight on one code
        matrix_others = int(np.prod(self.log["matrices"][demo["matrix"]]["shape"])) - 1
        self.show_title("一个异常值")
        note = self.run_note()
        figure = self.figure_and_note(note)
        source = zh(fill("真实权重：解码器 FFN {w2} 第 {outlier_row} 行", w2=term("W2"), outlier_row=demo["channel"]),
                    "label",
                    color=pal.query)  # fmt: skip
        figure.place(source, align="top")
        lanes = Region(figure.left, figure.right, figure.bottom, source.get_bottom()[1] - 0.25).rows(2, gap=0.35)

        def lane(region: Region, values, entry: dict, key: str, title: str, color):
            """One row of weights quantized to INT4 per tensor: title, grid, weights, their roads to the grid."""
            head = zh(title, "label", color=color)
            region.place(head, align="top")
            area = Region(region.left, region.right, region.bottom, head.get_bottom()[1] - 0.15)
            scale = entry["scales"][0]
            # the grid's end values sit left and right of the axis, so the weights above it get the height
            ends = [zh(num(f"{key}_grid_end[{k}]", k * scale, "{:.2f}"), "label", color=pal.muted) for k in (-8, 7)]
            room = max(e.width for e in ends) + 0.15
            axis = NumberLine(area.inset(room, 0), 1.04 * 8 * scale, area.bottom + 0.25)
            ends[0].next_to(axis.point(-1.04 * 8 * scale), LEFT, buff=0.1)
            ends[1].next_to(axis.point(1.04 * 8 * scale), RIGHT, buff=0.1)
            ends = VGroup(*ends)
            lift = area.top - 0.1 - axis.y
            landed = np.array(entry["codes"]) * scale
            dots = axis.dots(values, lift, pal.query, radius=0.05)
            dots[j].set_color(pal.warning)
            roads = axis.connectors(values, landed, lift, pal.accent, stroke_width=1.5)
            grid = VGroup(axis, axis.ticks([k * scale for k in range(-8, 8)], 0.32, pal.key, theme.STROKE), ends)
            return head, grid, dots, roads

        top = lane(lanes[0], row, before, "without_outlier",
                   fill("无异常值：用 {codes_before} 格，误差 {error_before:.1f}%",
                        codes_before=before["codes_used_by_row_others"],
                        error_before=before["row_others_relative_rms_error"] * PERCENT), pal.key)  # fmt: skip
        bottom = lane(lanes[1], stretched, after, "with_outlier",
                      fill("人为 ×{factor:g}：剩 {codes_after} 格，误差 {error_after:.1f}%", factor=demo["factor"],
                           codes_after=after["codes_used_by_row_others"],
                           error_after=after["row_others_relative_rms_error"] * PERCENT), pal.warning)  # fmt: skip

        with self.voice("先给答案：一个特别大的权重，会把整张表共用的格子撑大，其他权重全被挤进同一格。"):
            self.play(FadeIn(source), FadeIn(top[1]), FadeIn(top[2], lag_ratio=0.02), FadeIn(note), run_time=theme.BEAT)
            self.play(FadeIn(top[3]), FadeIn(top[0]), run_time=theme.BEAT)
            self.say("整张表共用一个缩放 s")
        with self.voice(fill("人为把这一行最大的权重放大 {factor:g} 倍：格子被撑大，其余 {n_others} 个权重全落在 "
                             "{landing_code} 这一格，整个矩阵只剩 {matrix_codes} 格可用，误差 {matrix_error:.1f}%。",
                             factor=demo["factor"], n_others=n_others, landing_code=landing_code,
                             matrix_codes=after["codes_used_by_matrix_others"],
                             matrix_error=after["matrix_others_relative_rms_error"] * PERCENT)):  # fmt: skip
            self.play(FadeIn(bottom[1]), FadeIn(bottom[2]), run_time=theme.BEAT)
            self.play(FadeIn(bottom[3]), FadeIn(bottom[0]), run_time=theme.BEAT)
            self.say(fill("整个矩阵其余 {matrix_others} 个\n只用 {matrix_codes} 格", matrix_others=matrix_others,
                          matrix_codes=after["codes_used_by_matrix_others"]), color=pal.warning)
            self.wait(theme.HOLD)
        max_sigma = max(m["max_over_std"] for m in self.log["matrices"].values())
        with self.voice(fill("大模型真有这种值：{paper} 论文发现，约 {params_b:g}B 参数起，每一层的隐藏状态都有"
                             "比其他维大到 {magnitude} 倍的异常特征。我们的小模型没有，最大的权重不到 {max_sigma:.1f} "
                             "个标准差。", paper=term("LLM.int8()"), params_b=CFG.llm_int8_params_b,
                             magnitude=CFG.llm_int8_magnitude, max_sigma=max_sigma)):  # fmt: skip
            self.say(fill("{paper}：约 {params_b:g}B 起\n异常特征大到 {magnitude} 倍", paper=term("LLM.int8()"),
                          params_b=CFG.llm_int8_params_b, magnitude=CFG.llm_int8_magnitude), color=pal.warning,
                     hold=True)  # fmt: skip
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def per_channel_and_group(self):
        self.next_section("按通道与分组")
        pal = self.palette
        demo = self.log["outlier"]
        group_size = self.log["config"]["group_size"]
        channels, inputs = self.log["matrices"][demo["matrix"]]["shape"]
        self.show_title("按通道、按组")
        figure = self.layout.figure
        matrix_area, chart_area = self.split(figure, [0.42, 0.58] if self.side_by_side else [0.3, 0.7], gap=0.4)
        # The matrix as a grid of channels × inputs; the block that shares the outlier's scale is painted.
        caption_room = 1.6 * self.layout.text_em("label")
        box_region = Region(matrix_area.left, matrix_area.right, matrix_area.bottom + caption_room, matrix_area.top)
        cell = min(box_region.width / inputs, box_region.height / channels)
        origin = box_region.center + np.array([-inputs * cell / 2, channels * cell / 2, 0])

        def cell_rect(row0, rows, col0, cols, color, opacity):
            rect = Rectangle(width=cols * cell, height=rows * cell, stroke_width=0).set_fill(color, opacity)
            return rect.move_to(origin + np.array([(col0 + cols / 2) * cell, -(row0 + rows / 2) * cell, 0]))

        frame = cell_rect(0, channels, 0, inputs, pal.panel, 1.0).set_stroke(pal.muted, theme.STROKE_THIN)
        c, j = demo["channel"], demo["input"]
        group0 = j // group_size * group_size
        damage = {"tensor": cell_rect(0, channels, 0, inputs, pal.warning, 0.55),
                  "channel": cell_rect(c, 1, 0, inputs, pal.warning, 0.55),
                  "group": cell_rect(c, 1, group0, group_size, pal.warning, 0.55)}  # fmt: skip
        outlier_dot = Dot(origin + np.array([(j + 0.5) * cell, -(c + 0.5) * cell, 0]), radius=min(0.6 * cell, 0.05),
                          color=pal.text)  # fmt: skip
        shape_label = zh(fill("{w2}：{channels} 通道 × {inputs} 输入", w2=term("W2"), channels=channels, inputs=inputs),
                         "label",
                         color=pal.muted).next_to(frame, DOWN, buff=0.15)  # fmt: skip

        granularities = ("tensor", "channel", "group")
        errors = {label: [demo[label][g]["matrix_others_relative_rms_error"] * PERCENT for g in granularities]
                  for label in ("without_outlier", "with_outlier")}  # fmt: skip
        self.plotted("others_error_percent", errors)
        legend = VGroup(zh("无异常值", "label", color=pal.muted), zh("有异常值", "label", color=pal.warning))
        if self.side_by_side:
            legend.arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        else:
            legend.arrange(RIGHT, buff=0.5)
        chart_area = self.beside(chart_area, legend, gap=0.3)
        chart = Chart(chart_area,
                      AxisSpec(-0.6, 2.6, [(float(i), GRANULARITY_NAMES[g]) for i, g in enumerate(granularities)]),
                      AxisSpec(0, PERCENT, numeric_ticks("error_tick", [0, 50, 100], "{:g}%"), "其余权重的误差"))
        xs = np.arange(3)
        width = 0.3 * (chart.c2p(1, 0)[0] - chart.c2p(0, 0)[0])
        plain = chart.bars(xs - 0.18, errors["without_outlier"], pal.muted, width=width)
        hit = chart.bars(xs + 0.18, errors["with_outlier"], pal.warning, width=width)
        values = VGroup(*(zh(num(f"others_error_with_outlier[{g}]", e, "{:.1f}"), "label", color=pal.warning)
                          .next_to(bar, UP, buff=0.08) for g, e, bar in zip(granularities, errors["with_outlier"],
                                                                            hit)))  # fmt: skip

        with self.voice("先给答案：别让整张表共用一个缩放。一个异常值，只该祸害和它共用缩放的那一块。"):
            self.play(FadeIn(frame), FadeIn(outlier_dot), FadeIn(shape_label), FadeIn(chart), FadeIn(plain),
                      FadeIn(legend), run_time=theme.BEAT)
            self.play(FadeIn(damage["tensor"]), FadeIn(hit[0]), FadeIn(values[0]), run_time=theme.BEAT)
            self.say("每张量：整张表都毁了", color=pal.warning)
        with self.voice(fill("每个通道一个缩放，只毁掉它那一行，其余权重的误差降到 {channel_error:.1f}%。",
                             channel_error=errors["with_outlier"][1])):
            self.play(ReplacementTransform(damage["tensor"], damage["channel"]), FadeIn(hit[1]), FadeIn(values[1]),
                      run_time=theme.BEAT)
            self.say("每通道：只毁一行", color=pal.key)
        with self.voice(fill("每 {group_size} 个权重一组一个缩放，只毁掉它那一组，误差 {group_error:.1f}%。真实的 "
                             "{int4} 模型常用每 {real_group} 个一组。", group_size=group_size,
                             group_error=errors["with_outlier"][2], int4=term("INT4"),
                             real_group=CFG.memory_group)):  # fmt: skip
            self.play(ReplacementTransform(damage["channel"], damage["group"]), FadeIn(hit[2]), FadeIn(values[2]),
                      run_time=theme.BEAT)
            self.say(fill("每 {group_size} 个一组：只毁一组", group_size=group_size), color=pal.value, hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def accuracy(self):
        self.next_section("精度损失在哪")
        pal = self.palette
        log = self.log
        formats = list(FORMAT_NAMES)
        granularities = ("tensor", "channel", "group")
        colors = {"tensor": pal.warning, "channel": pal.key, "group": pal.value}
        self.show_title("精度损失在哪？")
        note = self.run_note()
        figure = self.figure_and_note(note)
        legend = VGroup(*(zh(GRANULARITY_NAMES[g], "label", color=colors[g]) for g in granularities))
        legend.arrange(RIGHT, buff=0.5)
        if self.side_by_side:
            legend.arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        int4 = quant_setting(log, "int4", "tensor")
        int3 = quant_setting(log, "int3", "tensor")
        int2 = quant_setting(log, "int2", "tensor")
        base = log["baseline"]
        n_test = log["config"]["n_test"]
        int3_wrong = round((1 - int3["test_exact_match"]) * n_test)
        int2_right = round(int2["test_exact_match"] * n_test)
        loss_ratio = int4["test_loss"] / base["test_loss"]
        text = legend
        chart_area = self.beside(figure, text, gap=0.3)
        exact = {g: [quant_setting(log, f, g)["test_exact_match"] * PERCENT for f in formats] for g in granularities}
        self.plotted("exact_match_percent", exact)
        # Format names under the bars, every other one a line lower when side by side they would touch.
        label_em = self.layout.text_em("label")
        names = [zh(term(FORMAT_NAMES[f]), "label", color=pal.muted) for f in formats]
        plot_area = Region(chart_area.left, chart_area.right, chart_area.bottom + 2.8 * label_em, chart_area.top)
        chart = Chart(plot_area, AxisSpec(-0.6, len(formats) - 0.4, [(float(i), "") for i in range(len(formats))]),
                      AxisSpec(0, PERCENT, numeric_ticks("exact_tick", [0, 50, 100], "{:g}%"),
                               fill("测试句子全对（{n_test} 句）", n_test=log["config"]["n_test"])))  # fmt: skip
        xs = np.arange(len(formats))
        staggered = max(m.width for m in names) + 0.4 * label_em > chart.c2p(1, 0)[0] - chart.c2p(0, 0)[0]
        for i, name in enumerate(names):
            drop = (0.6 + (1.3 if staggered and i % 2 else 0)) * label_em
            name.move_to(chart.c2p(i, 0) + DOWN * drop, aligned_edge=UP)
        chart.add(*names)
        step = chart.c2p(1, 0)[0] - chart.c2p(0, 0)[0]
        bars = VGroup(*(chart.bars(xs + (k - 1) * 0.27, exact[g], colors[g], width=0.25 * step)
                        for k, g in enumerate(granularities)))  # fmt: skip

        bits = {f: quant_setting(log, f, "tensor")["bits"] for f in ("int8", "int4", "int3", "int2")}
        with self.voice(fill("先给答案：在这个小模型上，{int8_bits} 位和 {int4_bits} 位，整数和浮点都一句没错；"
                             "{int3_bits} 位开始出错，{int2_bits} 位彻底崩溃。", int8_bits=bits["int8"],
                             int4_bits=bits["int4"], int3_bits=bits["int3"], int2_bits=bits["int2"])):
            self.play(FadeIn(chart), FadeIn(legend), FadeIn(note), run_time=theme.QUICK)
            self.play(*(FadeIn(b, shift=0.2 * UP, lag_ratio=0.05) for b in bars), run_time=theme.SLOW)
        with self.voice(fill("量化不是免费午餐。{int4} 每张量，权重误差 {int4_error:.1f}%，句子虽然全对，loss 却是原来的 "
                             "{loss_ratio:.1f} 倍：损失先藏在模型的把握里。", int4=term("INT4"),
                             int4_error=int4["relative_rms_error"] * PERCENT,
                             loss_ratio=loss_ratio)):  # fmt: skip
            self.say(fill("{int4} 每张量：句子全对\nloss 却变 {loss_ratio:.1f} 倍", int4=term("INT4"),
                          loss_ratio=loss_ratio), color=pal.key)
            self.wait(theme.HOLD)
        with self.voice(fill("再少一位就露出来了：{int3} 每张量错了 {int3_wrong} 句，{int2} 一句都翻不对。按通道、分组"
                             "能救回一部分。", int3=term("INT3"),
                             int3_wrong=int3_wrong, int2=term("INT2"))):  # fmt: skip
            self.say(fill("{int3} 每张量：错 {int3_wrong} 句\n{int2} 每张量：对 {int2_right} 句", int3=term("INT3"),
                          int3_wrong=int3_wrong, int2=term("INT2"), int2_right=int2_right), color=pal.warning,
                     hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def why_float(self):
        self.next_section("为什么是浮点")
        pal = self.palette
        grids = self.log["grids"]
        finer = grids["fp4_finer_below"]
        int4 = {g: quant_setting(self.log, "int4", g)["relative_rms_error"] * PERCENT for g in ("tensor", "group")}
        fp4 = {g: quant_setting(self.log, "fp4_e2m1", g)["relative_rms_error"] * PERCENT for g in ("tensor", "group")}
        self.show_title(fill("{fp4} 为什么是浮点？", fp4=term("FP4")))
        figure = self.layout.figure
        def readout(granularity: str, label: str):
            return zh(fill(label + "\n{share:.0f}% 的权重在密区\n误差 {fp4}：{fp4_error:.1f}%　{int4}：{int4_error:.1f}%",
                           prefix=f"{granularity}_", share=grids[granularity]["share_fp4_finer"] * PERCENT,
                           fp4=term("FP4"), fp4_error=fp4[granularity], int4=term("INT4"),
                           int4_error=int4[granularity]), self.readout_role, prose=False)  # fmt: skip

        per_tensor = readout("tensor", "整张量一个缩放")
        per_group = readout("group", fill("每 {group_size} 个一组", group_size=self.log["config"]["group_size"]))
        slot = Rectangle(width=max(per_tensor.width, per_group.width), height=max(per_tensor.height, per_group.height))
        grid_area = self.beside(figure, slot, gap=0.4)
        for text in (per_tensor, per_group):
            text.move_to(slot, aligned_edge=LEFT if self.side_by_side else UP)
        label_em = self.layout.text_em("label")
        rows = grid_area.rows([0.2, 0.2, 0.6], gap=0.1)
        label_width = 3.2 * label_em
        lanes = [Region(r.left + label_width, r.right, r.bottom, r.top) for r in rows]
        fp4_line = NumberLine(lanes[0], 1.05, lanes[0].center[1])
        int4_line = NumberLine(lanes[1], 1.05, lanes[1].center[1])
        fp4_levels = np.unique(fp4_e2m1_values()) / np.max(fp4_e2m1_values())
        int4_levels = np.arange(-8, 8) * grids["int4_step"]
        fp4_ticks = fp4_line.ticks(fp4_levels, 0.45, pal.value, theme.STROKE)
        int4_ticks = int4_line.ticks(int4_levels, 0.45, pal.key, theme.STROKE)
        names = VGroup(zh(term("FP4"), "label", color=pal.value).next_to(fp4_line.point(-1.05), LEFT, buff=0.2),
                       zh(term("INT4"), "label", color=pal.key).next_to(int4_line.point(-1.05), LEFT, buff=0.2))
        band = Rectangle(width=int4_line.x(finer) - int4_line.x(-finer), height=rows[0].top - rows[2].bottom,
                         stroke_width=0).set_fill(pal.value, 0.12)  # fmt: skip
        band.move_to([int4_line.x(0), (rows[0].top + rows[2].bottom) / 2, 0])
        hist_line = NumberLine(lanes[2], 1.05, lanes[2].bottom + 1.4 * label_em)  # the end labels go under it
        bins = np.array(grids["bins"])

        def histogram(granularity: str) -> VGroup:
            counts = np.array(self.plotted(f"histogram_{granularity}", grids[granularity]["histogram"]), dtype=float)
            tallest = counts.max()
            group = VGroup()
            for left, right, count in zip(bins[:-1], bins[1:], counts):
                height = max(count / tallest * (lanes[2].top - hist_line.y) * 0.95, 0.01)
                rect = Rectangle(width=hist_line.x(right) - hist_line.x(left), height=height,
                                 stroke_width=1, stroke_color=pal.background).set_fill(pal.query, 0.8)  # fmt: skip
                group.add(rect.move_to([(hist_line.x(left) + hist_line.x(right)) / 2, hist_line.y + height / 2, 0]))
            return group

        hist_tensor, hist_group = histogram("tensor"), histogram("group")
        ends = VGroup(*(keep_inside(zh(text, "label", color=pal.muted).next_to(hist_line.point(v), DOWN, buff=0.12),
                                    grid_area)
                        for v, text in ((-1, "−最大值"), (0, num("axis_zero", 0)), (1, "最大值"))))  # fmt: skip


        with self.voice(fill("先给答案：{fp4} 是浮点 {e2m1}，格子在 {axis_zero} 附近密，越往外越疏；同样 {bits} 位的 {int4}，"
                             "格子是均匀的。", fp4=term("FP4"), e2m1=term("E2M1"), axis_zero=0, int4=term("INT4"),
                             bits=quant_setting(self.log, "fp4_e2m1", "tensor")["bits"])):  # fmt: skip
            self.play(FadeIn(fp4_line), FadeIn(fp4_ticks), FadeIn(int4_line), FadeIn(int4_ticks), FadeIn(names),
                      run_time=theme.BEAT)
            self.play(FadeIn(band), run_time=theme.QUICK)
            self.say(fill("密区：最大值的 {finer:.0%} 以内", finer=finer), color=pal.value)
        with self.voice(fill("为什么？因为权重大多挤在 {axis_zero} 附近：整张量一个缩放时，{tensor_share:.0f}% 的权重落在"
                             "密区，两种格子的误差打平，{tensor_fp4_error:.1f}% 对 {tensor_int4_error:.1f}%。", axis_zero=0,
                             tensor_share=grids["tensor"]["share_fp4_finer"] * PERCENT,
                             tensor_fp4_error=fp4["tensor"], tensor_int4_error=int4["tensor"])):  # fmt: skip
            self.play(FadeIn(hist_line), FadeIn(hist_tensor), FadeIn(ends), FadeIn(per_tensor), run_time=theme.BEAT)
            self.wait(2 * theme.HOLD)
        with self.voice(fill("可是每 {group_size} 个一组时，组里的最大值离别的权重很近，密区只剩 {group_share:.0f}%，"
                             "{int4} 反而更准。Blackwell 的 {nvfp4} 每 {block} 个数配一个 {e4m3} 缩放：选浮点还是整数，"
                             "要看数据。",
                             group_size=self.log["config"]["group_size"],
                             group_share=grids["group"]["share_fp4_finer"] * PERCENT, int4=term("INT4"),
                             nvfp4=term("NVFP4"), block=CFG.nvfp4_block, e4m3=term("E4M3"))):  # fmt: skip
            self.play(ReplacementTransform(hist_tensor, hist_group), crossfade(per_tensor, per_group, match=False),
                      run_time=theme.BEAT)
            self.say(fill("这个小模型上 {int4} 反而更准", int4=term("INT4")), color=pal.key, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
