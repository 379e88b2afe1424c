"""Transformer data flow: the translation machine, driven by the real activations of a tiny seeded model.

Render: ``manim -qh scenes/transformer.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/transformer.py`` (9:16).
Every matrix, bar and number comes from ``shared/math/tiny_transformer.py`` (d_model 8, 2 heads, random weights) and
``shared/math/attention.py``; FlashAttention's tiles are in ``scenes/flash_attention.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from manim import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    Create,
    Dot,
    FadeIn,
    FadeOut,
    GrowFromEdge,
    Indicate,
    LaggedStart,
    VGroup,
)

from shared import theme
from shared.math.attention import scaled_dot_product_attention
from shared.math.tiny_transformer import TinyTransformerConfig, run_tiny_transformer
from shared.mobjects.blocks import AddCircle, Block, BlockStack, arrow, connect, elbow
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.heatmap import ColorScale, Heatmap
from shared.mobjects.tokens import TokenRow
from shared.scene import ExplainerScene
from shared.text import formula, rich, zh


@dataclass(frozen=True)
class TransformerConfig:
    """Everything the explainer computes from. Change a value and every matrix and number on screen follows."""

    # The tiny encoder–decoder (d_model 8, 2 heads, FFN 32, Post-LN, seed 0): its weights are random, not trained.
    model: TinyTransformerConfig = field(default_factory=TinyTransformerConfig)
    head: int = 0  # the head whose attention matrices are drawn
    number_format: str = "{:.2f}"  # numbers in heatmap cells: two decimals read on a phone
    scaling_dim: int = 64  # d of the √d demo (512 / 8 heads in Vaswani et al.)
    scaling_keys: int = 8  # keys one query is scored against
    scaling_samples: int = 20000  # random (q, k) pairs for the spread of q·k
    scaling_seed: int = 0  # example bars; the captions quote averages over scaling_samples draws
    icon_seed: int = 2  # random q, k for the BERT/GPT mask icons (only which weights are 0 matters)
    icon_tokens: int = 5
    ffn_token: int = 0  # the source token whose FFN pass is drawn ("我")
    norm_token: int = 0  # the source token whose LayerNorm statistics are quoted
    prompt: tuple[str, ...] = ("Translate:", "Hello", "→")  # GPT-style translation as continuation
    continuation: tuple[str, ...] = ("你", "好")


CFG = TransformerConfig()


def nested(a) -> list:
    """An array as nested lists of floats (−inf stays −inf) for show_number."""
    return np.asarray(a, dtype=float).tolist()


class TransformerDataFlow(ExplainerScene):
    """The original Transformer, sublayer by sublayer, with a tiny model's real numbers."""

    def construct(self):
        self.acts = run_tiny_transformer(CFG.model)
        self.overview()
        self.into_the_model()
        self.attention_scores()
        self.attention_weighted_sum()
        self.why_scale()
        self.causal_mask()
        self.cross_attention()
        self.feed_forward()
        self.residual_and_norm()
        self.decoder_only()

    # --- helpers ---------------------------------------------------------------------------------------------------

    def note(self, region, text: str, align: str = "center"):
        """Small print at the bottom of ``region`` (e.g. "weights are random")."""
        return region.place(zh(text, "small", color=self.palette.muted), align=align)

    def head_label(self) -> str:
        return f"头 {CFG.head + 1}（共 {CFG.model.n_heads} 个），d_head = {CFG.model.d_head}"

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def overview(self):
        self.next_section("翻译机全景")
        pal, acts = self.palette, self.acts
        self.show_title("一台翻译机")
        # Portrait is nearly square and narrow: token rows wrap to 2×2 and the diagram uses the small role.
        role = "small" if self.is_portrait else "label"
        stack = dict(role=role, gap=0.14, pad_em=0.5, frame_buff=0.12, arrows=False)  # tight: no room for arrows
        width = max(Block(t, role=role, pad_em=0.5).width for t in ("掩码自注意力", "交叉注意力"))
        enc = BlockStack(["自注意力", "FFN"], width=width, color=pal.query, title="编码器 ×N", **stack)
        dec = BlockStack(["掩码自注意力", "交叉注意力", "FFN"], width=width, color=pal.key, title="解码器 ×N",
                         **stack)
        source = TokenRow(acts.source_tokens, role=role, color=pal.query)
        written = TokenRow(acts.decoder_input_tokens[:-1], role=role, color=pal.key)
        target = TokenRow(acts.decoder_target_tokens[:-1], role=role, color=pal.value)
        if self.is_portrait:
            for row in (source, written, target):
                row.arrange_in_grid(rows=2, cols=2, buff=0.12)
        dec.next_to(enc, RIGHT, buff=1.0 if self.is_portrait else 1.1, aligned_edge=DOWN)
        token_buff = 0.4  # room for a readable arrow between a token row and its stack
        source.next_to(enc, DOWN, buff=token_buff)
        written.next_to(dec, DOWN, buff=token_buff)
        target.next_to(dec, UP, buff=token_buff)
        token_gap = 0.5  # the two bottom token rows must not run into each other
        overlap = source.get_right()[0] + token_gap - written.get_left()[0]
        if overlap > 0:
            VGroup(dec, written, target).shift(RIGHT * overlap)
        cross_block = dec.blocks[1]
        kv = arrow([enc.frame.get_right()[0] + 0.05, cross_block.get_y(), 0],
                   [dec.frame.get_left()[0] - 0.05, cross_block.get_y(), 0], color=pal.query)
        kv_label = rich("$K, V$", role, color=pal.query).next_to(kv, UP, buff=0.08)
        arrows = VGroup(connect(source, enc), connect(written, dec), connect(dec, target))
        diagram = VGroup(enc, dec, source, written, target, kv, kv_label, arrows)

        self.show_number("model_shape", {"d_model": CFG.model.d_model, "n_heads": CFG.model.n_heads})
        model = f"d_model = {CFG.model.d_model}\n{CFG.model.n_heads} 个头\n权重随机\n（未训练）"
        note = VGroup(zh("本片小模型", "small", color=pal.accent), zh(model, "small", color=pal.muted))
        note.arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        if self.is_portrait:  # in the room above the encoder (the decoder is a block taller)
            self.layout.figure.place(diagram)
            note.next_to(enc.frame, UP, buff=0.3).align_to(enc.frame, LEFT)
        else:  # beside the diagram
            VGroup(diagram, note).arrange(RIGHT, buff=0.8, aligned_edge=DOWN)
            self.layout.figure.fit(VGroup(diagram, note), max_grow=1.3)

        self.play(FadeIn(enc), FadeIn(dec), run_time=theme.BEAT)
        self.say("原版 Transformer：\n编码器 + 解码器")
        self.play(FadeIn(source, shift=0.2 * UP), Create(arrows[0]), run_time=theme.BEAT)
        self.say("编码器读原文，\n每个词看整句", color=pal.query)
        self.play(Create(kv), FadeIn(kv_label), run_time=theme.BEAT)
        self.say("解码器边看原文，\n边写译文", color=pal.key)
        self.play(FadeIn(written, shift=0.2 * UP), Create(arrows[1]), run_time=theme.BEAT)
        self.play(Create(arrows[2]), LaggedStart(*[FadeIn(t, shift=0.2 * UP) for t in target], lag_ratio=0.5),
                  run_time=theme.SLOW)
        self.say("写出一个词，喂回去\n再写下一个", hold=True)
        self.play(FadeIn(note), run_time=theme.QUICK)
        self.say("下面的数都是真算的\n但模型没训练，不会翻译", color=pal.warning, hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def into_the_model(self):
        self.next_section("进入模型")
        pal, acts = self.palette, self.acts
        self.show_title("进入模型")
        matrices = {"词向量": acts.source_embeddings, "位置编码": acts.source_positional_encodings,
                    "输入 X": acts.encoder_input}
        scale = ColorScale.diverging(np.concatenate(list(matrices.values())))
        seq, d = acts.encoder_input.shape
        self.show_number("source_embeddings", nested(acts.source_embeddings))
        self.show_number("positional_encodings", nested(acts.source_positional_encodings))
        self.show_number("encoder_input", nested(acts.encoder_input))
        self.show_number("input_shape", [seq, d])

        figure = self.layout.figure
        # Landscape: E + PE = X side by side. Portrait (narrow): E over PE, then E turns into X in place.
        n_maps = 2 if self.is_portrait else 3
        slots = figure.rows(2, gap=0.4) if self.is_portrait else figure.cols([1.2, 1, 1], gap=0.9)
        max_cell = (0.62, 0.5) if self.is_portrait else (0.5, 0.5)
        label_h = 1.3 * self.layout.text_em("label")
        maps, headers = [], []
        for k, ((name, values), slot) in enumerate(zip(list(matrices.items())[:n_maps], slots)):
            area = slot.rows([label_h, slot.height - label_h], gap=0.1)[1]
            labels = acts.source_tokens if k == 0 else ()  # the other maps' cells line up with these rows
            maps.append(Heatmap(values, scale, region=area, max_cell=max_cell, row_labels=labels,
                                label_role="label"))
        for hm, slot in zip(maps, slots):
            hm.move_to(slot.center + DOWN * label_h / 2)
            if self.is_portrait:
                hm.shift(RIGHT * (maps[0].cells.get_x() - hm.cells.get_x()))
            else:
                hm.shift(UP * (maps[0].cells.get_y() - hm.cells.get_y()))
        for (name, values), hm in zip(matrices.items(), maps):
            headers.append(zh(f"{name}  [{values.shape[0]}, {values.shape[1]}]", "label").next_to(hm.cells, UP,
                                                                                                buff=0.18))
        ops = [zh("+", "body", prose=False), zh("=", "body", prose=False)]
        if self.is_portrait:
            ops[0].next_to(maps[1].cells, LEFT, buff=0.35)
            x_header = zh(f"输入 X = 词向量 + 位置编码", "label", color=pal.accent).move_to(headers[0])
        else:
            for op, (a, b) in zip(ops, zip(maps[:-1], maps[1:])):
                op.move_to((a.cells.get_right() + b.cells.get_left()) / 2)

        self.play(FadeIn(maps[0].row_labels), FadeIn(headers[0]), run_time=theme.QUICK)
        self.play(LaggedStart(*[FadeIn(maps[0].row_group(i), shift=0.15 * RIGHT) for i in range(seq)],
                              lag_ratio=0.4), run_time=theme.SLOW)
        self.say(f"查表：每个词变成\n{d} 个数（颜色 = 正负大小）")
        self.play(FadeIn(ops[0]), FadeIn(maps[1]), FadeIn(headers[1]), run_time=theme.BEAT)
        self.say("再加上位置编码：\n每个位置一组 sin/cos", color=pal.key)
        if self.is_portrait:
            self.play(maps[0].morph(acts.encoder_input), FadeOut(headers[0]), FadeIn(x_header),
                      Indicate(maps[1].cells, color=pal.accent, scale_factor=1.02), run_time=theme.SLOW)
        else:
            self.play(FadeIn(ops[1]), FadeIn(maps[2]), FadeIn(headers[2]), run_time=theme.BEAT)
        self.say(f"形状 [seq, d_model]\n= [{seq}, {d}]，之后每层不变", color=pal.accent)
        shown_headers = [x_header, headers[1]] if self.is_portrait else headers
        self.play(*[Indicate(h, color=pal.accent, scale_factor=1.08) for h in shown_headers], run_time=theme.SLOW)
        self.wait(theme.HOLD)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def attention_scores(self):
        self.next_section("自注意力")
        pal, acts = self.palette, self.acts
        att = acts.encoder_layers[0].self_attention.attention
        h, tokens = CFG.head, acts.source_tokens
        self.show_title("自注意力：打分")
        qkv = {"Q": (att.q[h], pal.query), "K": (att.k[h], pal.key), "V": (att.v[h], pal.value)}
        scores = att.scaled_scores[h]
        for name, (values, _) in qkv.items():
            self.show_number(f"encoder_{name.lower()}", nested(values))
        self.show_number("encoder_scores_scaled", nested(scores))
        self.show_number("d_head", CFG.model.d_head)

        top, bottom = (self.layout.figure.rows([0.44, 0.56], gap=0.3) if self.is_portrait
                       else self.layout.figure.cols([0.42, 0.58], gap=0.6))
        small_cells = VGroup()
        for name, (values, color) in qkv.items():
            hm = Heatmap(values, ColorScale.diverging(values), cell_width=0.34 if self.is_portrait else 0.28)
            head = rich(f"${name} = X W_{name}$", "label", color=color)
            if self.is_portrait:  # three columns: name over matrix
                small_cells.add(VGroup(head, hm).arrange(DOWN, buff=0.15))
            else:  # three rows: name left of matrix
                small_cells.add(VGroup(head, hm).arrange(RIGHT, buff=0.3))
        if self.is_portrait:
            small_cells.arrange(RIGHT, buff=0.6)
        else:
            small_cells.arrange(DOWN, buff=0.3)
            for group in small_cells:  # line the matrices up
                group.shift(RIGHT * (small_cells[0][1].get_x() - group[1].get_x()))
        head_note = zh(f"头 {h + 1}/{CFG.model.n_heads}：Q、K、V 各 [{att.q.shape[1]}, {att.q.shape[2]}]", "small",
                       color=pal.muted)
        qkv_group = VGroup(small_cells, head_note).arrange(DOWN, buff=0.3)
        top.place(qkv_group)

        score_map = Heatmap(scores, ColorScale.diverging(scores), region=bottom.inset(0.1), max_cell=(1.2, 0.75),
                            numbers=CFG.number_format, row_labels=tokens, col_labels=tokens, label_role="label",
                            label_colors=[pal.query] * len(tokens))
        bottom.place(score_map)
        for label in score_map.col_labels:
            label.set_color(pal.key)

        self.play(LaggedStart(*[FadeIn(g, shift=0.2 * DOWN) for g in small_cells], lag_ratio=0.3), FadeIn(head_note),
                  run_time=theme.SLOW)
        self.say("每个词乘 3 个矩阵：\nQ 去问，K 来答，V 是内容")
        self.play(FadeIn(score_map.row_labels), FadeIn(score_map.col_labels), run_time=theme.QUICK)
        self.play(LaggedStart(*[FadeIn(score_map.row_group(i)) for i in range(len(tokens))], lag_ratio=0.3),
                  run_time=theme.SLOW)
        self.say(formula(f"\"分数\" = Q K^T \\/ sqrt({CFG.model.d_head})", "body"))
        self.wait(theme.HOLD)
        focus = int(np.argmax(att.weights[h].max(axis=1)))
        self.show_number("focus_row", focus)
        box = score_map.outline(rows=[focus], color=pal.accent)
        self.play(Create(box), run_time=theme.QUICK)
        self.say(f"第 {focus + 1} 行：“{tokens[focus]}”\n给每个词打的分", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def attention_weighted_sum(self):
        self.next_section("加权求和")
        pal, acts = self.palette, self.acts
        att = acts.encoder_layers[0].self_attention.attention
        h, tokens = CFG.head, acts.source_tokens
        self.show_title("softmax 与加权求和")
        scores, weights, v, out = att.scaled_scores[h], att.weights[h], att.v[h], att.head_outputs[h]
        focus = int(np.argmax(weights.max(axis=1)))
        row_sums = weights.sum(axis=1)
        self.show_number("encoder_weights", nested(weights))
        self.show_number("encoder_weight_row_sums", nested(row_sums))
        self.show_number("encoder_head_output", nested(out))
        self.show_number("concatenated_shape", list(att.concatenated.shape))

        left, right = (self.layout.figure.rows([0.55, 0.45], gap=0.3) if self.is_portrait
                       else self.layout.figure.cols([0.52, 0.48], gap=0.5))
        sums = VGroup(*(zh(f"Σ = {s:.2f}", "small", color=pal.value) for s in row_sums))
        sum_gap = 0.2
        map_area = left.cols([left.width - sums[0].width - sum_gap, sums[0].width], gap=sum_gap)[0]
        weight_map = Heatmap(scores, ColorScale.diverging(scores), region=map_area, max_cell=(1.2, 0.72),
                             numbers=CFG.number_format, row_labels=tokens, col_labels=tokens, label_role="label",
                             label_colors=[pal.query] * len(tokens))
        for i, label in enumerate(sums):
            label.next_to(weight_map.cells[i], RIGHT, buff=sum_gap)
        left.place(VGroup(weight_map, sums))

        cell = 0.32 if not self.is_portrait else 0.36
        v_map = Heatmap(v, ColorScale.diverging(v), cell_width=cell)
        out_map = Heatmap(out, ColorScale.diverging(out), cell_width=cell)
        v_group = VGroup(rich("$V$", "label", color=pal.value), v_map).arrange(DOWN, buff=0.15)
        out_group = VGroup(zh("输出", "label", color=pal.accent), out_map).arrange(DOWN, buff=0.15)
        weighted = rich(" ".join([f"${weights[focus, j]:.2f} v_{j + 1}$" + (" +" if j < len(tokens) - 1 else "")
                                  for j in range(len(tokens))]), "label")
        equals = rich("$=$", "label")
        pipeline = VGroup(v_group, equals, out_group).arrange(RIGHT, buff=0.35)
        mix = VGroup(pipeline, weighted).arrange(DOWN, buff=0.35)
        right.fit(mix)
        out_row = out_map.outline(rows=[focus], color=pal.accent)

        self.play(FadeIn(weight_map), run_time=theme.BEAT)
        self.say("softmax：一行一行\n变成和为 1 的权重")
        weight_scale = ColorScale.sequential(1.0)
        for i in range(len(tokens)):
            self.play(weight_map.morph(weights, rows=[i], scale=weight_scale), FadeIn(sums[i]),
                      run_time=0.7)
        self.play(Create(weight_map.outline(rows=[focus], color=pal.accent)), FadeIn(v_group), run_time=theme.BEAT)
        self.say(f"“{tokens[focus]}”的输出 = 按权重\n把 V 的各行加起来", color=pal.accent)
        self.play(FadeIn(weighted, shift=0.2 * UP), run_time=theme.BEAT)
        self.play(FadeIn(equals), FadeIn(out_group), Create(out_row), run_time=theme.BEAT)
        self.say(f"{CFG.model.n_heads} 个头各算一遍\n拼回 [{att.concatenated.shape[0]}, "
                 f"{att.concatenated.shape[1]}]", hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def why_scale(self):
        self.next_section("为什么除以根号d")
        pal = self.palette
        d, n = CFG.scaling_dim, CFG.scaling_keys
        self.show_title("为什么除以 √d？")
        self.show_number("scaling_shape", {"d": d, "keys": n})
        rng = np.random.default_rng(CFG.scaling_seed)
        # One example query against n keys, drawn as bars ...
        q, keys = rng.standard_normal(d), rng.standard_normal((n, d))
        raw = keys @ q
        _, w_raw = scaled_dot_product_attention(q[None], keys, keys, scale=1.0)
        _, w_scaled = scaled_dot_product_attention(q[None], keys, keys)  # default scale 1/√d
        w_raw, w_scaled = w_raw[0], w_scaled[0]
        # ... and many random queries, for the statistics the captions quote.
        sample_q = rng.standard_normal((CFG.scaling_samples, 1, d))
        sample_k = rng.standard_normal((CFG.scaling_samples, n, d))
        spread = float(np.std(sample_q @ np.swapaxes(sample_k, -1, -2)))
        _, sw_raw = scaled_dot_product_attention(sample_q, sample_k, sample_k, scale=1.0)
        _, sw_scaled = scaled_dot_product_attention(sample_q, sample_k, sample_k)
        mean_max = {"raw": float(sw_raw.max(-1).mean()), "scaled": float(sw_scaled.max(-1).mean())}
        self.show_number("scaling_scores_raw", nested(raw))
        self.show_number("scaling_scores_scaled", nested(raw / np.sqrt(d)))
        self.show_number("scaling_weights_raw", nested(w_raw))
        self.show_number("scaling_weights_scaled", nested(w_scaled))
        self.show_number("scaling_spread", {"raw": spread, "scaled": spread / np.sqrt(d)})
        self.show_number("scaling_mean_max_weight", mean_max)

        limit = float(np.ceil(np.abs(raw).max() / 5) * 5)
        cases = [("不缩放：q·k", raw, w_raw, mean_max["raw"], pal.warning),
                 (f"除以 √{d} = {np.sqrt(d):g}", raw / np.sqrt(d), w_scaled, mean_max["scaled"], pal.value)]
        xs = np.arange(n)
        groups = []
        for panel, (name, score, weight, typical, color) in zip(self.layout.panels(2), cases):
            head, body = panel.rows([0.12, 0.88] if self.is_portrait else [0.15, 0.85], gap=0.1)
            stat = head.place(zh(f"最大权重均值 {typical:.2f}", "small", color=color), align="right")
            score_area, weight_area = body.cols(2, gap=0.5)
            score_chart = Chart(score_area, AxisSpec(-0.6, n - 0.4, []),
                                AxisSpec(-limit, limit, [(-limit, f"{-limit:g}"), (0, "0"), (limit, f"{limit:g}")],
                                         "分数"))
            weight_chart = Chart(weight_area, AxisSpec(-0.6, n - 0.4, []),
                                 AxisSpec(0, 1, [(0, "0"), (0.5, "0.5"), (1, "1")], "softmax 权重"))
            zero_line = score_chart.hline(0, pal.grid)
            score_bars = score_chart.bars(xs, score, pal.query, baseline=0)
            weight_bars = weight_chart.bars(xs, weight, color)
            title = head.place(zh(name, "label", color=color), align="left")
            groups.append((title, score_chart, zero_line, score_bars, weight_chart, weight_bars, stat))

        for k, (title, score_chart, zero_line, score_bars, weight_chart, weight_bars, stat) in enumerate(groups):
            self.play(FadeIn(title), FadeIn(score_chart), FadeIn(zero_line), FadeIn(weight_chart),
                      run_time=theme.QUICK)
            self.play(*[GrowFromEdge(b, DOWN if s >= 0 else UP) for b, s in zip(score_bars, cases[k][1])],
                      run_time=theme.BEAT)
            if k == 0:
                self.say(f"d = {d}：q·k 的标准差 ≈ {spread:.1f}\n（随机 {CFG.scaling_samples} 对），即 √d")
            else:
                self.say(f"除以 √d：标准差\n回到 {spread / np.sqrt(d):.2f}", color=pal.value)
            self.play(*[GrowFromEdge(b, DOWN) for b in weight_bars], FadeIn(stat), run_time=theme.BEAT)
            if k == 0:
                self.say("softmax 几乎全押一个词\n其余梯度接近 0", color=pal.warning, hold=True)
            else:
                self.say("权重分得开，\n梯度也传得回去", color=pal.value, hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def causal_mask(self):
        self.next_section("掩码")
        pal, acts = self.palette, self.acts
        att = acts.decoder_layers[0].self_attention.attention
        h, tokens = CFG.head, acts.decoder_input_tokens
        self.show_title("掩码：只能看前面")
        scores, masked, weights = att.scaled_scores[h], att.masked_scores[h], att.weights[h]
        self.show_number("decoder_scores_scaled", nested(scores))
        self.show_number("decoder_masked_scores", nested(masked))
        self.show_number("decoder_weights", nested(weights))

        area = self.layout.figure
        score_map = Heatmap(scores, ColorScale.diverging(scores), region=area, max_cell=(1.5, 0.72),
                            numbers=CFG.number_format, row_labels=tokens, col_labels=tokens, masked_text="−∞",
                            label_colors=[pal.query] * len(tokens))
        area.place(score_map)
        for label in score_map.col_labels:
            label.set_color(pal.key)

        self.play(FadeIn(score_map), run_time=theme.BEAT)
        self.say("解码器写第 i 个词时\n后面的词还没写出来")
        self.play(score_map.morph(masked, scale=ColorScale.diverging(masked)), run_time=theme.SLOW)
        self.say("右上角填 −∞：\n不许偷看后面", color=pal.warning)
        self.wait(theme.HOLD)
        weight_scale = ColorScale.sequential(1.0)
        for i in range(len(tokens)):
            self.play(score_map.morph(weights, rows=[i], scale=weight_scale), run_time=0.6)
        self.say(rich("softmax 后 $e^(-infinity) = 0$ \\\n只看前面和自己", color=pal.value))
        self.wait(theme.HOLD)
        self.say("训练时 5 个位置\n一次并行算完", hold=True)
        self.clear_stage()

    # --- 7 ---------------------------------------------------------------------------------------------------------

    def cross_attention(self):
        self.next_section("交叉注意力")
        pal, acts = self.palette, self.acts
        att = acts.decoder_layers[0].cross_attention.attention
        h = CFG.head
        self.show_title("交叉注意力")
        weights = att.weights[h]
        self.show_number("cross_weights", nested(weights))
        self.show_number("cross_shapes", {"queries": list(att.query_source.shape),
                                          "keys_values": list(att.key_value_source.shape),
                                          "weights": list(weights.shape)})

        side, main = (self.layout.figure.rows([0.27, 0.73], gap=0.25) if self.is_portrait
                      else self.layout.figure.cols([0.3, 0.7], gap=0.5))
        role = "small" if self.is_portrait else "label"
        q_block = Block(f"Q ← 解码器 [{att.query_source.shape[0]}, {att.query_source.shape[1]}]", color=pal.key,
                        text_color=pal.key, role=role, pad_em=0.6)
        kv_block = Block(f"K, V ← 编码器 [{att.key_value_source.shape[0]}, {att.key_value_source.shape[1]}]",
                         color=pal.query, text_color=pal.query, role=role, pad_em=0.6)
        blocks = VGroup(q_block, kv_block).arrange(DOWN, buff=0.25 if self.is_portrait else 0.4)
        side.fit(blocks)
        map_area, note_area = main.rows([0.86, 0.14], gap=0.05)
        cross_map = Heatmap(weights, ColorScale.sequential(1.0), region=map_area, max_cell=(1.3, 0.62),
                            numbers=CFG.number_format, row_labels=acts.decoder_input_tokens,
                            col_labels=acts.source_tokens, label_role="label",
                            label_colors=[pal.key] * len(acts.decoder_input_tokens))
        map_area.place(cross_map)
        for label in cross_map.col_labels:
            label.set_color(pal.query)
        note = self.note(note_area, "权重随机：这里的“对齐”没有含义")

        self.play(FadeIn(blocks, shift=0.2 * RIGHT), run_time=theme.BEAT)
        self.say("边看原文边写译文")
        self.play(FadeIn(cross_map.row_labels), FadeIn(cross_map.col_labels), run_time=theme.QUICK)
        self.play(LaggedStart(*[FadeIn(cross_map.row_group(i)) for i in range(weights.shape[0])], lag_ratio=0.3),
                  run_time=theme.SLOW)
        self.say("Q 来自解码器（译文）\nK、V 来自编码器（原文）")
        self.wait(theme.HOLD)
        self.say(f"[{weights.shape[0]}, {weights.shape[1]}]：每个译文位置\n在原文上分配权重",
                 color=pal.accent)
        self.play(FadeIn(note), run_time=theme.QUICK)
        self.wait(theme.HOLD * 2)
        self.clear_stage()

    # --- 8 ---------------------------------------------------------------------------------------------------------

    def feed_forward(self):
        self.next_section("前馈网络")
        pal, acts = self.palette, self.acts
        ffn = acts.encoder_layers[0].feed_forward.feed_forward
        t = CFG.ffn_token
        token = acts.source_tokens[t]
        x, pre, hidden, out = ffn.input[t], ffn.pre_activation[t], ffn.hidden[t], ffn.output[t]
        d, d_ffn = x.size, pre.size
        n_zero = int(np.sum(hidden == 0))
        self.show_title("FFN：放大再压回")
        self.show_number("ffn_input", nested(x))
        self.show_number("ffn_pre_activation", nested(pre))
        self.show_number("ffn_hidden", nested(hidden))
        self.show_number("ffn_output", nested(out))
        self.show_number("ffn_sizes", {"d_model": d, "d_ffn": d_ffn, "zeroed": n_zero})

        # Three strips, cells left-aligned, names on the left. Portrait: the 32 hidden units wrap into 2 rows of 16.
        wrap = 2 if self.is_portrait else 1
        region = self.layout.figure
        names = [zh(t, "small", color=pal.muted) for t in (f"“{token}” [{d}]", f"隐藏层 [{d_ffn}]", f"输出 [{d}]")]
        name_w = 0.0 if self.is_portrait else max(m.width for m in names) + 0.25  # portrait: names above strips
        cell = min(0.42, (region.width - name_w) / (d_ffn // wrap))
        x_map = Heatmap(x[None], ColorScale.diverging(x), cell_width=cell)
        pre_map = Heatmap(pre.reshape(wrap, -1), ColorScale.diverging(pre), cell_width=cell)
        out_map = Heatmap(out[None], ColorScale.diverging(out), cell_width=cell)
        up_label = rich(f"$times W_1$：{d} → {d_ffn}", "label", color=pal.key)
        down_label = rich(f"$times W_2$：{d_ffn} → {d}", "label", color=pal.key)
        strips = VGroup(x_map, pre_map, out_map).arrange(DOWN, buff=1.0 + (0.5 if self.is_portrait else 0),
                                                         aligned_edge=LEFT)
        for name, strip in zip(names, strips):
            if self.is_portrait:
                name.next_to(strip, UP, buff=0.12, aligned_edge=LEFT)
            else:
                name.next_to(strip, LEFT, buff=0.25)
        # Portrait: the arrows run down the right of the first strip, clear of the names above the strips.
        arrow_x = x_map.get_right()[0] - cell / 2 if self.is_portrait else x_map.get_x()
        arrows = VGroup(*(arrow([arrow_x, a.get_bottom()[1] - 0.08, 0], [arrow_x, b.get_top()[1] + 0.08, 0])
                          for a, b in ((x_map, pre_map), (pre_map, out_map))))
        for a, label in zip(arrows, (up_label, down_label)):
            label.next_to(a, RIGHT, buff=0.25)
        region.place(VGroup(strips, *names, arrows, up_label, down_label))
        x_cap, h_cap, o_cap = names

        self.play(FadeIn(x_map), FadeIn(x_cap), run_time=theme.BEAT)
        self.say(f"FFN：每个词各自\n过一遍（这里是“{token}”）")
        self.play(Create(arrows[0]), FadeIn(up_label), FadeIn(pre_map, shift=0.2 * DOWN), FadeIn(h_cap),
                  run_time=theme.BEAT)
        self.say(f"先放大到 {CFG.model.ffn_multiplier}×d_model = {d_ffn} 维", color=pal.key)
        self.wait(theme.HOLD)
        self.play(pre_map.morph(hidden.reshape(wrap, -1)), run_time=theme.SLOW)  # ReLU: negatives → 0
        self.say(f"ReLU：负数变 0\n{d_ffn} 个里关掉 {n_zero} 个", color=pal.accent)
        self.wait(theme.HOLD)
        self.play(Create(arrows[1]), FadeIn(down_label), FadeIn(out_map, shift=0.2 * DOWN), FadeIn(o_cap),
                  run_time=theme.BEAT)
        self.say(f"再压回 {d} 维：形状不变", hold=True)
        self.clear_stage()

    # --- 9 ---------------------------------------------------------------------------------------------------------

    def residual_and_norm(self):
        self.next_section("残差与归一化")
        pal, acts = self.palette, self.acts
        self.show_title("残差与 LayerNorm")
        sub = acts.encoder_layers[0].self_attention
        t = CFG.norm_token
        before, after = sub.residual[t], sub.norm.output[t]
        stats = {"before": {"mean": float(before.mean()), "std": float(before.std())},
                 "after": {"mean": float(after.mean()), "std": float(after.std())}}
        self.show_number("layer_norm_stats", stats)

        role = "small" if self.is_portrait else "label"  # portrait: two tall diagrams in a narrow frame

        def diagram(order: list[str]):
            """Bottom-to-top: x, the blocks in ``order`` ("add" is ⊕), the output; the residual branches off x
            and rejoins at ⊕."""
            parts = []
            for name in order:
                if name == "add":
                    parts.append(AddCircle(0.2))
                elif name == "LayerNorm":
                    parts.append(Block(name, color=pal.accent, text_color=pal.accent, role=role, pad_em=0.6))
                else:
                    parts.append(Block(name, color=pal.query, role=role, pad_em=0.6))
            x_in = rich("$x$", role)
            x_out = zh("输出", "small", color=pal.muted)
            chain = VGroup(x_in, *parts, x_out).arrange(UP, buff=0.25)
            links = VGroup(*(connect(a, b) for a, b in zip(chain[:-1], chain[1:])))
            add = parts[order.index("add")]
            side = max(p.get_right()[0] for p in parts) + 0.2
            branch = x_in.get_top() + 0.12 * UP
            skip = elbow([branch, [side, branch[1], 0], [side, add.get_y(), 0], add.get_right() + 0.04 * RIGHT],
                         color=pal.value)
            skip.add(Dot(branch, radius=0.05, color=pal.value))
            skip_label = zh("残差", "small", color=pal.value).next_to(skip, RIGHT, buff=0.1)
            return VGroup(chain, links, skip, skip_label)

        post = diagram(["子层", "add", "LayerNorm"])
        pre = diagram(["LayerNorm", "子层", "add"])
        heads = [zh("Post-LN\n2017 原版", "label"), zh("Pre-LN\nGPT-2 起", "label")]
        # The diagrams are tall: side by side in both aspects.
        for panel, head, dia in zip(self.layout.figure.cols(2, gap=0.3), heads, (post, pre)):
            top, body = panel.rows([0.18, 0.82], gap=0.1)
            top.place(head)
            body.fit(dia, max_grow=1.4)

        self.play(FadeIn(heads[0]), FadeIn(post[0]), Create(post[1]), run_time=theme.BEAT)
        self.play(Create(post[2]), FadeIn(post[3]), run_time=theme.BEAT)
        self.say("⊕ 残差：把输入\n原样加回来", color=pal.value)
        self.say("原版：加完再 LayerNorm", color=pal.accent)
        self.wait(theme.HOLD)
        self.play(FadeIn(heads[1]), FadeIn(pre[0]), Create(pre[1]), Create(pre[2]), FadeIn(pre[3]),
                  run_time=theme.BEAT)
        self.say("现在多用 Pre-LN：\n先归一化，主干直通")
        self.wait(theme.HOLD)
        self.say("LayerNorm：每个词\n减均值，再除以标准差", color=pal.accent)
        self.say(f"“{acts.source_tokens[t]}”：均值 {stats['before']['mean']:.2f} → {abs(stats['after']['mean']):.2f}\n"
                 f"标准差 {stats['before']['std']:.2f} → {stats['after']['std']:.2f}", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 10 --------------------------------------------------------------------------------------------------------

    def decoder_only(self):
        self.next_section("只留解码器")
        pal = self.palette
        self.show_title("只留一半")
        n = CFG.icon_tokens
        rng = np.random.default_rng(CFG.icon_seed)
        q, k = rng.standard_normal((2, n, CFG.model.d_head))
        _, both_ways = scaled_dot_product_attention(q, k, k)
        _, one_way = scaled_dot_product_attention(q, k, k, causal=True)
        self.show_number("icon_allowed", {"bert": (both_ways > 0).tolist(), "gpt": (one_way > 0).tolist()})

        top, bottom = self.layout.figure.rows([0.66, 0.34], gap=0.25)
        panels = self.layout.panels(2, region=top)
        cards = []
        specs = [("BERT：只留编码器", both_ways, "双向：看整句\n擅长理解", pal.query),
                 ("GPT：只留解码器", one_way, "单向：只看前面\n擅长续写", pal.key)]
        for panel, (name, weights, text, color) in zip(panels, specs):
            values = np.where(weights > 0, weights, -np.inf)  # masked keys: empty cells (the causal triangle)
            title = zh(name, "label", color=color)
            caption = zh(text, "small", color=color)
            if self.is_portrait:  # icon left, title and caption right
                cell = min(0.45, panel.height / (n + 0.5))
                icon = Heatmap(values, ColorScale.sequential(float(weights.max()), color=color), cell_width=cell)
                words = VGroup(title, caption).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
                card = VGroup(icon, words).arrange(RIGHT, buff=0.4)
                panel.fit(card)
            else:  # title above, icon and caption below
                head, body = panel.rows([0.22, 0.78], gap=0.1)
                cell = min(0.45, body.height / (n + 1))
                icon = Heatmap(values, ColorScale.sequential(float(weights.max()), color=color), cell_width=cell)
                group = VGroup(icon, caption).arrange(RIGHT, buff=0.3)
                body.fit(group)
                card = VGroup(head.place(title), group)
            cards.append(card)

        prompt = TokenRow(CFG.prompt, role="label")
        written = TokenRow(CFG.continuation, role="label", color=pal.accent)
        line = VGroup(prompt, written).arrange(RIGHT, buff=0.2)
        bottom.fit(line)
        self.show_number("continuation", {"prompt": list(CFG.prompt), "output": list(CFG.continuation)})

        self.play(FadeIn(cards[0]), run_time=theme.BEAT)
        self.say("BERT 只留编码器：\n每个词看整句", color=pal.query)
        self.play(FadeIn(cards[1]), run_time=theme.BEAT)
        self.say("GPT 只留解码器：\n去掉交叉注意力", color=pal.key)
        self.wait(theme.HOLD)
        self.play(FadeIn(prompt, shift=0.2 * RIGHT), run_time=theme.BEAT)
        self.play(LaggedStart(*[FadeIn(t, shift=0.2 * LEFT) for t in written], lag_ratio=0.6), run_time=theme.SLOW)
        self.say("翻译也变成续写：\n给开头，接着往下写", color=pal.accent, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
