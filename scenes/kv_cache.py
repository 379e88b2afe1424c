"""KV Cache explainer: why decoding caches keys and values, why training does not, what the cache costs in memory, and
how MQA / GQA / MLA shrink it.

Render: ``manim -qh scenes/kv_cache.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/kv_cache.py`` (9:16).
Work and bytes come from ``shared/math/kv_cache.py`` and the public configs of ``shared/math/model_configs.py``; the
decoding sections run the trained tiny translator of ``media/runs/translator/`` step by step (:func:`decode_trace`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    FadeIn,
    FadeOut,
    Line,
    Rectangle,
    Square,
    SurroundingRectangle,
    VGroup,
    VMobject,
)

from shared import theme
from shared.layout import Region
from shared.math.kv_cache import (
    attention_flops_per_token,
    attention_step,
    cache_bytes_per_token,
    kv_cache_bytes,
    mla_cache_bytes,
)
from shared.math.model_configs import MODEL_CONFIGS, ModelConfig, parameter_count
from shared.math.tiny_transformer import BOS, Translator
from shared.mobjects.heatmap import ColorScale, Heatmap
from shared.numbers import fill, num, term
from shared.runs import load_translator
from shared.scene import ExplainerScene, crossfade
from shared.text import zh

KIB, GIB = 2**10, 2**30
GIGA = 1e9


@dataclass(frozen=True)
class KVCacheConfig:
    """Everything the explainer computes from. Change a value and every number on screen follows."""

    test_sentence: int = 14  # index into the translator run's test split: 她昨天买了这只猫 (6 decoding steps)
    layer: int = 0  # decoder layer and head whose cache is drawn
    head: int = 0
    bytes_per_value: int = 2  # bf16 / fp16
    flops_model: str = "Llama-3-8B"  # whose one attention layer is counted with and without the cache
    flops_position: int = 4096  # the t-th token
    memory_model: str = "Llama-3-8B"
    contexts: tuple[int, ...] = (4096, 32768, 131072)
    # Llama-3-8B's config.json says 8K; Llama-3.1-8B has the same shapes and a 128K context (its config.json).
    long_context_twin: str = "Llama-3.1-8B"
    sharing_models: tuple[str, ...] = ("Llama-2-7B", "Llama-3-70B", "Llama-3-8B", "Falcon-7B")
    grouping_model: str = "Llama-3-8B"  # the schematic's query heads per KV head are this model's
    demo_query_heads: int = 8  # query heads drawn in the schematic
    mla_model: str = "DeepSeek-V3"
    gqa_reference: str = "Llama-3-70B"  # its KV head count gives the GQA compared with MLA
    mla_square_values: int = 64  # numbers per square in the MLA picture
    mla_square_columns: int = 32


CFG = KVCacheConfig()


def attention_kind(cfg: ModelConfig) -> str:
    """MHA, GQA, MQA or MLA, from the head counts."""
    if cfg.uses_mla:
        return "MLA"
    if cfg.num_key_value_heads == cfg.num_attention_heads:
        return "MHA"
    return "MQA" if cfg.num_key_value_heads == 1 else "GQA"


# --------------------------------------------------------------------------------------------------- the decoder


@dataclass(frozen=True)
class DecodeTrace:
    """A greedy decode run step by step with a KV cache, checked against recomputing the whole prefix each step.

    ``k``/``v``: the cache of decoder layer ``CFG.layer`` after the last step, ``[heads, T, d_head]`` (row t appended
    at step t); ``cross_k``/``cross_v``: its cross-attention keys and values from the encoder, ``[heads, S, d_head]``,
    the same at every step; ``max_difference``: the largest |cached − recomputed| attention output over every step,
    layer and head."""

    source: tuple[str, ...]
    inputs: tuple[str, ...]  # the decoder's input at each step: <bos>, then what it wrote (not the final <eos>)
    k: np.ndarray
    v: np.ndarray
    cross_k: np.ndarray
    cross_v: np.ndarray
    one_pass_weights: np.ndarray  # [heads, T, T]: CFG.layer's self-attention in ONE teacher-forced pass (training)
    max_difference: float


def decode_trace(model: Translator, source) -> DecodeTrace:
    """Decode ``source`` greedily. At every step take the newest token's q, k, v in each decoder layer from the
    model, attend with :func:`shared.math.kv_cache.attention_step` over the cache, and compare with the model's own
    attention output on the whole prefix recomputed (what decoding without a cache does)."""
    source = tuple(source)
    steps = model.decode(source, top_k=1)
    outputs = tuple(s.chosen for s in steps)
    caches = [None] * model.config.n_decoder_layers
    max_difference = 0.0
    for t, step in enumerate(steps):
        acts = model.activations(source, step.prefix)  # the whole prefix recomputed
        for layer, layer_acts in enumerate(acts.decoder_layers):
            att = layer_acts.self_attention.attention
            new = slice(t, t + 1)  # with a cache only the newest token's q, k, v are computed
            out, caches[layer] = attention_step(att.q[:, new], att.k[:, new], att.v[:, new], caches[layer])
            max_difference = max(max_difference, float(np.abs(out[:, 0] - att.head_outputs[:, t]).max()))
    cross = acts.decoder_layers[CFG.layer].cross_attention.attention  # from the encoder: the same at every step
    one_pass = model.activations(source, outputs[:-1]).decoder_layers[CFG.layer].self_attention.attention
    cache = caches[CFG.layer]
    return DecodeTrace(source, (BOS,) + outputs[:-1], cache.k, cache.v, cross.k, cross.v, one_pass.weights,
                       max_difference)


def load_decoder() -> DecodeTrace:
    """The decode the explainer shows: the trained translator of ``media/runs/translator/`` on test sentence
    ``CFG.test_sentence``."""
    run = load_translator()
    return decode_trace(run.model, run.test_split[CFG.test_sentence].source)


# ---------------------------------------------------------------------------------------------------------- scene


class KVCache(ExplainerScene):
    """KV Cache: recompute or remember, why training needs none, the memory bill, and three ways to shrink it."""

    def construct(self):
        self.trace = load_decoder()
        self.one_token_at_a_time()
        self.cache_grows()
        self.training_needs_no_cache()
        self.memory_bill()
        self.sharing_heads()
        self.latent_cache()

    # --- layout helpers --------------------------------------------------------------------------------------------

    @property
    def wide(self) -> bool:
        """The figure is wide enough for two panels side by side (16:9); else panels stack or take turns."""
        return not self.layout.stacked

    @property
    def roomy(self) -> bool:
        """Two panels fit at once: side by side (wide) or stacked in a tall figure (the article); else they take
        turns in the whole figure (9:16, 1:1)."""
        return self.wide or self.layout.figure.height > 7.5

    def split(self, weights, gap: float = 0.35) -> list[Region]:
        """The figure cut into panels: side by side when wide, stacked otherwise."""
        figure = self.layout.figure
        return figure.cols(weights, gap=gap) if self.wide else figure.rows(weights, gap=gap)

    def legend(self, items, direction=DOWN) -> VGroup:
        """Colour swatches (outlined, so a background-coloured one shows) with labels: ``items`` = [(colour, text)]."""
        em = self.layout.text_em("label")
        entries = VGroup()
        for color, text in items:
            swatch = Square(0.75 * em, stroke_width=1, stroke_color=self.palette.muted).set_fill(color, 1)
            entries.add(VGroup(swatch, zh(text, "label", color=self.palette.muted)).arrange(RIGHT, buff=0.25 * em))
        if direction is DOWN:
            return entries.arrange(DOWN, aligned_edge=LEFT, buff=0.3 * em)
        return entries.arrange(RIGHT, buff=0.9 * em)

    def bar_table(self, area: Region, heading, rows, *, inline: bool, note=None) -> VGroup:
        """A heading over horizontal bars, and small print at the bottom, filling ``area``.

        ``rows`` = [(name, value, value_text, colour)]; bar widths are proportional to the values, each value written
        right of its bar; ``inline`` puts short names left of their bars, else names go above them. Rows spread out
        to use the height (up to a limit)."""
        em = self.layout.text_em("label")
        head = zh(heading, "label", color=self.palette.muted)
        bottom = area.bottom
        parts = VGroup()
        if note is not None and len(note):
            note.move_to(area.point(0, 0), aligned_edge=DOWN + LEFT)
            bottom = note.get_top()[1] + 0.6 * em
            parts.add(note)
        names = [zh(name, "label") for name, *_ in rows]
        values = [zh(text, "label", color=color) for _, _, text, color in rows]
        name_width = max(n.width for n in names) + 0.5 * em if inline else 0.0
        bar_max = area.width - name_width - max(v.width for v in values) - 0.4 * em
        largest = max(value for _, value, _, _ in rows)
        bars = VGroup()
        for (_, value, _, color), name, value_text in zip(rows, names, values):
            bar = Rectangle(width=max(bar_max * value / largest, 0.04), height=(0.8 if inline else 0.6) * em,
                            stroke_width=0)
            bar.set_fill(color, 0.9)
            if inline:
                bar.move_to(name.get_left() + name_width * RIGHT, aligned_edge=LEFT)
            else:
                bar.next_to(name, DOWN, buff=0.2 * em, aligned_edge=LEFT)
            value_text.next_to(bar, RIGHT, buff=0.3 * em)
            bars.add(VGroup(name, bar, value_text))
        gap = 0.55 * em if inline else 0.35 * em
        block = VGroup(head, bars.arrange(DOWN, aligned_edge=LEFT, buff=gap)).arrange(DOWN, aligned_edge=LEFT,
                                                                                      buff=0.7 * em)
        spare = area.top - bottom - block.height
        if spare > 0 and len(rows) > 1:  # spread the rows, at most 1.4 em apart
            bars.arrange(DOWN, aligned_edge=LEFT, buff=gap + min(spare / (len(rows) - 1), 1.4 * em - gap))
            block.arrange(DOWN, aligned_edge=LEFT, buff=0.7 * em)
        Region(area.left, area.right, bottom, area.top).place(block, align="left")
        table = parts.add(block)
        table.head, table.bars = head, bars
        return table

    def kib(self, name: str, n_bytes) -> str:
        """``n_bytes`` as a recorded number of KiB: one decimal below 100 KiB, none above."""
        kib = n_bytes / KIB
        return num(name, kib, "{:.1f}" if kib < 100 else "{:.0f}") + " KiB"

    def gib(self, name: str, n_bytes) -> str:
        return num(name, n_bytes / GIB, "{:.1f}") + " GiB"

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def one_token_at_a_time(self):
        self.next_section("一次只写一个词")
        pal = self.palette
        self.show_title("为什么要 KV Cache？")
        tokens = self.trace.inputs
        n = len(tokens)
        row, col = np.indices((n, n))
        # Step i (row i) needs the keys and values of positions 0..i: without a cache all of them are computed anew.
        without = np.where(col < row, -1.0, np.where(col == row, 1.0, np.nan))
        with_cache = np.where(col < row, 0.0, without)
        self.plotted("kv_computed_per_step", {"without_cache": without, "with_cache": with_cache})
        computed = {"kv_computed_without_cache": int(np.isfinite(without).sum()),
                    "kv_computed_with_cache": int((with_cache == 1).sum())}

        # The real model beside or under the grid when there is room, else in the grid's place at the end.
        grid_area, real_area = (self.split([1.05, 0.95] if self.wide else [0.68, 0.32]) if self.roomy
                                else (self.layout.figure,) * 2)
        legend = self.legend([(pal.key, "重算"), (pal.query, "新算"), (pal.panel, "读缓存")], direction=RIGHT)
        counts = zh(fill("K、V 一共算了 {kv_computed_without_cache} 次", **computed), "label", color=pal.key)
        counts_cached = zh(fill("有缓存：只算 {kv_computed_with_cache} 次", **computed), "label", color=pal.query)
        below = VGroup(legend, VGroup(counts, counts_cached.move_to(counts, aligned_edge=LEFT)))
        below.arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        grid = Heatmap(without, ColorScale(1.0, pal.query, pal.panel, pal.key), region=grid_area.rows(
            [grid_area.height - below.height - 0.3, below.height], gap=0.3)[0], max_cell=(0.7, 0.7),
                       row_labels=tokens, label_role="small")
        below.next_to(grid, DOWN, buff=0.3).align_to(grid, LEFT)
        grid_figure = VGroup(grid, below)
        grid_area.place(grid_figure)

        model = MODEL_CONFIGS[CFG.flops_model]
        flops = {use: attention_flops_per_token(CFG.flops_position, d_model=model.hidden_size,
                                                n_heads=model.num_attention_heads, n_kv_heads=model.num_key_value_heads,
                                                head_dim=model.head_dim, use_cache=use).total for use in (False, True)}
        self.plotted("attention_flops", flops)
        note = self.fine_print("只数注意力这一层；\n不缓存还要重跑前面各层")
        real = self.bar_table(real_area, f"{term(model.name)} 一层，" + fill("t = {flops_position}",
                                                                          flops_position=CFG.flops_position), [
            ("不缓存", flops[False], fill("{flops_without_cache_g:.1f} GFLOP", flops_without_cache_g=flops[False] / GIGA),
             pal.key),
            ("缓存", flops[True], fill("{flops_with_cache_g:.3f} GFLOP", flops_with_cache_g=flops[True] / GIGA),
             pal.query)], inline=True, note=note)

        ratio = fill("{flops_ratio:.0f}", flops_ratio=flops[False] / flops[True])
        with self.voice("先给答案：KV Cache 就是把算过的 K 和 V 存起来，下一步直接拿来用。"):
            self.play(FadeIn(grid.row_labels), run_time=theme.QUICK)
            self.say("先说答案：K、V 算过\n就存起来，下一步直接用")
        with self.voice("为什么要存？模型写字是一个 token 一个 token 往外写的，每写一个，都要用到前面所有 token 的 K 和 V。"):
            self.say("生成时一次只写一个 token\n每一步都要前面所有的 K、V")
            self.play(FadeIn(legend[:2]), run_time=theme.QUICK)
            for i in range(n):
                self.play(FadeIn(grid.row_group(i)), run_time=0.25)
        with self.voice(fill("不存的话，每一步都得把前面的 K、V 全部重算一遍，这句话一共要算 {kv_computed_without_cache} 次。",
                             **computed)):
            self.play(FadeIn(counts), run_time=theme.QUICK)
            self.say("不缓存：每一步都把\n前面的 K、V 全部重算", color=pal.key, hold=True)
        with self.voice(fill("存起来以后，每一步只算新来的那一个，一共 {kv_computed_with_cache} 次。", **computed)):
            self.play(grid.morph(with_cache), FadeIn(legend[2]), crossfade(counts, counts_cached, match=False),
                      run_time=theme.BEAT)
            self.say("缓存：每步只算新的一个", color=pal.query)
        with self.voice(f"放到真实模型上：{term(model.name)} 的一层注意力，写到第 "
                        + fill("{flops_position} 个 token 时，不缓存要 {flops_without_cache_g:.1f} GFLOP，缓存只要 "
                               "{flops_with_cache_g:.3f} GFLOP，", flops_position=CFG.flops_position,
                               flops_without_cache_g=flops[False] / GIGA, flops_with_cache_g=flops[True] / GIGA)
                        + f"差了 {ratio} 倍。"):
            if not self.roomy:
                self.play(FadeOut(grid_figure), run_time=theme.QUICK)
            self.play(FadeIn(real), run_time=theme.BEAT)
            self.say(f"真实模型：差 {ratio} 倍", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def cache_grows(self):
        self.next_section("缓存一步长一行")
        pal = self.palette
        trace = self.trace
        self.show_title("缓存：一步长一行")
        # One row per token (the sequence axis of a [heads, T, d_head] cache), one column per dimension.
        k, v = self.plotted("k_cache", trace.k[CFG.head]), self.plotted("v_cache", trace.v[CFG.head])
        cross_k = self.plotted("cross_k", trace.cross_k[CFG.head])
        cross_v = self.plotted("cross_v", trace.cross_v[CFG.head])
        n, d = k.shape
        note = self.fine_print(fill("训练好的小翻译模型，测试集第 {sentence_number} 句\n第 {drawn_layer} 层第 {drawn_head} 个头，"
                                    "每行 d = {d_head}", sentence_number=CFG.test_sentence + 1,
                                    drawn_layer=CFG.layer + 1, drawn_head=CFG.head + 1, d_head=d))
        # Wide: encoder and decoder side by side, the small print under the decoder (8 rows against 10). Otherwise
        # they take turns in the whole figure.
        figure = self.layout.figure
        encoder_area, decoder_area = figure.cols([1, 1], gap=0.5) if self.wide else (figure,) * 2
        if len(note):
            note.move_to(decoder_area.point(0, 0), aligned_edge=DOWN + LEFT)
            decoder_area = Region(decoder_area.left, decoder_area.right, note.get_top()[1] + 0.2, decoder_area.top)
        small_em, label_em = self.layout.text_em("small"), self.layout.text_em("label")

        def pair(k_values, v_values, labels, heading, area):
            """K and V side by side, one row per token labelled on the left, sized to ``area``."""
            probe = [zh(t, "small") for t in labels]
            label_room = max(m.width for m in probe) + 0.5 * small_em
            top_room = label_em + 0.25
            cell_w = min((area.width - label_room) / (2 * d + 1), 0.5)
            cell_h = min((area.height - top_room) / len(labels), 0.5)
            k_map = Heatmap(k_values, ColorScale.diverging(k_values), cell_width=cell_w, cell_height=cell_h,
                            row_labels=labels, label_role="small")
            v_map = Heatmap(v_values, ColorScale.diverging(v_values), cell_width=cell_w, cell_height=cell_h)
            v_map.next_to(k_map.cells, RIGHT, buff=cell_w)
            tags = VGroup(zh("K", "label", color=pal.key).next_to(k_map.cells, UP, buff=0.08),
                          zh("V", "label", color=pal.value).next_to(v_map.cells, UP, buff=0.08))
            tags[1].align_to(tags[0], DOWN)
            # On the tags' line, above the row labels: short enough to clear the K over the first block.
            head = zh(heading, "label", color=pal.muted).align_to(k_map, LEFT).align_to(tags[0], DOWN)
            group = VGroup(head, tags, k_map, v_map)
            area.place(group)
            return k_map, v_map, group

        ck_map, cv_map, encoder = pair(cross_k, cross_v, trace.source, "编码器", encoder_area)
        k_map, v_map, decoder = pair(k, v, trace.inputs, "解码器", decoder_area)

        def token_row(i):
            return VGroup(*k_map.cells[i], *v_map.cells[i])

        frame = SurroundingRectangle(token_row(0), color=pal.accent, buff=0.04, stroke_width=theme.STROKE_THIN)
        with self.voice("看一个真的例子：一个训练好的小翻译模型。编码器读完整句中文，它给出的 K 和 V 只算一次，"
                        "解码的每一步都直接拿来用。"):
            self.play(FadeIn(encoder), *([FadeIn(note)] if self.wide else []), run_time=theme.BEAT)
            self.say("编码器的 K、V：\n整句只算一次", color=pal.value)
            if not self.wide:
                self.play(FadeOut(encoder), run_time=theme.QUICK)
        with self.voice("解码器每一步只算新 token 的 q、k、v，新的 K 和 V 各追加一行，前面的原样留着。"):
            self.play(FadeIn(decoder[:2]), *([] if self.wide else [FadeIn(note)]), run_time=theme.QUICK)
            self.say("解码每一步只算\n新 token 的 q、k、v")
            for i in range(n):
                moves = [frame.animate.move_to(token_row(i))] if i else [FadeIn(frame)]
                self.play(FadeIn(token_row(i)), FadeIn(k_map.row_labels[i]), *moves, run_time=0.4)
            self.say("K、V 各追加一行\n前面的原样留着", color=pal.key, hold=True)
        difference = num("cached_vs_recomputed_max_difference", trace.max_difference,
                         "{:.0e}" if trace.max_difference else "{:g}")
        with self.voice("和每一步全部重算的结果比，差别只有浮点舍入误差：缓存省了计算，不改变答案。"):
            self.say(f"和每步全部重算比\n最大差 {difference}（舍入误差）", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def training_needs_no_cache(self):
        self.next_section("训练为什么不用")
        pal = self.palette
        self.show_title("训练为何不用缓存？")
        tokens = self.trace.inputs
        n = len(tokens)
        weights = self.plotted("one_pass_attention", self.trace.one_pass_weights[CFG.head])
        axis = zh("每行一个位置：它能看到的前文", "small", color=pal.muted)
        note = self.fine_print(fill("同一个翻译模型：第 {drawn_layer} 层\n第 {drawn_head} 个头的注意力权重",
                                    drawn_layer=CFG.layer + 1, drawn_head=CFG.head + 1))
        below = VGroup(axis, *([note] if len(note) else [])).arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        figure = self.layout.figure
        hm = Heatmap(weights, ColorScale.sequential(1.0), region=figure.rows(
            [figure.height - below.height - 0.25, below.height], gap=0.25)[0], max_cell=(0.6, 0.6),
                     row_labels=tokens, label_role="small")
        below.next_to(hm, DOWN, buff=0.25).align_to(hm, LEFT)
        figure.place(VGroup(hm, below))
        seen = VGroup(*(hm.cells[i][j] for i in range(n) for j in range(i + 1)))  # the causal mask hides the rest
        row_frame = SurroundingRectangle(VGroup(*hm.cells[0]), color=pal.accent, buff=0.04,
                                         stroke_width=theme.STROKE_THIN)

        with self.voice("那训练时为什么不用缓存？因为训练时，整句答案是已知的。"):
            self.play(FadeIn(hm.row_labels), FadeIn(below), run_time=theme.QUICK)
            self.say("训练：整句答案是已知的")
        with self.voice("有因果掩码挡住后面的词，所有位置一次前向并行算完。每个 K、V 只算一次，没有重复，也就不需要缓存。"):
            self.play(FadeIn(seen), run_time=theme.BEAT)
            self.say("因果掩码下，所有位置\n一次前向并行算完", hold=True)
            self.say("每个 K、V 只算一次\n没有重复，不用缓存", color=pal.value, hold=True)
        with self.voice("推理就不一样了：下一个词还没写出来，只能一步算一行，所以要把前面的 K、V 存起来。"):
            self.play(FadeIn(row_frame), run_time=theme.QUICK)
            self.say("推理：下一个词还没写出来\n只能一步算一行", color=pal.key)
            for i in range(1, n):
                self.play(row_frame.animate.move_to(VGroup(*hm.cells[i])), run_time=0.25)
            self.wait(theme.HOLD)
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def memory_bill(self):
        self.next_section("显存账")
        pal = self.palette
        model = MODEL_CONFIGS[CFG.memory_model]
        contexts = CFG.contexts
        self.show_title(fill("{longest_context_k}K 为什么这么贵？", longest_context_k=contexts[-1] // 1024))
        per_token = cache_bytes_per_token(model, CFG.bytes_per_value)
        cache = [kv_cache_bytes(model.num_hidden_layers, model.num_key_value_heads, model.head_dim, t, 1,
                                CFG.bytes_per_value) for t in contexts]
        weights = parameter_count(model) * CFG.bytes_per_value
        self.plotted("memory_gib", {"weights": weights / GIB, **{t: c / GIB for t, c in zip(contexts, cache)}})

        two = num("k_and_v", 2)  # one K and one V
        per_token_line = VGroup(
            zh(f"每个 token = {two} × "
               + fill("{n_layers} 层 × {n_kv_heads} 个头", n_layers=model.num_hidden_layers,
                      n_kv_heads=model.num_key_value_heads), "label"),
            zh(fill("× {head_dim} 维 × {bytes_per_value} 字节", head_dim=model.head_dim,
                    bytes_per_value=CFG.bytes_per_value) + f" = {self.kib('cache_per_token_kib', per_token)}",
               "label", color=pal.accent),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        note = self.fine_print(f"{term(model.name)} 的 config.json；{term('bf16')}\n"
                               + fill("{longest_context_k}K 按同结构的 ", longest_context_k=contexts[-1] // 1024)
                               + term(CFG.long_context_twin))
        rows = [("权重", weights, self.gib("weights_gib", weights), pal.value)]
        rows += [(fill("缓存 {context_k}K", context_k=t // 1024), c, self.gib(f"cache_gib[{t}]", c), color)
                 for t, c, color in zip(contexts, cache, (pal.query, pal.key, pal.warning))]
        heading = f"{term(model.name)}，一个对话"
        if self.wide:  # the formula and small print left, the bars right
            left, right = self.split([0.8, 1.2])
            left.place(VGroup(per_token_line, *([note] if len(note) else [])).arrange(DOWN, aligned_edge=LEFT,
                                                                                      buff=0.5), align="left")
            table = self.bar_table(right, heading, rows, inline=True)
        else:  # the formula on top, the bars under it
            figure = self.layout.figure
            per_token_line.move_to(figure.point(0, 1), aligned_edge=UP + LEFT)
            below = Region(figure.left, figure.right, figure.bottom, per_token_line.get_bottom()[1] - 0.4)
            table = self.bar_table(below, heading, rows, inline=True, note=note)
        head, bars = table.head, table.bars

        with self.voice(f"KV Cache 为什么会爆显存？先算账：每个 token，在每一层、每个 KV 头，都要存一个 K 和一个 V。"
                        f"{term(model.name)} 的模型权重，光是存着就要 {self.gib('weights_gib', weights)}。"):
            self.play(FadeIn(head), FadeIn(bars[0]), run_time=theme.QUICK)
            self.say(f"显存 = {two} × 层数 × KV 头数\n× 头维度 × 字节 × token 数")
        with self.voice(fill("{n_layers} 层，{n_kv_heads} 个 KV 头，每个 {head_dim} 维，每个数 {bytes_per_value} 字节，"
                             "乘下来", n_layers=model.num_hidden_layers, n_kv_heads=model.num_key_value_heads,
                             head_dim=model.head_dim, bytes_per_value=CFG.bytes_per_value)
                        + f"每个 token 就是 {self.kib('cache_per_token_kib', per_token)}。上下文越长，存得越多。"):
            self.play(FadeIn(per_token_line), FadeIn(note), run_time=theme.BEAT)
            for bar in bars[1:]:
                self.play(FadeIn(bar, shift=0.2 * RIGHT), run_time=0.6)
        longest, shortest = (fill("{longest_k}K", longest_k=contexts[-1] // 1024),
                             fill("{shortest_k}K", shortest_k=contexts[0] // 1024))
        times = fill("{cache_ratio:.0f}", cache_ratio=cache[-1] / cache[0])
        bigger = "比模型权重还大" if cache[-1] > weights else "快赶上模型权重"
        with self.voice(f"{longest} 的缓存是 {shortest} 的 {times} 倍，{bigger}。"):
            self.say(f"{longest} 是 {shortest} 的 {times} 倍\n{bigger}", color=pal.warning, hold=True)
        with self.voice("而且每写一个 token，都要把整个缓存从显存里读一遍，所以对话越长越卡。同时服务 N 个对话，显存还要再乘 N。"):
            self.say("而且每写一个 token\n都要把缓存整个读一遍", hold=True)
            self.say("同时服务 N 个对话\n显存再乘 N", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def sharing_heads(self):
        self.next_section("共享 KV 头")
        pal = self.palette
        self.show_title("MHA → GQA → MQA")
        grouping = MODEL_CONFIGS[CFG.grouping_model]
        group = grouping.num_attention_heads // grouping.num_key_value_heads
        n_q = CFG.demo_query_heads
        schemes = [("MHA", 1), ("GQA", group), ("MQA", n_q)]  # query heads per K/V head
        picture_area, bars_area = (self.split([0.8, 1.2] if self.wide else [0.48, 0.52]) if self.roomy
                                   else (self.layout.figure,) * 2)

        em = self.layout.text_em("label")
        key = self.legend([(pal.query, "Q 头"), (pal.key, "K、V 头")], direction=RIGHT)
        # A row: Q squares, links, K/V bars (2.4 pitches); rows 0.6 pitch apart: 8.4 pitches for three.
        tag_width = max(zh(name, "label").width for name, _ in schemes) + 0.4 * em
        pitch = min((picture_area.width - tag_width) / n_q, (picture_area.height - key.height - 0.4) / 8.4, 0.8)
        side = 0.72 * pitch
        rows = VGroup()
        for name, size in schemes:
            qs = VGroup(*(Square(side, stroke_width=0).set_fill(pal.query, 1).move_to([i * pitch, 0, 0])
                          for i in range(n_q)))
            kvs, links = VGroup(), VGroup()
            for g in range(n_q // size):
                members = qs[g * size:(g + 1) * size]
                kv = Rectangle(width=size * pitch - (pitch - side), height=side, stroke_width=0)
                kv.set_fill(pal.key, 1).move_to(members.get_center() + DOWN * 1.4 * pitch)
                kvs.add(kv)
                links.add(*(Line(q.get_bottom(), [q.get_x(), kv.get_top()[1], 0], stroke_width=theme.STROKE_THIN,
                                 color=pal.muted) for q in members))
            tag = zh(name, "label").next_to(VGroup(qs, kvs), LEFT, buff=0.4 * em)
            rows.add(VGroup(tag, qs, links, kvs))
        rows.arrange(DOWN, buff=0.6 * pitch, aligned_edge=RIGHT)
        picture = VGroup(rows, key.next_to(rows, DOWN, buff=0.4).align_to(rows, RIGHT))
        picture_area.place(picture)

        models = [MODEL_CONFIGS[name] for name in CFG.sharing_models]
        per_token = self.plotted("bytes_per_token", {m.name: cache_bytes_per_token(m, CFG.bytes_per_value)
                                                     for m in models})
        note = self.fine_print(f"数值来自各模型 config.json；{term('bf16')}")
        bar_rows = [(f"{term(m.name)}  {attention_kind(m)} "
                     + fill("{q}/{kv}", prefix=f"heads[{m.name}]_", q=m.num_attention_heads, kv=m.num_key_value_heads),
                     per_token[m.name], self.kib(f"bytes_per_token_kib[{m.name}]", per_token[m.name]), pal.key)
                    for m in models]
        table = self.bar_table(bars_area, "每 token 缓存（Q 头/KV 头）", bar_rows, inline=self.wide, note=note)

        per_kv = fill("{query_heads_per_kv_head}", query_heads_per_kv_head=group)
        with self.voice("怎么省显存？第一招：让几个 Q 头共用一份 K 和 V。原版的 MHA，每个 Q 头都有自己的一份。"):
            self.play(FadeIn(rows[0]), FadeIn(key), run_time=theme.BEAT)
            self.say("MHA：每个 Q 头\n各有一份 K、V")
        with self.voice(f"GQA 把 Q 头分组，{term(grouping.name)} 里每 {per_kv} 个 Q 头共用一份，缓存就小了 {per_kv} 倍。"):
            self.play(FadeIn(rows[1]), run_time=theme.BEAT)
            self.say(f"GQA：{term(grouping.name)} 里\n每 {per_kv} 个 Q 头共用一份", color=pal.key, hold=True)
        with self.voice("MQA 更狠：所有 Q 头只用一份 K 和 V。"):
            self.play(FadeIn(rows[2]), run_time=theme.BEAT)
            self.say("MQA：所有 Q 头\n共用一份 K、V")
        largest, smallest = max(per_token, key=per_token.get), min(per_token, key=per_token.get)
        largest_kib = self.kib("largest_kib", per_token[largest])
        smallest_kib = self.kib("smallest_kib", per_token[smallest])
        with self.voice(f"看真实模型，每个 token 的缓存从 {largest_kib} 一路降到 {smallest_kib}。"):
            if not self.roomy:
                self.play(FadeOut(picture), run_time=theme.QUICK)
            self.play(FadeIn(table, lag_ratio=0.1), run_time=theme.SLOW)
            self.say(f"每个 token：{largest_kib}\n→ {smallest_kib}", color=pal.accent, hold=True)
        with self.voice("共用越多越省，但共用太狠，模型效果会掉，所以现在的大模型多用 GQA。"):
            self.say("共用越多越省\n但共用太狠会掉质量", hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def latent_cache(self):
        self.next_section("MLA 压缩")
        pal = self.palette
        self.show_title("MLA：只存压缩向量")
        model = MODEL_CONFIGS[CFG.mla_model]
        layers, heads, d_h = model.num_hidden_layers, model.num_attention_heads, model.head_dim
        latent, rope = model.kv_lora_rank, model.qk_rope_head_dim
        gqa_heads = MODEL_CONFIGS[CFG.gqa_reference].num_key_value_heads
        per_token = self.plotted("mla_bytes_per_token", {
            "MHA": kv_cache_bytes(layers, heads, d_h, 1, 1, CFG.bytes_per_value),
            "GQA": kv_cache_bytes(layers, gqa_heads, d_h, 1, 1, CFG.bytes_per_value),
            "MLA": mla_cache_bytes(layers, latent, rope, 1, 1, CFG.bytes_per_value),
        })
        one_kv_head = kv_cache_bytes(layers, 1, d_h, 1, 1, CFG.bytes_per_value)
        picture_area, bars_area = (self.split([1, 1] if self.wide else [0.5, 0.5]) if self.roomy
                                   else (self.layout.figure,) * 2)

        unit = CFG.mla_square_values
        mha_values = 2 * heads * d_h  # one K and one V per head, per token and layer
        if any(values % unit for values in (mha_values, latent, rope)):
            raise ValueError(f"mla_square_values ({unit}) must divide {mha_values}, {latent} and {rope}: a square "
                             "stands for that many numbers")
        mha_label = zh(fill("MHA：{mha_values_per_layer} 个数", mha_values_per_layer=mha_values), "label",
                       color=pal.key)
        mla_label = zh(fill("MLA：c {latent_dim} + RoPE k {rope_dim}", latent_dim=latent, rope_dim=rope), "label",
                       color=pal.value)
        size_note = zh(fill("每层每个 token，一格 {values_per_square} 个数", values_per_square=unit), "small",
                       color=pal.muted)
        # One square size for both, so the areas compare.
        cols, gap = CFG.mla_square_columns, 0.2
        text_h = mha_label.height + mla_label.height + size_note.height + 4 * gap
        square = min(picture_area.width / cols,
                     (picture_area.height - text_h) / (np.ceil(mha_values / unit / cols) + 1), 0.3)
        mha_grid = self.square_grid(mha_values // unit, cols, pal.key).scale(square)
        mla_row = VGroup(self.square_grid(latent // unit, cols, pal.value),
                         self.square_grid(rope // unit, cols, pal.extra)).arrange(RIGHT, buff=0).scale(square)
        picture = VGroup(mha_label, mha_grid, mla_label, mla_row, size_note).arrange(DOWN, aligned_edge=LEFT, buff=gap)
        picture_area.place(picture)

        colors = {"MHA": pal.key, "GQA": pal.query, "MLA": pal.value}
        names = {"MHA": fill("MHA：{mha_kv_heads} 个 KV 头", mha_kv_heads=heads),
                 "GQA": fill("GQA：{gqa_kv_heads} 个 KV 头", gqa_kv_heads=gqa_heads),
                 "MLA": "MLA：压缩向量"}
        note = self.fine_print(f"{term(model.name)} 的 config.json；{term('bf16')}\nMHA、GQA：同层数同头维度的对照")
        table = self.bar_table(bars_area, f"{term(model.name)} 每个 token",
                               [(names[k], b, self.kib(f"mla_compare_kib[{k}]", b), colors[k])
                                for k, b in per_token.items()], inline=self.wide, note=note)

        n_heads = fill("{n_heads}", n_heads=heads)
        with self.voice("第三招是 DeepSeek 的 MLA。先看 MHA：每层每个 token 要存 "
                        + fill("{mha_values_per_layer} 个数，", mha_values_per_layer=mha_values)
                        + f"{n_heads} 个头，每个头一个 K 一个 V。"):
            self.play(FadeIn(mha_label), FadeIn(mha_grid), run_time=theme.BEAT)
            self.say(f"MHA：{n_heads} 个头\n每个头各存 K 和 V", color=pal.key)
        with self.voice(fill("MLA 只存一个 {latent_dim} 维的压缩向量 c，加一个 {rope_dim} 维的 RoPE key，用的时候再还原出"
                             "每个头的 K 和 V。", latent_dim=latent, rope_dim=rope)):
            self.play(FadeIn(mla_label), FadeIn(mla_row), FadeIn(size_note), run_time=theme.BEAT)
            self.say("MLA：只存压缩向量 c\n用时再还原各头的 K、V", color=pal.value, hold=True)
        smaller = fill("{mha_over_mla:.0f}", mha_over_mla=per_token["MHA"] / per_token["MLA"])
        heads_worth = fill("{equivalent_kv_heads:.2f}", equivalent_kv_heads=per_token["MLA"] / one_kv_head)
        with self.voice(f"算下来，{term(model.name)} 每个 token 只要 {self.kib('mla_compare_kib[MLA]', per_token['MLA'])}"
                        f"，比 MHA 小 {smaller} 倍，只相当于 {heads_worth} 个 KV 头的 GQA。"):
            if not self.roomy:
                self.play(FadeOut(picture), run_time=theme.QUICK)
            self.play(FadeIn(table, lag_ratio=0.1), run_time=theme.SLOW)
            self.say(f"比 MHA 小 {smaller} 倍\n只相当于 {heads_worth} 个 KV 头", color=pal.accent, hold=True)
            self.wait(theme.HOLD)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here

    def square_grid(self, count: int, cols: int, color) -> VMobject:
        """``count`` unit squares, ``cols`` to a row, as ONE VMobject (hundreds of squares draw like one shape)."""
        mob = VMobject(stroke_width=0).set_fill(color, 1)
        side = 0.82  # of the pitch: the gaps show the squares
        for i in range(count):
            x, y = i % cols, -(i // cols)
            corners = [np.array([x + dx, y + dy, 0.0]) for dx, dy in ((0, 0), (side, 0), (side, side), (0, side),
                                                                      (0, 0))]
            mob.start_new_path(corners[0])
            mob.add_points_as_corners(corners[1:])
        return mob
