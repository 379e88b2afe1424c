"""Transformer data flow: the translation machine, driven by a trained tiny Chinese → English translator.

Render: ``manim -qh scenes/transformer.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/transformer.py`` (9:16).
The model is the committed run ``media/runs/translator/zh_en`` (``shared.runs.load_translator``: d_model 16, 2 heads,
one encoder and one decoder layer, Post-LN); the sentence is a held-out test pair chosen by :func:`chosen_pair`. Every
matrix, bar, token and probability on screen is that model's computation (``shared/math/tiny_transformer.py``);
the √d statistics are random vectors (``shared.math.sphere.query_key_scores``). FlashAttention's tiles are in
``scenes/flash_attention.py``.
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
    Dot,
    FadeIn,
    FadeOut,
    GrowFromEdge,
    Indicate,
    LaggedStart,
    SurroundingRectangle,
    VGroup,
)

from shared import theme
from shared.corpus import PLACES, SentencePair
from shared.math.attention import softmax
from shared.math.sphere import query_key_scores
from shared.math.tiny_transformer import BOS, EOS
from shared.mobjects.blocks import AddCircle, Block, BlockStack, arrow, connect, elbow
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.heatmap import GAP_FRACTION, ColorScale, Heatmap
from shared.mobjects.tokens import TokenRow
from shared.numbers import fill, format_number, num, term
from shared.runs import load_translator
from shared.scene import ExplainerScene, crossfade
from shared.text import formula, rich, zh


@dataclass(frozen=True)
class TransformerConfig:
    """Everything the explainer computes from. Change a value and every matrix and number on screen follows."""

    run: str = "zh_en"  # the translator run in media/runs/translator/
    head: int = 0  # the head whose encoder self-attention and decoder masked attention are drawn
    top_k: int = 3  # candidates listed per decoding step
    cell_decimals: tuple[int, ...] = (2, 1, 0)  # heatmap numbers: the most of these decimals that fit a cell
    scaling_dim: int = 64  # d of the √d demo (512 / 8 heads in Vaswani et al.)
    scaling_keys: int = 8  # keys one query is scored against
    scaling_samples: int = 20000  # random queries for the spread of q·k
    scaling_seed: int = 0
    ffn_token: int = 0  # the source token whose FFN pass is drawn
    norm_token: int = 0  # the source token whose LayerNorm statistics are quoted


CFG = TransformerConfig()


def chosen_pair(test_split) -> SentencePair:
    """The sentence the scene translates: among the held-out pairs whose English moves the place phrase (在 + a
    place) after the object (a non-monotonic alignment), the shortest (fewest Chinese words, then English words,
    then letters), the first in the split on a tie. Short enough for an 8-column heatmap at 343 CSS px."""
    moved = [p for p in test_split if set(p.source) & set(PLACES) and not p.is_monotonic()]
    if not moved:
        raise ValueError("the test split has no pair whose place phrase moves; the scene needs one")
    return min(moved, key=lambda p: (len(p.source), len(p.target), sum(map(len, p.target))))


def reordered_words(pair: SentencePair) -> list[int]:
    """Target positions whose aligned source word comes before that of an earlier target word (moved back)."""
    moved, furthest = [], -1
    for t, a in enumerate(pair.alignment):
        if a is None:
            continue
        if a < furthest:
            moved.append(t)
        furthest = max(furthest, a)
    return moved


class TransformerDataFlow(ExplainerScene):
    """The original Transformer, sublayer by sublayer, with a trained tiny translator's real numbers."""

    def construct(self):
        self.run = load_translator(CFG.run)
        self.pair = chosen_pair(self.run.test_split)
        self.steps = self.run.model.decode(self.pair.source, top_k=CFG.top_k)
        self.translation = tuple(s.chosen for s in self.steps if s.chosen != EOS)
        self.acts = self.run.model.activations(self.pair.source, self.translation)
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

    @property
    def dims(self):
        """The translator's sizes: its TinyTransformerConfig (d_model, n_heads, d_head, d_ffn, layers)."""
        return self.run.model.config

    def two_panels(self, region):
        return (region.rows if self.layout.stacked else region.cols)(2, gap=self.layout.panel_gap)

    def with_fine_print(self, region, text: str):
        """``region`` less a line of small print at its bottom (videos); the whole region where the small print
        goes to the caption file (article)."""
        note = self.fine_print(text)
        if not len(note):
            return region, note
        body, line = region.rows([region.height - note.height - 0.1, note.height + 0.1], gap=0.15)
        line.place(note)
        return body, note

    def token_lines(self, tokens, width: float, role: str, color=None) -> TokenRow:
        """A row of token boxes, broken into as few centred lines as fit ``width``."""
        row = TokenRow(tokens, role=role, color=color)
        gap = 0.35 * self.layout.text_em(role)
        lines, line = [], []
        for item in row:
            if line and sum(m.width for m in line) + gap * len(line) + item.width > width:
                lines.append(line)
                line = []
            line.append(item)
        lines.append(line)
        VGroup(*(VGroup(*ln).arrange(RIGHT, buff=gap) for ln in lines)).arrange(DOWN, buff=gap)
        return row

    def numbered_heatmap(self, values, scale: ColorScale, area, name: str, **kwargs) -> Heatmap:
        """A heatmap in ``area`` writing its values with the most decimals of ``CFG.cell_decimals`` whose widest number
        fits a cell with room to spare (an 8-column map at 343 CSS px has no room for −4.84, but has for −4.8)."""
        plain = Heatmap(values, scale, region=area, **kwargs)
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        room = 0.9 * plain.cell_width * (1 - GAP_FRACTION)
        for decimals in CFG.cell_decimals:
            fmt = f"{{:.{decimals}f}}"
            texts = {format_number(v, fmt) for v in finite}
            longest = max(map(len, texts))
            if max(zh(t, "small", prose=False).width for t in texts if len(t) == longest) <= room:
                break
        return Heatmap(values, scale, region=area, numbers=fmt, name=name, **kwargs)

    def attention_map(self, values, scale, area, name, rows, cols, **kwargs) -> Heatmap:
        """An attention matrix: queries (rows) in the query colour, keys (columns) in the key colour."""
        hm = self.numbered_heatmap(values, scale, area, name, row_labels=rows, col_labels=cols, label_role="label",
                                   label_colors=[self.palette.query] * len(rows), **kwargs)
        for label in hm.col_labels:
            label.set_color(self.palette.key)
        return hm

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def overview(self):
        self.next_section("翻译机全景")
        pal, model, pair = self.palette, self.dims, self.pair
        self.show_title("一台翻译机")
        metrics = self.run.metrics
        role = "small"  # the diagram holds two token rows and five blocks
        em = self.layout.text_em(role)
        frame_buff = block_gap = 0.5 * em
        arrow_room = 1.6 * em
        loop_room = 2 * em  # beside the decoder: the loop that feeds each written word back
        titles = [fill("编码器 ×{n_encoder_layers}", n_encoder_layers=model.n_encoder_layers),
                  fill("解码器 ×{n_decoder_layers}", n_decoder_layers=model.n_decoder_layers)]
        source_tokens = self.plotted("source", pair.source)
        written = self.plotted("translation", self.translation)
        figure = self.layout.figure

        def decoder_labels(width: float) -> tuple[str, ...]:
            """The decoder's sublayers, named as fully as ``width`` allows."""
            for masked in ("掩码自注意力", "掩码注意力"):
                if Block(masked, role=role, pad_em=0.6).width <= width:
                    return masked, "交叉注意力", "FFN"
            return "掩码\n注意力", "交叉\n注意力", "FFN"

        if not self.layout.stacked:
            # 16:9: the stacks lie on their side, the decoder above the encoder, tokens above and below; the top
            # candidates of each step in a column on the right.
            diagram, side = figure.cols([0.76, 0.24], gap=2 * em)
            title_w = max(zh(t, role).width for t in titles) + em
            block_w = (diagram.width - title_w - loop_room - 2 * frame_buff - 2 * block_gap) / 3
            source = self.token_lines(source_tokens, diagram.width, role, color=pal.query)
            output = self.token_lines(written + (EOS,), diagram.width - title_w, role, color=pal.value)
            block_h = min(2.2 * em, (figure.height - source.height - output.height - 3 * arrow_room
                                     - 4 * frame_buff) / 2)
            chains = [BlockStack(names, width=block_w, block_height=block_h, direction=RIGHT, gap=block_gap,
                                 role=role, pad_em=0.6, color=color)
                      for names, color in ((("自注意力", "FFN"), pal.query), (decoder_labels(block_w), pal.key))]
            enc_blocks, dec_blocks = (c.blocks for c in chains)
            chains[1].move_to([diagram.left + title_w + loop_room + frame_buff,
                               figure.top - output.height - arrow_room - frame_buff, 0], aligned_edge=UP + LEFT)
            chains[0].move_to(chains[1].get_center() + DOWN * (block_h + 2 * frame_buff + arrow_room))
            chains[0].shift(RIGHT * (dec_blocks[1].get_x() - enc_blocks[1].get_x()))  # FFN below cross-attention
            frames = [SurroundingRectangle(c, buff=frame_buff, corner_radius=theme.CORNER_RADIUS, color=color,
                                           stroke_width=theme.STROKE_THIN)
                      for c, color in zip(chains, (pal.query, pal.key))]
            names = [zh(t, role, color=color).move_to([diagram.left, f.get_y(), 0], aligned_edge=LEFT)
                     for t, f, color in zip(titles, frames, (pal.query, pal.key))]
            output.next_to(frames[1], UP, buff=arrow_room)
            source.next_to(frames[0], DOWN, buff=arrow_room)
            enc, dec = (VGroup(c, f, n) for c, f, n in zip(chains, frames, names))
            VGroup(enc, dec, output, source).shift(DOWN * (output.get_top()[1] - figure.top
                                                           + source.get_bottom()[1] - figure.bottom) / 2)
            ffn = dec_blocks[-1]
            to_output = arrow([ffn.get_x(), frames[1].get_top()[1] + 0.05, 0],
                              [ffn.get_x(), output.get_bottom()[1] - 0.05, 0], color=pal.value)
            kv = arrow([dec_blocks[1].get_x(), frames[0].get_top()[1] + 0.05, 0],
                       [dec_blocks[1].get_x(), frames[1].get_bottom()[1] - 0.05, 0], color=pal.query)
            kv_label = rich("$K, V$", role, color=pal.query).next_to(kv, RIGHT, buff=0.15)
            loop_x = frames[1].get_left()[0] - loop_room / 2
            feedback = elbow([output.get_left() + LEFT * 0.08, [loop_x, output.get_y(), 0],
                              [loop_x, dec_blocks[0].get_y(), 0], [frames[1].get_left()[0] - 0.05,
                                                                   dec_blocks[0].get_y(), 0]], color=pal.value)
        else:
            # Taller frames: encoder and decoder stand side by side between the written words (top) and the source
            # (bottom); the top candidates of each step go in the caption band.
            region, side = figure, None
            left, right = region.cols(2, gap=2.4 * em)  # the gap holds the K, V arrow and its label
            loop_room = 1.2 * em
            output = self.token_lines(written + (EOS,), region.width - loop_room, role, color=pal.value)
            source = self.token_lines(source_tokens, region.width, role, color=pal.query)
            frame_buff = block_gap = 0.3 * em  # tight: a narrated short leaves the figure 5.3 units tall
            dec_w = right.width - loop_room - 2 * frame_buff

            def stack(names, width, color, title, block_h=0.0):
                return BlockStack(names, width=min(width, 9 * em), block_height=block_h, color=color, title=title,
                                  role=role, gap=block_gap, pad_em=0.4, frame_buff=frame_buff)

            # Both stacks stand on one line above the source row, so the encoder's FFN faces the cross-attention;
            # the blocks grow into the height the token rows and arrows leave.
            natural = stack(decoder_labels(dec_w), dec_w, pal.key, titles[1]).height
            arrow_room = min(arrow_room, (region.height - output.height - source.height - natural) / 2)
            floor = region.bottom + source.height + arrow_room
            height = region.top - output.height - arrow_room - floor
            block_h = min(4.5 * em, (height - zh(titles[1], role).height - 3 * frame_buff - 2 * block_gap) / 3)

            enc = stack(("自注意力", "FFN"), left.width - 2 * frame_buff, pal.query, titles[0], block_h)
            dec = stack(decoder_labels(dec_w), dec_w, pal.key, titles[1], block_h)
            enc.move_to([left.center[0], floor, 0], aligned_edge=DOWN)
            dec.move_to([right.left + (right.width - loop_room) / 2, floor, 0], aligned_edge=DOWN)
            output.next_to(dec, UP, buff=arrow_room).set_x(region.left + (region.width - loop_room) / 2)
            source.next_to(enc, DOWN, buff=arrow_room).set_x(region.center[0])
            VGroup(enc, dec, output, source).shift(UP * (region.top - output.get_top()[1]) / 2)  # centred
            enc_blocks, dec_blocks, frames = enc.blocks, dec.blocks, (enc.frame, dec.frame)
            ffn = dec_blocks[-1]
            to_output = arrow([ffn.get_x(), frames[1].get_top()[1] + 0.05, 0],
                              [ffn.get_x(), output.get_bottom()[1] - 0.05, 0], color=pal.value)
            cross = dec_blocks[1]
            kv = arrow([frames[0].get_right()[0] + 0.05, cross.get_y(), 0],
                       [frames[1].get_left()[0] - 0.05, cross.get_y(), 0], color=pal.query)
            kv_label = rich("$K, V$", role, color=pal.query).next_to(kv, UP, buff=0.1)
            loop_x = frames[1].get_right()[0] + loop_room / 2
            feedback = elbow([output.get_right() + RIGHT * 0.08, [loop_x, output.get_y(), 0],
                              [loop_x, dec_blocks[0].get_y(), 0], [frames[1].get_right()[0] + 0.05,
                                                                   dec_blocks[0].get_y(), 0]], color=pal.value)
        into_encoder = arrow([enc_blocks[0].get_x(), source.get_top()[1] + 0.05, 0],
                             [enc_blocks[0].get_x(), frames[0].get_bottom()[1] - 0.05, 0])
        arrows = VGroup(into_encoder, to_output)

        def readout(k: int):
            """Step k: the top candidates and their probabilities, as a table in the side column, or as the
            caption where there is no side column."""
            step = self.steps[k]
            head = fill("第 {decode_step} 步", decode_step=k + 1)
            candidates = [(token, num(f"step_probability[{k},{r}]", p, "{:.2%}"))
                          for r, (token, p) in enumerate(zip(step.top_tokens, step.top_probabilities))]
            if side is None:
                (token, p), *rest = candidates
                text = f"{head}：{token} {p}\n其次：" + "，".join(f"{t} {q}" for t, q in rest)
                return self.layout.caption.place(zh(text, "body", color=pal.accent))
            rows = VGroup()
            for r, (token, p) in enumerate(candidates):
                color = pal.accent if r == 0 else pal.muted
                rows.add(VGroup(zh(token, role, color=color, prose=False), zh(p, role, color=color)))
            width = max(r[0].width for r in rows) + 1.5 * em
            for r in rows:
                r[1].next_to(r[0], RIGHT, buff=0).shift(RIGHT * (width - r[0].width))
            rows.arrange(DOWN, aligned_edge=LEFT, buff=0.4 * em)
            group = VGroup(zh(head, role, color=pal.muted), rows).arrange(DOWN, aligned_edge=LEFT, buff=0.6 * em)
            return group.move_to(side.center)

        with self.voice("先给答案：最早的 Transformer 就是一台翻译机。编码器读原文，解码器写译文。"):
            self.play(FadeIn(enc), FadeIn(dec), run_time=theme.BEAT)
            self.say("原版 Transformer：\n编码器 + 解码器")
        with self.voice(fill("这是我们训练的一台小翻译机，只有 {n_parameters:,} 个参数。下面这句中文来自测试集，"
                             "训练时它一次也没见过。", n_parameters=metrics["n_parameters"])):
            self.play(FadeIn(source, shift=0.2 * UP), Create(arrows[0]), run_time=theme.BEAT)
            self.say(fill("{n_parameters:,} 个参数的小模型\n这句来自测试集：没见过",
                          n_parameters=metrics["n_parameters"]), color=pal.query)
        with self.voice("编码器一次读完整句，每个词都能看到前后所有的词，再把读到的交给解码器。"):
            self.play(Create(kv), FadeIn(kv_label), run_time=theme.BEAT)
            self.say("编码器读完整句\n把 K、V 交给解码器", color=pal.query)
        with self.voice("解码器一个词一个词地写：每一步给所有英文词打概率，写下最大的那个，再喂回去写下一个。"):
            self.play(Create(arrows[1]), Create(feedback), run_time=theme.QUICK)
            current = self.caption_mob if side is None else None
            for k in range(len(self.steps)):
                new = readout(k)
                swap = crossfade(current, new, match=False) if current is not None else FadeIn(new)
                self.play(swap, FadeIn(output[k], shift=0.15 * UP), run_time=0.6)
                current = new
            if side is None:
                self.caption_mob = current  # the next caption replaces it
        worst = min(s.top_probabilities[0] for s in self.steps)
        wrong = [k for k, word in enumerate(written) if k >= len(pair.target) or word != pair.target[k]]
        wrong_words = len(wrong) + max(0, len(pair.target) - len(written))  # a word left out is wrong too
        exact = wrong_words == 0
        for k in wrong:  # a word the reference does not have there stays on screen, marked
            output[k][0].set_stroke(pal.warning, theme.STROKE)
        verdict = "和参考译文一字不差" if exact else fill("有 {wrong_words} 个词和参考译文不同", wrong_words=wrong_words)
        with self.voice(fill("它很有把握：最没把握的一步，第一名也有 {least_top_probability:.2%}。"
                             "写出的译文" + verdict + "。", least_top_probability=worst)):
            self.say(fill("最没把握的一步也有 {least_top_probability:.2%}\n", least_top_probability=worst)
                     + verdict, color=pal.value if exact else pal.warning, hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def into_the_model(self):
        self.next_section("进入模型")
        pal, acts = self.palette, self.acts
        self.show_title("进入模型")
        matrices = {"词向量": self.plotted("source_embeddings", acts.source_embeddings),
                    "位置编码": self.plotted("positional_encodings", acts.source_positional_encodings),
                    "输入 X": self.plotted("encoder_input", acts.encoder_input)}
        scale = ColorScale.diverging(np.concatenate(list(matrices.values())))
        seq, d = acts.encoder_input.shape
        shape = fill("[{seq_len}, {d_model}]", seq_len=seq, d_model=d)

        prov = self.run.log["provenance"]
        figure, note = self.with_fine_print(self.layout.figure, fill(
            "训练：{device}，{wall_seconds:.0f} 秒" + ("\n" if self.layout.stacked else "，") + "{steps} 步",
            device=term(prov["device"]), wall_seconds=prov["wall_seconds"], steps=self.run.log["config"]["steps"]))
        # Landscape: E + PE = X side by side. Portrait (narrow): E + PE, then E turns into X in place.
        n_maps = 2 if self.is_portrait else 3
        slots = figure.cols([1.2, 1, 1][:n_maps], gap=0.7 if self.is_portrait else 0.9)
        label_h = 1.3 * self.layout.text_em("label")
        maps, headers = [], []
        for k, (values, slot) in enumerate(zip(list(matrices.values())[:n_maps], slots)):
            area = slot.rows([label_h, slot.height - label_h], gap=0.1)[1]
            labels = acts.source_tokens if k == 0 else ()  # the other maps' cells line up with these rows
            maps.append(Heatmap(values, scale, region=area, max_cell=(0.6, 0.6), row_labels=labels,
                                label_role="small"))
        for hm, slot in zip(maps, slots):
            hm.move_to(slot.center + DOWN * label_h / 2)
            hm.shift(UP * (maps[0].cells.get_y() - hm.cells.get_y()))
        for name, hm in zip(matrices, maps):  # portrait columns are too narrow for the shape too
            headers.append(zh(name if self.is_portrait else f"{name}  {shape}", "label").next_to(hm.cells, UP,
                                                                                                buff=0.18))
        ops = [zh("+", "body", prose=False), zh("=", "body", prose=False)]
        for op, (a, b) in zip(ops, zip(maps[:-1], maps[1:])):
            op.move_to((a.cells.get_right() + b.cells.get_left()) / 2)
        x_header = zh("输入 X", "label", color=pal.accent).move_to(headers[0])

        with self.voice(fill("进了模型，先把词变成数：每个词查一张表，得到 {d_model} 个数。颜色表示正负和大小。",
                             d_model=d)):
            self.play(FadeIn(maps[0].row_labels), FadeIn(headers[0]), FadeIn(note), run_time=theme.QUICK)
            self.play(LaggedStart(*[FadeIn(maps[0].row_group(i), shift=0.15 * RIGHT) for i in range(seq)],
                                  lag_ratio=0.3), run_time=theme.SLOW)
            self.say(fill("查表：每个词\n变成 {d_model} 个数", d_model=d))
        with self.voice("这张表是训练出来的。再加上位置编码：每个位置一组 sin 和 cos，模型才分得清谁在前、谁在后。"):
            self.play(FadeIn(ops[0]), FadeIn(maps[1]), FadeIn(headers[1]), run_time=theme.BEAT)
            self.say("再加位置编码：\n每个位置一组 sin/cos", color=pal.key)
        with self.voice(fill("两者相加，就是输入 X，形状是 {seq_len} 乘 {d_model}：{seq_len} 个词，每个 {d_model} 个数。"
                             "之后每一层都保持这个形状。", seq_len=seq, d_model=d)):
            if self.is_portrait:  # the encodings slide onto the embeddings and add into them
                self.play(maps[1].animate.move_to(maps[0].cells).set_opacity(0), FadeOut(headers[1]), FadeOut(ops[0]),
                          maps[0].morph(acts.encoder_input), crossfade(headers[0], x_header, match=False),
                          run_time=theme.SLOW)
                x_map = VGroup(maps[0], x_header)  # X alone: it takes the figure
                grow = min(figure.width / x_map.width, figure.height / x_map.height, 1.5)
                self.play(x_map.animate.scale(grow).move_to(figure.center), run_time=theme.QUICK)
            else:
                self.play(FadeIn(ops[1]), FadeIn(maps[2]), FadeIn(headers[2]), run_time=theme.BEAT)
            self.say(f"形状 {shape}\n之后每层都不变", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def attention_scores(self):
        self.next_section("自注意力")
        pal, acts, model = self.palette, self.acts, self.dims
        att = acts.encoder_layers[0].self_attention.attention
        h, tokens = CFG.head, acts.source_tokens
        self.show_title("自注意力：打分")
        qkv = {"Q": (att.q[h], pal.query), "K": (att.k[h], pal.key), "V": (att.v[h], pal.value)}
        scores = att.scaled_scores[h]
        self.plotted("encoder_qkv", {name: values for name, (values, _) in qkv.items()})

        # Side by side where the figure is wide; else one after the other, each in the whole figure.
        top, bottom = ((self.layout.figure,) * 2 if self.layout.stacked
                       else self.layout.figure.cols([0.36, 0.64], gap=0.6))
        head_note = zh(fill("头 {head}/{n_heads}：Q、K、V 各 [{seq_len}, {d_head}]", head=h + 1, n_heads=model.n_heads,
                            seq_len=len(tokens), d_head=model.d_head), "label", color=pal.muted)
        matrix_area, note_area = top.rows([top.height - 2 * head_note.height, 2 * head_note.height])
        cells = matrix_area.cols(3, gap=0.5) if self.layout.stacked else matrix_area.rows(3, gap=0.25)
        heads = [rich(f"${name} = X W_{name}$", "label", color=color) for name, (_, color) in qkv.items()]
        head_w = max(m.width for m in heads) + 0.3
        small_maps = VGroup()
        for head, (values, _), cell in zip(heads, qkv.values(), cells):
            if self.layout.stacked:  # name over matrix
                head_area, area = cell.rows([1.6 * head.height, cell.height - 1.6 * head.height])
            else:  # name left of matrix
                head_area, area = cell.cols([head_w, cell.width - head_w])
            hm = Heatmap(values, ColorScale.diverging(values), region=area, max_cell=(0.5, 0.5))
            area.place(hm, align="center" if self.layout.stacked else "left")
            head_area.place(head, align="center" if self.layout.stacked else "right")
            small_maps.add(VGroup(head, hm))
        note_area.place(head_note)

        score_map = self.attention_map(scores, ColorScale.diverging(scores), bottom, "encoder_scores", tokens,
                                       tokens, max_cell=(1.2, 0.75))
        bottom.place(score_map)
        weights = att.weights[h]
        focus = int(np.argmax(weights.max(axis=1)))  # the row whose attention is the most concentrated
        target = int(np.argmax(scores[focus]))
        self.plotted("focus", {"row": focus, "column": target})

        with self.voice("先给答案：自注意力，就是句子里每个词给所有词打分。每个词先乘三个训练好的矩阵，得到 Q、K、V。"):
            self.play(LaggedStart(*[FadeIn(g, shift=0.2 * DOWN) for g in small_maps], lag_ratio=0.3),
                      FadeIn(head_note), run_time=theme.SLOW)
            self.say(fill("每个词乘 {projections} 个矩阵：\nQ 去问，K 来答，V 是内容", projections=len(qkv)))
        with self.voice(fill("Q 去问，K 来答：Q 乘 K 的转置，再除以根号 {d_head}，就是分数。", d_head=model.d_head)):
            if self.layout.stacked:
                self.play(FadeOut(small_maps), FadeOut(head_note), run_time=theme.QUICK)
            self.play(FadeIn(score_map.row_labels), FadeIn(score_map.col_labels), run_time=theme.QUICK)
            self.play(LaggedStart(*[FadeIn(score_map.row_group(i)) for i in range(len(tokens))], lag_ratio=0.2),
                      run_time=theme.SLOW)
            self.say(formula(f"\"分数\" = Q K^T \\/ sqrt({num('d_head', model.d_head)})", "body"))
        box = score_map.outline(rows=[focus], color=pal.accent)
        cell_box = score_map.outline(rows=[focus], cols=[target], color=pal.value)
        with self.voice(f"看“{tokens[focus]}”这一行：它给“{tokens[target]}”打的分最高。"):
            self.play(Create(box), run_time=theme.QUICK)
            self.play(Create(cell_box), run_time=theme.QUICK)
            self.say(f"“{tokens[focus]}”这一行：\n给“{tokens[target]}”打分最高", color=pal.accent, hold=True)
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def attention_weighted_sum(self):
        self.next_section("加权求和")
        pal, acts, model = self.palette, self.acts, self.dims
        att = acts.encoder_layers[0].self_attention.attention
        h, tokens = CFG.head, acts.source_tokens
        self.show_title("softmax 与加权求和")
        scores, weights, v, out = att.scaled_scores[h], att.weights[h], att.v[h], att.head_outputs[h]
        focus = int(np.argmax(weights.max(axis=1)))
        self.plotted("encoder_values", {"v": v, "head_output": out})

        # Side by side where the figure is wide; else the weights, then the sum, each in the whole figure.
        left, right = ((self.layout.figure,) * 2 if self.layout.stacked
                       else self.layout.figure.cols([0.62, 0.38], gap=0.5))
        sums = VGroup(*(zh("Σ " + num(f"encoder_weight_row_sum[{i}]", s, "{:.2f}"), "small", color=pal.value)
                        for i, s in enumerate(weights.sum(axis=1))))
        sum_gap = 0.15
        map_area = left.cols([left.width - sums[0].width - sum_gap, sums[0].width], gap=sum_gap)[0]
        # Scores and weights need different digits in a narrow cell (−3.4 against 0.95): two maps, cross-faded.
        score_map, weight_map = (self.attention_map(values, color_scale, map_area, name, tokens, tokens,
                                                    max_cell=(1.2, 0.72))
                                 for values, color_scale, name in (
                                     (scores, ColorScale.diverging(scores), "encoder_scores"),
                                     (weights, ColorScale.sequential(1.0), "encoder_weights")))
        for i, label in enumerate(sums):
            label.next_to(weight_map.cells[i], RIGHT, buff=sum_gap)
        left.place(VGroup(weight_map, sums))
        score_map.move_to(weight_map)

        order = np.argsort(-weights[focus], kind="stable")[:2]  # the two largest terms of the focus row's sum
        # The focus row's output as the sum it is: weight × V row, + …, = output row (strips of d_head cells).
        names = [num(f"focus_weight[{j}]", weights[focus, j], "{:.2f}") + f" · V[{tokens[j]}]" for j in order]
        names = [("+ " if k else "") + n for k, n in enumerate(names)] + ["+ …", f"= 输出[{tokens[focus]}]"]
        labels = [zh(n, "label", color=pal.accent if k == len(names) - 1 else pal.text) for k, n in enumerate(names)]
        label_w = max(m.width for m in labels) + 0.3
        strip_scale = ColorScale.diverging(np.concatenate([v, out]))
        cell = min(0.5, (right.width - label_w) / v.shape[1], right.height / (1.5 * len(labels)))
        strips = [Heatmap(v[j][None], strip_scale, cell_width=cell) for j in order]
        strips += [VGroup(), Heatmap(out[focus][None], strip_scale, cell_width=cell)]
        pitch = 1.5 * max(cell, labels[0].height)
        for k, (label, strip) in enumerate(zip(labels, strips)):  # labels right-aligned, strips in one column
            label.move_to([0, -k * pitch, 0], aligned_edge=RIGHT)
            if len(strip):
                strip.next_to(label, RIGHT, buff=0.3)
        lines = VGroup(*(VGroup(label, strip) for label, strip in zip(labels, strips)))
        right.place(lines)
        terms, total = VGroup(*lines[:-1]), lines[-1]

        with self.voice(fill("分数还不能直接用。softmax 把每一行变成一组权重：都是正数，加起来等于 {row_total}。",
                             row_total=1)):
            self.play(FadeIn(score_map), run_time=theme.BEAT)
            self.say(fill("softmax：每一行变成\n加起来为 {row_total} 的权重", row_total=1))
            self.play(crossfade(score_map, weight_map, match=False), run_time=theme.SLOW)
            self.play(LaggedStart(*[FadeIn(label, shift=0.1 * LEFT) for label in sums], lag_ratio=0.15),
                      run_time=theme.BEAT)
        focus_box = weight_map.outline(rows=[focus], color=pal.accent)
        with self.voice(f"“{tokens[focus]}”把 " + num(f"focus_weight[{order[0]}]", weights[focus, order[0]], "{:.2f}")
                        + f" 的注意力给了“{tokens[order[0]]}”。它的输出，就是按这些权重，把 V 的各行加起来。"):
            self.play(Create(focus_box), run_time=theme.QUICK)
            if self.layout.stacked:
                self.play(FadeOut(weight_map), FadeOut(sums), FadeOut(focus_box), run_time=theme.QUICK)
            self.play(LaggedStart(*[FadeIn(t, shift=0.2 * RIGHT) for t in terms], lag_ratio=0.4),
                      run_time=theme.BEAT)
            self.play(FadeIn(total, shift=0.2 * DOWN), run_time=theme.BEAT)
            self.say(f"“{tokens[focus]}”的输出 = 按权重\n把 V 的各行加起来", color=pal.accent)
        with self.voice(fill("{n_heads} 个头各算一遍，拼回 {seq_len} 乘 {d_model}。", n_heads=model.n_heads,
                             seq_len=len(tokens), d_model=model.d_model)):
            self.say(fill("{n_heads} 个头各算一遍\n拼回 [{seq_len}, {d_model}]", n_heads=model.n_heads,
                          seq_len=len(tokens), d_model=model.d_model), hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def why_scale(self):
        self.next_section("为什么除以根号d")
        pal = self.palette
        d, n = CFG.scaling_dim, CFG.scaling_keys
        self.show_title("为什么除以 √d？")
        raw, scaled = query_key_scores(d, CFG.scaling_samples, n, seed=CFG.scaling_seed)  # random N(0, 1) q, k
        weights = {"raw": softmax(raw), "scaled": softmax(scaled)}
        spread = float(raw.std())
        mean_max = {k: float(w.max(axis=-1).mean()) for k, w in weights.items()}
        example = self.plotted("scaling_example", {"raw": raw[0], "scaled": scaled[0], "weights_raw":
                                                   weights["raw"][0], "weights_scaled": weights["scaled"][0]})

        limit = float(np.ceil(np.abs(raw[0]).max() / 5) * 5)
        cases = [("不缩放：q·k", example["raw"], example["weights_raw"], "raw", pal.warning),
                 (fill("除以 √{d} = {sqrt_d:g}", d=d, sqrt_d=np.sqrt(d)), example["scaled"],
                  example["weights_scaled"], "scaled", pal.value)]
        xs = np.arange(n)
        groups = []
        for panel, (name, score, weight, key, color) in zip(self.two_panels(self.layout.figure), cases):
            head, body = panel.rows([0.14, 0.86] if self.layout.stacked else [0.15, 0.85], gap=0.1)
            stat = head.place(zh("最大权重平均 " + num(f"mean_max_weight_{key}", mean_max[key], "{:.2f}"), "label",
                                 color=color), align="right")
            score_area, weight_area = body.cols(2, gap=0.5)
            score_chart = Chart(score_area, AxisSpec(-0.6, n - 0.4, []),
                                AxisSpec(-limit, limit, numeric_ticks("score_tick", [-limit, 0, limit]), "分数"))
            weight_chart = Chart(weight_area, AxisSpec(-0.6, n - 0.4, []),
                                 AxisSpec(0, 1, numeric_ticks("weight_tick", [0, 0.5, 1]), "softmax 权重"))
            zero_line = score_chart.hline(0, pal.grid)
            score_bars = score_chart.bars(xs, score, pal.query, baseline=0)
            weight_bars = weight_chart.bars(xs, weight, color)
            title = head.place(zh(name, "label", color=color), align="left")
            groups.append((title, score_chart, zero_line, score_bars, weight_chart, weight_bars, stat))

        narration = [
            fill("先给答案：不除的话，分数太大，softmax 几乎全押在一个词上。d 等于 {d} 时，随机向量点积的标准差约 "
                 "{dot_spread:.1f}，正好是根号 d；最大的权重平均有 {mean_max_weight_raw:.2f}。", d=d, dot_spread=spread,
                 mean_max_weight_raw=mean_max["raw"]),
            fill("除以根号 d，标准差回到 {scaled_spread:.2f}，最大权重平均只剩 {mean_max_weight_scaled:.2f}："
                 "权重分得开，梯度也传得回去。", scaled_spread=spread / np.sqrt(d),
                 mean_max_weight_scaled=mean_max["scaled"]),
        ]
        captions = [
            (fill("d = {d}：q·k 的标准差\n≈ {dot_spread:.1f}，就是 √d", d=d, dot_spread=spread), None),
            (fill("除以 √d：标准差\n回到 {scaled_spread:.2f}", scaled_spread=spread / np.sqrt(d)), pal.value),
        ]
        verdicts = [("softmax 几乎全押一个词\n其余的词几乎分不到", pal.warning), ("权重分得开，\n梯度也传得回去", pal.value)]
        for k, (title, score_chart, zero_line, score_bars, weight_chart, weight_bars, stat) in enumerate(groups):
            with self.voice(narration[k]):
                self.play(FadeIn(title), FadeIn(score_chart), FadeIn(zero_line), FadeIn(weight_chart),
                          run_time=theme.QUICK)
                self.play(*[GrowFromEdge(b, DOWN if s >= 0 else UP) for b, s in zip(score_bars, cases[k][1])],
                          run_time=theme.BEAT)
                self.say(captions[k][0], color=captions[k][1])
                self.play(*[GrowFromEdge(b, DOWN) for b in weight_bars], FadeIn(stat), run_time=theme.BEAT)
                self.say(verdicts[k][0], color=verdicts[k][1], hold=True)
        with self.voice(fill("回到我们的小翻译机：每个头 {d_head} 维，它的分数除以根号 {d_head}。",
                             d_head=self.dims.d_head)):
            self.say(fill("小翻译机每个头 {d_head} 维\n分数除以 √{d_head}", d_head=self.dims.d_head), hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def causal_mask(self):
        self.next_section("掩码")
        pal, acts = self.palette, self.acts
        att = acts.decoder_layers[0].self_attention.attention
        h, tokens = CFG.head, acts.decoder_input_tokens
        self.show_title("掩码：只能看前面")
        scores, masked, weights = att.scaled_scores[h], att.masked_scores[h], att.weights[h]

        area = self.layout.figure
        score_map = self.attention_map(scores, ColorScale.diverging(scores), area, "decoder_scores", tokens, tokens,
                                       max_cell=(1.5, 0.72), masked_text="−∞")
        weight_map = self.attention_map(weights, ColorScale.sequential(1.0), area, "decoder_weights", tokens,
                                        tokens, max_cell=(1.5, 0.72))
        area.place(score_map)
        weight_map.move_to(score_map)

        with self.voice(f"先给答案：解码器写一个词时，只能看已经写出的词。它的输入是开始符 {BOS}，加上已经写出的词。"):
            self.play(FadeIn(score_map), run_time=theme.BEAT)
            self.say("写第 i 个词时\n后面的词还没写出来")
        with self.voice("所以把右上角的分数都换成负无穷：不许偷看后面。"):
            self.play(score_map.morph(masked, scale=ColorScale.diverging(masked)), run_time=theme.SLOW)
            self.say("右上角填 −∞：\n不许偷看后面", color=pal.warning)
        zero = num("exp_minus_infinity", float(np.exp(-np.inf)), "{:g}")
        with self.voice(f"softmax 以后，负无穷变成 {zero}：每个词只看自己和前面。"):
            self.play(crossfade(score_map, weight_map, match=False), run_time=theme.SLOW)
            self.say(rich(f"softmax 后 $e^(-infinity) = {zero}$\n只看前面和自己", color=pal.value))
        with self.voice(fill("训练时，{positions} 个位置一次并行算完，不用一个一个等。", positions=len(tokens))):
            self.say(fill("训练时 {positions} 个位置\n一次并行算完", positions=len(tokens)), hold=True)
        self.clear_stage()

    # --- 7 ---------------------------------------------------------------------------------------------------------

    def cross_attention(self):
        self.next_section("交叉注意力")
        pal, acts, pair = self.palette, self.acts, self.pair
        att = acts.decoder_layers[-1].cross_attention.attention
        self.show_title("交叉注意力")
        weights = att.weights.mean(axis=0)  # both heads averaged, as the run's alignment score
        rows = self.translation + (EOS,)  # row t is the step that writes rows[t]

        region, note = self.with_fine_print(self.layout.figure, fill(
            "{n_heads} 个头的平均；句子：测试集里\n地点挪到句尾的最短一句", n_heads=self.dims.n_heads))
        side, main = (region.rows([0.2, 0.8], gap=0.25) if self.layout.stacked else region.cols([0.28, 0.72], gap=0.5))
        role = "small" if self.layout.stacked else "label"
        q_block = Block(fill("Q ← 解码器 [{queries}, {d_model}]", queries=len(rows), d_model=self.dims.d_model),
                        color=pal.key, text_color=pal.key, role=role, pad_em=0.6)
        kv_block = Block(fill("K, V ← 编码器 [{keys}, {d_model}]", keys=len(pair.source), d_model=self.dims.d_model),
                         color=pal.query, text_color=pal.query, role=role, pad_em=0.6)
        blocks = VGroup(q_block, kv_block).arrange(DOWN, buff=0.25 if self.layout.stacked else 0.5)
        side.place(blocks)
        cross_map = self.numbered_heatmap(weights, ColorScale.sequential(1.0), main, "cross_attention",
                                          max_cell=(1.3, 0.62), row_labels=rows, col_labels=pair.source,
                                          label_role="label", label_colors=[pal.key] * len(rows))
        for label in cross_map.col_labels:
            label.set_color(pal.query)
        main.place(cross_map)
        aligned = [(t, a) for t, a in enumerate(pair.alignment)
                   if a is not None and t < len(self.translation) and self.translation[t] == pair.target[t]]
        self.plotted("aligned_cells", aligned)
        hits = sum(int(np.argmax(weights[t]) == a) for t, a in aligned)
        moved = reordered_words(pair)
        moved_en = " ".join(pair.target[t] for t in moved)
        moved_zh = "”“".join(pair.source[pair.alignment[t]] for t in moved)
        boxes = VGroup(*(cross_map.outline(rows=[t], cols=[a], color=pal.accent) for t, a in aligned))
        moved_boxes = VGroup(*(boxes[i] for i, (t, _) in enumerate(aligned) if t in moved))

        with self.voice("先给答案：交叉注意力，就是用解码器的 Q，去查编码器的 K 和 V，边看原文边写译文。"):
            self.play(FadeIn(blocks, shift=0.2 * RIGHT), FadeIn(note), run_time=theme.BEAT)
            self.say("边看原文边写译文")
        with self.voice("每一行是写下一个英文词的那一步：它在中文原文上分配一次注意力，颜色越亮，看得越多。"):
            self.play(FadeIn(cross_map.row_labels), FadeIn(cross_map.col_labels), run_time=theme.QUICK)
            self.play(LaggedStart(*[FadeIn(cross_map.row_group(i)) for i in range(len(rows))], lag_ratio=0.3),
                      run_time=theme.SLOW)
            self.say("Q 来自译文，\nK、V 来自原文")
        with self.voice(fill("框出来的是每个英文词对应的中文词：{aligned_words} 个里，{hits} 个是它看得最多的。",
                             aligned_words=len(aligned), hits=hits)):
            self.play(Create(boxes), run_time=theme.BEAT)
            self.say(fill("{hits}/{aligned_words} 个词\n看的正是对应的原文", hits=hits, aligned_words=len(aligned)),
                     color=pal.accent)
        with self.voice(f"注意最后：{moved_en} 挪到了英文句尾，它的注意力也跳回原文前面的“{moved_zh}”。"):
            self.play(Indicate(moved_boxes, color=pal.accent, scale_factor=1.15), run_time=theme.SLOW)
            self.say(f"{moved_en} 挪到句尾，\n注意力跳回“{moved_zh}”", color=pal.accent)
        with self.voice(fill("没人教过它哪个词对哪个词，训练只让它学翻译。整个测试集上，{alignment_accuracy:.1%} "
                             "的词看的都是对应的原文词。",
                             alignment_accuracy=self.run.metrics["test_alignment_accuracy"])):
            self.say(fill("没人教过它对齐\n测试集 {alignment_accuracy:.1%} 的词都看对",
                          alignment_accuracy=self.run.metrics["test_alignment_accuracy"]), hold=True)
        self.clear_stage()

    # --- 8 ---------------------------------------------------------------------------------------------------------

    def feed_forward(self):
        self.next_section("前馈网络")
        pal, acts, model = self.palette, self.acts, self.dims
        ffn = acts.encoder_layers[0].feed_forward.feed_forward
        t = CFG.ffn_token
        token = acts.source_tokens[t]
        x, pre, hidden, out = (self.plotted(f"ffn_{name}", a[t]) for name, a in (
            ("input", ffn.input), ("pre_activation", ffn.pre_activation), ("hidden", ffn.hidden),
            ("output", ffn.output)))
        d, d_ffn = x.size, pre.size
        n_zero = int(np.sum(hidden == 0))
        self.show_title("FFN：放大再压回")

        # Portrait: three horizontal strips, the hidden layer wrapped into rows of d. Landscape: three columns.
        wrap = d_ffn // d
        region = self.layout.figure
        names = [zh(t, "small", color=pal.muted) for t in (
            f"“{token}” " + fill("[{d_model}]", d_model=d), "隐藏层 " + fill("[{d_ffn}]", d_ffn=d_ffn),
            "输出 " + fill("[{d_model}]", d_model=d))]
        up_label = rich(f"$times W_{term('1')}$ " + fill("{d_model} → {d_ffn}", d_model=d, d_ffn=d_ffn), "label",
                        color=pal.key)
        down_label = rich(f"$times W_{term('2')}$ " + fill("{d_ffn} → {d_model}", d_model=d, d_ffn=d_ffn), "label",
                          color=pal.key)
        if self.is_portrait:
            cell = min(0.45, region.width / d)
            shapes = [(1, d), (wrap, d), (1, d)]
            name_room = names[0].height + 0.15
            arrow_len = max(up_label.height, 0.6) + 0.5
            cell = min(cell, (region.height - 3 * name_room - 2 * arrow_len) / (2 + wrap))
        else:
            arrow_len = max(up_label.width, down_label.width) + 0.6
            cell = min(0.45, (region.height - names[0].height - 0.2) / d)
            shapes = [(d, 1), (d, wrap), (d, 1)]
        width = cell if self.is_portrait else min(4 * cell, (region.width - 2 * arrow_len - 1.0) / (2 + wrap))
        strips = [Heatmap(v.reshape(shape[::-1]).T if not self.is_portrait else v.reshape(shape),
                          ColorScale.diverging(v), cell_width=width, cell_height=cell)
                  for v, shape in zip((x, pre, out), shapes)]
        x_map, pre_map, out_map = strips
        direction = DOWN if self.is_portrait else RIGHT
        VGroup(*strips).arrange(direction, buff=arrow_len + (names[0].height + 0.15 if self.is_portrait else 0))
        for name, strip in zip(names, strips):
            name.next_to(strip, UP, buff=0.12)
        arrows = VGroup(*(arrow(a.get_edge_center(direction) + direction * 0.1,
                                b.get_edge_center(-direction) - direction * (0.1 + (name_room if self.is_portrait
                                                                                   else 0)))
                          for a, b in ((x_map, pre_map), (pre_map, out_map))))
        if not self.is_portrait:
            for a in arrows:
                a.set_y(x_map.get_y())
        for a, label in zip(arrows, (up_label, down_label)):
            label.next_to(a, RIGHT if self.is_portrait else UP, buff=0.2)
        region.place(VGroup(*strips, *names, arrows, up_label, down_label))
        x_cap, h_cap, o_cap = names

        with self.voice(f"注意力之后，每个词还要各自过一遍前馈网络 FFN。这里是“{token}”的 "
                        + fill("{d_model} 个数。", d_model=d)):
            self.play(FadeIn(x_map), FadeIn(x_cap), run_time=theme.BEAT)
            self.say(f"FFN：每个词各自\n过一遍（这里是“{token}”）")
        with self.voice(fill("先乘 {w1}，放大到 {d_ffn} 维，是 d_model 的 {ffn_multiplier} 倍。", w1=term("W1"), d_ffn=d_ffn,
                             ffn_multiplier=model.ffn_multiplier)):
            self.play(Create(arrows[0]), FadeIn(up_label), FadeIn(pre_map, shift=0.2 * direction), FadeIn(h_cap),
                      run_time=theme.BEAT)
            self.say(fill("先放大到 {ffn_multiplier}×d_model\n= {d_ffn} 维", ffn_multiplier=model.ffn_multiplier,
                          d_ffn=d_ffn), color=pal.key)
        with self.voice(fill("ReLU 把负数都清零：{d_ffn} 个里关掉了 {relu_zeros} 个。", d_ffn=d_ffn,
                             relu_zeros=n_zero)):
            hidden_shaped = hidden.reshape(shapes[1][::-1]).T if not self.is_portrait else hidden.reshape(shapes[1])
            self.play(pre_map.morph(hidden_shaped), run_time=theme.SLOW)
            self.say(fill("ReLU：负数清零\n{d_ffn} 个里关掉 {relu_zeros} 个", d_ffn=d_ffn, relu_zeros=n_zero),
                     color=pal.accent)
        with self.voice(fill("再乘 {w2}，压回 {d_model} 维。形状不变，才能一层一层往上叠。", w2=term("W2"), d_model=d)):
            self.play(Create(arrows[1]), FadeIn(down_label), FadeIn(out_map, shift=0.2 * direction), FadeIn(o_cap),
                      run_time=theme.BEAT)
            self.say(fill("再压回 {d_model} 维：形状不变", d_model=d), hold=True)
        self.clear_stage()

    # --- 9 ---------------------------------------------------------------------------------------------------------

    def residual_and_norm(self):
        self.next_section("残差与归一化")
        pal, acts = self.palette, self.acts
        self.show_title("残差与 LayerNorm")
        sub = acts.encoder_layers[0].self_attention
        t = CFG.norm_token
        before, after = sub.residual[t], sub.norm.standardized[t]  # before γ, β: mean 0, std 1 by construction
        stats = {"mean_before": before.mean(), "std_before": before.std(), "mean_after": after.mean(),
                 "std_after": after.std()}
        region, note = self.with_fine_print(self.layout.figure, "两图只画结构；本片模型是 Post-LN")
        panels = region.rows(2, gap=0.35)
        role = "label"
        em = self.layout.text_em(role)

        def diagram(order: list[str], head: str, area) -> VGroup:
            """The chain x → blocks in ``order`` ("add" is ⊕) → output, left to right, sized to ``area`` below
            ``head``; the residual branches off x, runs above the chain and rejoins at ⊕."""
            title = zh(head, role, color=pal.text)
            if self.layout.stacked:  # the title above the chain
                title_area, body = area.rows([1.6 * title.height, area.height - 1.6 * title.height], gap=0.05)
            else:  # the title left of the chain: a wide figure is short
                title_area, body = area.cols([title.width + 2 * em, area.width - title.width - 2 * em])
            block_h = min(body.height * 0.5, 2.4 * em)
            parts = []
            for name in order:
                if name == "add":
                    parts.append(AddCircle(0.45 * em, color=pal.value))
                else:
                    color = pal.accent if name == "LayerNorm" else pal.query
                    parts.append(Block(name, color=color, text_color=color if name == "LayerNorm" else None,
                                       role=role, width=min(body.width / 5, 10 * em), height=block_h))
            x_in = rich("$x$", role)
            x_out = zh("输出", role, color=pal.muted)
            chain = VGroup(x_in, *parts, x_out)
            spacing = min((body.width - sum(m.width for m in chain)) / (len(chain) - 1), 5.0 * em)
            chain.arrange(RIGHT, buff=spacing)
            links = VGroup(*(connect(a, b) for a, b in zip(chain[:-1], chain[1:])))
            add = parts[order.index("add")]
            branch = x_in.get_right() + RIGHT * spacing / 2
            top = max(p.get_top()[1] for p in parts) + 0.8 * em
            skip = elbow([branch, [branch[0], top, 0], [add.get_x(), top, 0], add.get_top() + UP * 0.04],
                         color=pal.value)
            skip.add(Dot(branch, radius=0.05, color=pal.value))
            skip_label = zh("残差", "small", color=pal.value).next_to(skip[0], UP, buff=0.1)
            group = VGroup(chain, links, skip, skip_label)
            body.place(group)
            title_area.place(title, align="left")
            return VGroup(title, group)

        joint = "：" if self.layout.stacked else "\n"
        post = diagram(["子层", "add", "LayerNorm"], f"Post-LN{joint}原版，本片模型", panels[0])
        pre = diagram(["LayerNorm", "子层", "add"], f"Pre-LN{joint}{term('GPT-2')} 起", panels[1])
        token = acts.source_tokens[t]

        with self.voice("先给答案：每个子层外面都套着两样东西。残差，把输入原样加回来；LayerNorm，把数拉回同一个尺度。"):
            self.play(FadeIn(post[0]), FadeIn(post[1][0]), Create(post[1][1]), FadeIn(note), run_time=theme.BEAT)
            self.play(Create(post[1][2]), FadeIn(post[1][3]), run_time=theme.BEAT)
            self.say("⊕ 残差：把输入\n原样加回来", color=pal.value)
        with self.voice("原版 Transformer，也就是我们这台小翻译机，先相加，再 LayerNorm，叫 Post-LN。"):
            self.say("原版：加完再 LayerNorm", color=pal.accent)
        with self.voice(f"{term('GPT-2')} 以后的大模型多用 Pre-LN：先归一化再进子层，残差这条主干直通到底，"
                        "层数多了也好训练。"):
            self.play(FadeIn(pre[0]), FadeIn(pre[1][0]), Create(pre[1][1]), Create(pre[1][2]), FadeIn(pre[1][3]),
                      run_time=theme.BEAT)
            self.say("现在多用 Pre-LN：\n先归一化，主干直通")
        with self.voice(f"LayerNorm 对每个词减去均值，再除以标准差。“{token}”" + fill(
                "的均值从 {mean_before:.2f} 变成 {mean_after:.2f}，标准差从 {std_before:.2f} 变成 {std_after:.2f}；"
                "之后再乘上训练出来的缩放和偏移。", **stats)):
            self.say(f"“{token}”：" + fill("均值 {mean_before:.2f} → {mean_after:.2f}\n标准差 {std_before:.2f} → "
                                          "{std_after:.2f}", **stats), color=pal.accent, hold=True)
        self.clear_stage()

    # --- 10 --------------------------------------------------------------------------------------------------------

    def decoder_only(self):
        self.next_section("只留解码器")
        pal, acts = self.palette, self.acts
        self.show_title("只留一半")
        both_ways = acts.encoder_layers[0].self_attention.attention.weights[CFG.head]
        one_way = acts.decoder_layers[0].self_attention.attention.weights[CFG.head]
        self.plotted("icon_weights", {"encoder": both_ways, "decoder": one_way})

        prompt = self.pair.source + ("→",)
        line = self.token_lines(prompt + self.translation, self.layout.figure.width, "small")
        top, bottom = self.layout.figure.rows([self.layout.figure.height - line.height - 0.3, line.height], gap=0.3)
        panels = self.two_panels(top)
        cards = []
        specs = [("BERT：只留编码器", both_ways, "双向，擅长理解", pal.query),
                 ("GPT：只留解码器", one_way, "单向，擅长续写", pal.key)]
        for panel, (name, weights, text, color) in zip(panels, specs):
            values = np.where(weights > 0, weights, -np.inf)  # masked keys: empty cells (the causal triangle)
            title = zh(name, "label", color=color)
            caption = zh(text, "small", color=color)
            n = len(weights)
            if self.layout.stacked:  # icon left, title and caption right
                cell = min(0.5, panel.height / (n + 0.5))
                icon = Heatmap(values, ColorScale.sequential(1.0, color=color), cell_width=cell)
                words = VGroup(title, caption).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
                card = VGroup(icon, words).arrange(RIGHT, buff=0.4)
                panel.place(card)
            else:  # title above, icon and caption below
                head, body = panel.rows([0.2, 0.8], gap=0.1)
                cell = min(0.5, body.height / (n + 0.5))
                icon = Heatmap(values, ColorScale.sequential(1.0, color=color), cell_width=cell)
                group = VGroup(icon, caption).arrange(RIGHT, buff=0.3)
                body.place(group)
                card = VGroup(head.place(title), group)
            cards.append(card)

        for item in line[len(prompt):]:
            item[0].set_stroke(pal.accent)
        bottom.place(line)
        written = VGroup(*line[len(prompt):])

        with self.voice("后来的大模型只留一半。BERT 只留编码器：每个词都看整句，擅长理解。蓝色这张就是我们编码器的注意力，"
                        "每一格都有值。"):
            self.play(FadeIn(cards[0]), run_time=theme.BEAT)
            self.say("BERT 只留编码器：\n每个词看整句", color=pal.query)
        with self.voice("GPT 只留解码器，去掉交叉注意力：每个词只看前面，擅长往下写。橙色这张是我们解码器的掩码注意力，"
                        "右上角全是空的。"):
            self.play(FadeIn(cards[1]), run_time=theme.BEAT)
            self.say("GPT 只留解码器：\n去掉交叉注意力", color=pal.key)
        with self.voice("这样翻译也变成了续写：把原文放在前面，让它接着往下写译文。今天的大模型，就是这么翻译的。"):
            self.play(FadeIn(VGroup(*line[:len(prompt)]), shift=0.2 * RIGHT), run_time=theme.BEAT)
            self.play(LaggedStart(*[FadeIn(t, shift=0.2 * LEFT) for t in written], lag_ratio=0.5),
                      run_time=theme.SLOW)
            self.say("翻译也变成续写：\n给开头，接着往下写", color=pal.accent, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
