"""LoRA explainer: freeze W and train B·A; why a low rank can be enough; accuracy and forgetting by rank; merging; the
memory bill of a real model.

Render: ``manim -qh scenes/lora.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/lora.py`` (9:16).
Every weight, singular value, accuracy and wall time comes from the committed fine-tunes of ``scripts/train_lora.py``
(``shared.runs.load_lora_runs``: the trained tiny translator adapted to a reversed-order task, fully and with LoRA at
ranks 1, 2, 4, 8); parameter counts, energies, merging and memory from ``shared/math/lora.py``, the Llama-3-8B shapes
from ``shared.math.model_configs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, Dot, FadeIn, Rectangle, VGroup

from shared import theme
from shared.layout import Region
from shared.math.lora import (
    adapter_parameter_count,
    finetune_memory_bytes,
    lora_forward,
    lora_parameter_count,
    low_rank_energy,
)
from shared.math.model_configs import MODEL_CONFIGS, parameter_count
from shared.math.tiny_transformer import weights_to_arrays
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.heatmap import ColorScale, Heatmap
from shared.mobjects.tokens import TokenRow
from shared.numbers import fill, num, term
from shared.runs import load_lora_runs, merged_arrays, short_device_name
from shared.scene import ExplainerScene, crossfade
from shared.text import formula, zh

GB = 1e9


@dataclass(frozen=True)
class LoRAConfig:
    """What the explainer reads and computes from."""

    picture_run: str = "lora_r2"  # the adapter drawn beside W (a rank whose B and A still read as cells)
    merge_run: str = "lora_r8"  # the adapter merged into W for the latency demo
    top_directions: int = 4  # "the top few directions" of ΔW
    random_draws: int = 200  # Gaussian matrices of ΔW's shape, for the baseline energy
    random_seed: int = 0
    memory_model: str = "Llama-3-8B"
    memory_rank: int = 8  # r on the big model, on W_q, W_k, W_v, W_o of every layer (as the tiny runs)
    qlora_bits: int = 4  # QLoRA's frozen base: 4-bit NormalFloat (Dettmers et al. 2023, "QLoRA", §3)


CFG = LoRAConfig()
# The attention sublayers of shared.math.tiny_transformer, as the scene names them.
SUBLAYERS = {"encoder_layers/0/self_attention": "编码器自注意力", "decoder_layers/0/self_attention": "解码器自注意力",
             "decoder_layers/0/cross_attention": "交叉注意力"}  # fmt: skip


def weight_label(name: str) -> str:
    """``decoder_layers/0/cross_attention/w_q`` → ``交叉注意力 W_Q``."""
    sublayer, projection = name.rsplit("/", 1)
    return f"{SUBLAYERS.get(sublayer, sublayer)} W_{projection[-1].upper()}"


class LoRALowRank(ExplainerScene):
    """LoRA on the trained tiny translator: frozen W plus B·A, the spectrum of a full fine-tune's ΔW, accuracy and
    forgetting per rank, merging for free inference, and the training memory of Llama-3-8B."""

    def construct(self):
        self.runs = load_lora_runs()
        self.full = self.runs["full"]
        self.lora = sorted((r for r in self.runs.values() if r.method == "lora"), key=lambda r: r.rank)
        self.base = weights_to_arrays(self.full.base.model.weights)
        # ΔW of the full fine-tune for each attention projection; the one that changed most for its size is drawn
        self.delta = {n: self.full.arrays[n].astype(np.float64) - self.base[n] for n in self.full.log["delta"]
                      if "attention/w_" in n}  # fmt: skip
        self.focus = max(self.delta, key=lambda n: np.linalg.norm(self.delta[n]) / np.linalg.norm(self.base[n]))
        self.freeze_and_add()
        self.few_directions()
        self.accuracy_by_rank()
        self.forgetting()
        self.merge()
        self.memory_bill()

    @property
    def wide(self) -> bool:
        """Text goes beside a figure (16:9); the taller frames (9:16, article, 1:1) put it under."""
        return not self.layout.stacked

    # --- shared pieces ---------------------------------------------------------------------------------------------

    def run_note(self, run, lead: str):
        """Small print: what is drawn (``lead``), then the fine-tune's provenance (steps, device, wall time)."""
        prov = run.log["provenance"]
        return self.fine_print(lead + "\n" + fill("{steps} 步，{device}，{wall_seconds:.0f} 秒",
                                                  steps=run.log["config"]["steps"], wall_seconds=prov["wall_seconds"],
                                                  device=term(short_device_name(prov["device"]))))  # fmt: skip

    def figure_and_note(self, note) -> Region:
        """The figure region, less a strip at the bottom for the small print when there is one."""
        return self.note_under(self.layout.figure, note, gap=0.2)

    def beside(self, figure: Region, text, gap: float = 0.5) -> Region:
        """Place ``text`` at its own size right of the figure (16:9) or under it; return the figure's region."""
        if self.wide:
            rest, strip = figure.cols([figure.width - text.width - gap, text.width], gap=gap)
            strip.place(text, align="left")
        else:
            rest, strip = figure.split_off(text.height, gap=gap, at="bottom")
            strip.place(text)
        return rest

    def readouts(self, *lines) -> VGroup:
        """Lines of a figure's readout (not prose), left-aligned: body size, label size in 9:16, whose figure band
        is the shortest (the platform's buttons take the bottom of the frame)."""
        role = "label" if self.aspect.name == "9:16" else "body"
        return VGroup(*(zh(text, role, color=color, prose=False) for text, color in lines)).arrange(
            DOWN, aligned_edge=LEFT, buff=0.3 * self.layout.text_em(role) / self.layout.text_em("label"))

    def rank_chart(self, area: Region, key: str, color, extra: tuple[str, str, float, str] | None = None,
                   counts: bool = False):
        """Bars of ``metrics[key]`` for r = 1, 2, 4, 8 and the full fine-tune (plus an ``extra`` bar: (id, label,
        value, colour)), each value over its bar as the number ``key[id]`` (``r1`` … ``r8``, ``full``); with
        ``counts``, each run's trainable parameters under its name. Returns (chart, bars, value labels)."""
        runs = [*self.lora, self.full]
        names = [fill("r={rank}", prefix=f"r{r.rank}_", rank=r.rank) for r in self.lora] + ["全量"]
        if counts:
            names = [name + "\n" + num(f"trainable_parameters[{r.rank and f'r{r.rank}' or 'full'}]",
                                       r.metrics["trainable_parameters"]) for name, r in zip(names, runs)]
        bars_spec = [(f"r{r.rank}" if r.rank else "full", name, r.metrics[key], color) for name, r in zip(names, runs)]
        bars_spec += [extra] if extra else []
        xs = np.arange(len(bars_spec))
        second_line = self.layout.text_em("label") * 1.3 if counts else 0.0  # the tick labels' second line
        chart = Chart(Region(area.left, area.right, area.bottom + second_line, area.top),
                      AxisSpec(-0.5, len(xs) - 0.5, [(float(x), spec[1]) for x, spec in zip(xs, bars_spec)]),
                      AxisSpec(0, 1, [(0.0, ""), (0.5, ""), (1.0, "")], "完全译对的句子"))  # values over the bars
        self.plotted(key, {name: value for name, _, value, _ in bars_spec})
        bars = VGroup(*(chart.bars([x], [v], c) for x, (_, _, v, c) in zip(xs, bars_spec)))
        labels = VGroup(*(zh(num(f"{key}[{name}]", v, "{:.0%}"), "label", color=c).next_to(chart.c2p(x, v), UP,
                                                                                          buff=0.1)
                          for x, (name, _, v, c) in zip(xs, bars_spec)))  # fmt: skip
        return chart, bars, labels

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def freeze_and_add(self):
        self.next_section("冻住 W 只训 BA")
        pal = self.palette
        run = self.runs[CFG.picture_run]
        r = run.rank
        weight = self.base[self.focus]  # [in, out]: the model computes x @ w
        lora_a, lora_b = run.adapters()[self.focus]
        fan_in, fan_out = weight.shape
        adapter = lora_parameter_count(fan_in, fan_out, r)
        big = MODEL_CONFIGS[CFG.memory_model]
        d = big.hidden_size
        big_adapter = lora_parameter_count(d, d, CFG.memory_rank)
        self.show_title("冻住 W，只训 B·A")
        note = self.run_note(run, fill("{matrix}，r = {rank} 的适配器", matrix=weight_label(self.focus), rank=r))
        picture_area = self.figure_and_note(note)
        label_em = self.layout.text_em("label")
        tags = VGroup(  # under W, and under B and A: what they are, then how many numbers they hold
            VGroup(zh(fill("W {out_features}×{in_features}\n冻结", out_features=fan_out, in_features=fan_in), "label",
                      color=pal.muted),
                   zh(fill("{weight_params} 个", weight_params=fan_in * fan_out), "label", color=pal.muted)),
            VGroup(zh(fill("B {out_features}×{rank}\nA {rank}×{in_features}", out_features=fan_out, rank=r,
                           in_features=fan_in), "label", color=pal.accent),
                   zh(fill("只训 {adapter_params} 个", adapter_params=adapter), "label", color=pal.accent)),
        )  # fmt: skip
        for tag in tags:
            tag.arrange(DOWN, aligned_edge=LEFT, buff=0.2 * label_em)
        plus = zh("+", "body")

        def width(pitch: float) -> float:  # of W, +, B and A side by side, each at least as wide as its tag
            return (max(fan_in * pitch, tags[0].width) + 2 * pitch + plus.width
                    + max((r + 0.5 + fan_in) * pitch, tags[1].width))  # fmt: skip

        pitch = min(picture_area.width / (fan_in + r + fan_out + 5),
                    (picture_area.height - tags.height - 0.5 * label_em) / fan_out)
        while width(pitch) > picture_area.width:
            pitch *= 0.95
        w_map = Heatmap(weight.T, ColorScale.diverging(weight), cell_width=pitch)  # (out, in), as PEFT stores W
        b_map = Heatmap(lora_b, ColorScale.diverging(lora_b), cell_width=pitch)
        a_map = Heatmap(lora_a, ColorScale.diverging(lora_a), cell_width=pitch)
        adapter_maps = VGroup(b_map, a_map.next_to(b_map, RIGHT, buff=0.5 * pitch).align_to(b_map, UP))
        columns = [VGroup(w_map, tags[0]), VGroup(adapter_maps, tags[1])]
        for maps, tag in zip((w_map, adapter_maps), tags):
            tag.next_to(maps, DOWN, buff=0.3 * label_em, aligned_edge=LEFT)
        picture = VGroup(columns[0], plus, columns[1]).arrange(RIGHT, buff=pitch, aligned_edge=UP)
        plus.move_to([plus.get_x(), w_map.get_y(), 0])
        picture.move_to(picture_area.center)
        counts = VGroup(tags[0][1], tags[1][1])

        with self.voice("先给答案：LoRA 把原来的权重 W 冻住，旁边挂两个瘦矩阵 B 和 A，只训练它们。"):
            self.play(FadeIn(w_map), FadeIn(tags[0][0]), FadeIn(note), run_time=theme.BEAT)
            self.play(FadeIn(plus), FadeIn(adapter_maps), FadeIn(tags[1][0]), run_time=theme.BEAT)
            self.say("W 冻住不动\n改变量 = B·A")
        with self.voice(fill("B 和 A 一共只有 {adapter_params} 个数，W 有 {weight_params} 个；秩 r 等于 {rank}，"
                             "B 乘 A 最多 {rank} 个方向。", rank=r, adapter_params=adapter,
                             weight_params=fan_in * fan_out)):
            self.play(FadeIn(counts), run_time=theme.BEAT)
            self.say(fill("r·(in+out) = {adapter_params} 个\n对 in·out = {weight_params} 个", adapter_params=adapter,
                          weight_params=fan_in * fan_out), color=pal.accent)
        big_values = dict(model=term(big.name), d=d, big_rank=CFG.memory_rank, big_share=big_adapter / (d * d))
        with self.voice(fill("放到 {model} 的 {d} 乘 {d} 矩阵上，r 取 {big_rank}，只训练 {big_share:.2%}。",
                             **big_values)):
            self.say(fill("{model}，{d}×{d}\nr = {big_rank}：只训 {big_share:.2%}", **big_values), color=pal.value,
                     hold=True)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def few_directions(self):
        self.next_section("改变集中在主方向")
        pal = self.palette
        k = CFG.top_directions
        delta = self.delta[self.focus]
        size = min(delta.shape)
        directions = np.arange(size + 1)
        cumulative = self.plotted("delta_energy_cumulative", low_rank_energy(delta, directions))
        per_direction = self.plotted("delta_energy_per_direction", np.diff(cumulative))
        rng = np.random.default_rng(CFG.random_seed)
        random_cumulative = self.plotted("random_energy_cumulative", np.mean(
            [low_rank_energy(rng.standard_normal(delta.shape), directions) for _ in range(CFG.random_draws)], axis=0))
        shares = [low_rank_energy(d, k) for d in self.delta.values()]
        top_share, random_share = cumulative[k], random_cumulative[k]
        values = dict(top_k=k, top_share=top_share, random_share=random_share, n_matrices=len(shares),
                      low_share=min(shares), high_share=max(shares))  # fmt: skip
        self.show_title("为什么低秩就够？")
        note = self.run_note(self.full, fill("{matrix}，全量微调", matrix=weight_label(self.focus)))
        lines = self.readouts(
            (fill("前 {top_k} 个方向：{top_share:.0%}", **values), pal.value),
            (fill("随机矩阵：{random_share:.0%}", **values), pal.muted),
        )
        chart = Chart(self.figure_and_note(note),
                      AxisSpec(0, size + 0.6, numeric_ticks("direction_tick", [1, k, size]), "第几个方向"),
                      AxisSpec(0, 1, numeric_ticks("energy_tick", [0, 0.5, 1], "{:.0%}"), "占 ΔW 能量"))
        bars = chart.bars(directions[1:], per_direction, pal.accent)
        curve = chart.polyline(directions, cumulative, pal.value)
        random_curve = chart.polyline(directions, random_cumulative, pal.muted)
        top_mark = VGroup(chart.vline(k, pal.accent), Dot(chart.c2p(k, top_share), color=pal.value, radius=0.07))
        random_mark = Dot(chart.c2p(k, random_share), color=pal.muted, radius=0.07)
        lines.move_to(chart.box.point(0.98, 0.4), aligned_edge=RIGHT)  # under the curves, right of the large bars

        with self.voice(fill("为什么低秩就够？把全量微调的改变 ΔW 做 SVD，拆成 {size} 个方向。", size=size)):
            self.play(FadeIn(chart), FadeIn(note), run_time=theme.QUICK)
            self.play(FadeIn(bars, lag_ratio=0.1), run_time=theme.BEAT)
            self.say("SVD：把 ΔW 拆成\n一个个方向")
        with self.voice(fill("大头在前面：前 {top_k} 个方向占了 {top_share:.0%}。改变是方向性的，不是全方位的。",
                             **values)):
            self.play(FadeIn(curve), FadeIn(top_mark), FadeIn(lines[0]), run_time=theme.BEAT)
            self.say("改变是“方向性”的\n不是全方位的", color=pal.value)
        with self.voice(fill("同样大的随机矩阵只有 {random_share:.0%}；{n_matrices} 个注意力矩阵都更集中，"
                             "{low_share:.0%} 到 {high_share:.0%}。但这个任务，一两个方向还不够。", **values)):
            self.play(FadeIn(random_curve), FadeIn(random_mark), FadeIn(lines[1]), run_time=theme.BEAT)
            self.say(fill("{n_matrices} 个注意力矩阵：\n{low_share:.0%}–{high_share:.0%}，都比随机集中", **values),
                     color=pal.accent, hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def accuracy_by_rank(self):
        self.next_section("秩与准确率")
        pal = self.palette
        example = shortest_pair(self.full.test_split)
        exact = {r.rank: r.metrics["new_exact_match"] for r in self.lora}
        full_exact = self.full.metrics["new_exact_match"]
        enough = next((rank for rank, e in exact.items() if e >= full_exact), None)
        self.show_title("秩越高越好吗？")
        note = self.run_note(self.lora[-1], "每个 r 都真实微调同样步数")
        task = zh(" ".join(example.source) + "\n→ " + " ".join(example.target), "label", color=pal.accent)
        figure = self.figure_and_note(note)
        if self.wide:
            chart_area = self.beside(figure, task)
        else:  # the task over the chart
            task_area, chart_area = figure.split_off(task.height, gap=0.3)
            task_area.place(task, align="left")
        chart, bars, labels = self.rank_chart(chart_area, "new_exact_match", pal.value, counts=True)
        low, high = self.lora[0], self.lora[-1]
        n_test = low.log["config"]["n_test"]
        values = dict(low_rank=low.rank, n_test=n_test, low_correct=round(exact[low.rank] * n_test),
                      high_rank=high.rank, high_exact=exact[high.rank], full_exact=full_exact)  # fmt: skip
        verdict = (fill("r 等于 {enough_rank} 就追上了全量微调。", enough_rank=enough) if enough is not None
                   else fill("r 等于 {high_rank} 也只有 {high_exact:.0%}，全量微调 {full_exact:.0%}。", **values))
        summary = (fill("r = {enough_rank} 就追上全量", enough_rank=enough) if enough is not None
                   else fill("r = {high_rank}：{high_exact:.0%}，全量 {full_exact:.0%}", **values))  # fmt: skip

        with self.voice("实验：小翻译模型学一个新任务，中文倒着读，英文倒着写。只在注意力的 Q、K、V、O 上挂 LoRA。"):
            self.play(FadeIn(task), FadeIn(chart), FadeIn(note), run_time=theme.BEAT)
            self.say("新任务：倒着读、倒着写\n换不同的秩 r", color=pal.accent)
        with self.voice(fill("r 等于 {low_rank} 学不会，{n_test} 句只对 {low_correct} 句；", **values) + verdict):
            self.play(FadeIn(bars, lag_ratio=0.2), FadeIn(labels, lag_ratio=0.2), run_time=theme.SLOW)
            self.say(fill("r = {low_rank}：{n_test} 句只对 {low_correct} 句\n", **values) + summary, color=pal.value,
                     hold=True)
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def forgetting(self):
        self.next_section("会不会忘")
        pal = self.palette
        (unplugged,) = {r.metrics["original_exact_match_without_adapter"] for r in self.lora}  # one frozen base
        remembered = [r.metrics["original_exact_match"] for r in [*self.lora, self.full]]
        self.show_title("旧任务还记得吗？")
        note = self.fine_print(fill("旧任务：原翻译模型的\n{n_original} 句测试集",
                                    n_original=self.full.log["config"]["n_original_test"]))
        chart, bars, labels = self.rank_chart(self.figure_and_note(note), "original_exact_match", pal.warning,
                                              extra=("without_adapter", "拔掉", unplugged, pal.value))

        with self.voice("再看原来的翻译任务。只训新数据，不管全量还是 LoRA，模型都把旧任务忘了，一句都译不对。"
                        if max(remembered) == 0 else "再看原来的翻译任务：只训新数据，旧任务忘了大半。"):
            self.play(FadeIn(chart), FadeIn(note), FadeIn(bars[:-1]), FadeIn(labels[:-1]), run_time=theme.BEAT)
            self.say("挂着适配器：旧任务全忘\nLoRA 也会忘" if max(remembered) == 0 else
                     fill("挂着适配器：最多 {best_remembered:.0%}\nLoRA 也会忘", best_remembered=max(remembered)),
                     color=pal.warning)
            self.wait(theme.HOLD)
        with self.voice(fill("但 LoRA 的原权重一个数都没动：把 B 乘 A 拔掉，旧任务马上回到 {unplugged:.0%}。"
                             "一个底座，可以换着插很多适配器。", unplugged=unplugged)):
            self.play(FadeIn(bars[-1], shift=0.2 * UP), FadeIn(labels[-1]), run_time=theme.BEAT)
            self.say(fill("拔掉 B·A：回到 {unplugged:.0%}\n一个底座插很多适配器", unplugged=unplugged), color=pal.value,
                     hold=True)
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def merge(self):
        self.next_section("合并后零延迟")
        pal = self.palette
        run = self.runs[CFG.merge_run]
        lora_a, lora_b = run.adapters()[self.focus]
        weight = self.base[self.focus]
        merged = merged_arrays({self.focus: weight}, {self.focus: (lora_a, lora_b)}, run.alpha)[self.focus]
        pair = shortest_pair(run.test_split)
        translation = run.model.translate(pair.source)
        x = projection_input(run.model.activations(pair.source, translation), self.focus)
        bias = self.base[self.focus.replace("/w_", "/b_")]
        unmerged_out = lora_forward(x, weight.T, lora_a, lora_b, run.alpha, bias)  # x Wᵀ + b + (α/r) x Aᵀ Bᵀ
        merged_out = x @ merged + bias
        max_difference = float(np.abs(unmerged_out - merged_out).max())
        self.plotted("merge_outputs", {"unmerged": unmerged_out, "merged": merged_out})
        self.show_title("合并：推理零延迟")
        note = self.run_note(run, fill("{matrix}，r = {rank} 的适配器", matrix=weight_label(self.focus),
                                       rank=run.rank))
        if self.wide:
            sentence = VGroup(TokenRow(pair.source, role="label"), zh("↓", "label", color=pal.muted),
                              TokenRow(translation, role="label", color=pal.value)).arrange(DOWN, buff=0.2)
        else:  # the taller frames have less room beside the matrix: the sentence as two lines of text
            sentence = zh(" ".join(pair.source) + "\n→ " + " ".join(translation), "label", color=pal.value)
        readouts = self.readouts(
            (fill("合并前后输出\n最大差 {max_difference:.1e}", max_difference=max_difference), pal.value))
        rule = formula("W' = W + alpha / r dot B A", "body", color=pal.accent)
        figure = self.figure_and_note(note)
        if self.wide:  # the matrix and its rule left; the sentence and the readouts right
            matrix_area = self.beside(figure, VGroup(sentence, readouts).arrange(DOWN, aligned_edge=LEFT, buff=0.4))
            map_area, rule_area = matrix_area.split_off(rule.height, gap=0.3, at="bottom")
            rule_area.place(rule)
        else:  # the sentence at the bottom; over it the matrix, with the rule and the readouts beside it
            upper, sentence_area = figure.split_off(sentence.height, gap=0.4, at="bottom")
            sentence_area.place(sentence)
            text = VGroup(rule, readouts).arrange(DOWN, aligned_edge=LEFT, buff=0.4)
            map_area, text_area = upper.cols([upper.width - text.width - 0.4, text.width], gap=0.4)
            text_area.place(text, align="left")
        lines = VGroup(sentence, readouts)
        scale = ColorScale.diverging(np.concatenate([weight.ravel(), merged.ravel()]))
        label_em = self.layout.text_em("label")
        pitch = min(map_area.width, map_area.height - 1.5 * label_em, 0.35 * len(weight)) / len(weight)
        w_map = Heatmap(weight.T, scale, cell_width=pitch)
        tags = [zh(text, "label", color=pal.muted) for text in ("W：合并前", "W'：合并后")]
        VGroup(w_map, tags[0]).arrange(DOWN, buff=0.3 * label_em).move_to(map_area.center)
        tags[1].move_to(tags[0])

        with self.voice("训练完，把 B 乘 A 直接加进 W，得到一个新矩阵。推理时还是原来那一次矩阵乘法，不多一步。"):
            self.play(FadeIn(w_map), FadeIn(tags[0]), FadeIn(rule), FadeIn(note), run_time=theme.BEAT)
            self.play(w_map.morph(merged.T, scale=scale), crossfade(tags[0], tags[1]), run_time=theme.SLOW)
            self.say("B·A 加进 W：还是一个矩阵")
        with self.voice(fill("拿一句真实的测试句试一试：合并前后，这一层的输出最大只差 {max_difference:.1e}，"
                             "只是浮点舍入。", max_difference=max_difference)):
            self.play(FadeIn(lines[0]), run_time=theme.BEAT)
            self.play(FadeIn(lines[1]), run_time=theme.BEAT)
            self.say(fill("合并前后输出一样\n参数还是 {n_params:,} 个", n_params=run.metrics["n_parameters"]),
                     color=pal.value, hold=True)
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def memory_bill(self):
        self.next_section("显存账")
        pal = self.palette
        big = MODEL_CONFIGS[CFG.memory_model]
        n = parameter_count(big)
        d, q_out, kv_out = big.hidden_size, big.num_attention_heads * big.head_dim, big.num_key_value_heads * big.head_dim
        shapes = [(d, q_out), (d, kv_out), (d, kv_out), (q_out, d)]  # q_proj, k_proj, v_proj, o_proj (in, out)
        adapter = adapter_parameter_count(shapes, CFG.memory_rank, big.num_hidden_layers)
        bills = {"full": finetune_memory_bytes(n), "lora": finetune_memory_bytes(n, adapter)}
        bill_names = {"full": "全量", "lora": "LoRA"}
        per_param = finetune_memory_bytes(1)
        parts = {"weights": ("权重", pal.query), "gradients": ("梯度", pal.key),
                 "optimizer_states": ("优化器状态", pal.warning)}  # fmt: skip
        self.plotted("memory_gb", {k: {p: getattr(b, p) / GB for p in parts} for k, b in bills.items()})
        full_gb, lora_gb = bills["full"].total / GB, bills["lora"].total / GB
        values = dict(model=term(big.name), per_param=per_param.total, full_gb=full_gb, lora_gb=lora_gb,
                      adapter_m=adapter / 1e6, adapter_share=adapter / n, big_rank=CFG.memory_rank)  # fmt: skip
        self.show_title("微调要多少显存？")
        note = self.fine_print(f"{term(big.name)} 的 config.json\nZeRO 论文的记账，不含激活")
        legend = VGroup(*(VGroup(Rectangle(width=0.3, height=0.3, stroke_width=0).set_fill(color, 0.9),
                                 zh(name, "label", color=color)).arrange(RIGHT, buff=0.15)
                          for name, color in parts.values())).arrange(RIGHT, buff=0.4)
        lines = VGroup(legend, *self.readouts((fill("每个训练参数 {per_param} 字节\n= {w} + {g} + {o}",
                                                    w=per_param.weights, g=per_param.gradients,
                                                    o=per_param.optimizer_states, **values), pal.text)))
        lines.arrange(DOWN, aligned_edge=LEFT, buff=0.35)
        chart_area = self.beside(self.figure_and_note(note), lines)
        top = float(np.ceil(full_gb / 50) * 50)
        chart = Chart(chart_area, AxisSpec(-0.6, len(bills) - 0.4, [(float(i), bill_names[k]) for i, k in enumerate(bills)]),
                      AxisSpec(0, top, [(float(v), "") for v in np.arange(0, top + 1, 50)],  # totals over the bars
                               fill("{model} 显存（GB）", model=term(big.name))))
        stacks, totals = VGroup(), VGroup()
        for i, (name, bill) in enumerate(bills.items()):
            stack, level = VGroup(), 0.0
            for part, (_, color) in parts.items():
                value = getattr(bill, part) / GB
                stack.add(chart.bars([i], [level + value], color, baseline=level))
                level += value
            stacks.add(stack)
            totals.add(zh(num(f"memory_total_gb[{name}]", bill.total / GB, "{:.1f} GB"), "label")
                       .next_to(chart.c2p(i, level), UP, buff=0.1))

        with self.voice(fill("最后联系大模型：{model} 全量微调，每个参数存权重和梯度，Adam 还多存两个数，动量和二阶矩，"
                             "加上 {fp32} 主副本，一共 {per_param} 字节。", fp32=term("fp32"), **values)):
            self.play(FadeIn(chart), FadeIn(lines), FadeIn(note), run_time=theme.BEAT)
            self.play(FadeIn(stacks[0], shift=0.2 * UP), FadeIn(totals[0]), run_time=theme.BEAT)
            self.say(fill("全量：{full_gb:.0f} GB", **values), color=pal.warning)
        with self.voice(fill("LoRA 冻住底座，只有 {adapter_m:.1f}M 个参数要梯度和优化器状态：{full_gb:.0f} GB 降到 "
                             "{lora_gb:.0f} GB。QLoRA 再把底座压到 {qlora_bits} bit。", qlora_bits=CFG.qlora_bits,
                             **values)):
            self.play(FadeIn(stacks[1], shift=0.2 * UP), FadeIn(totals[1]), run_time=theme.BEAT)
            self.say(fill("LoRA r = {big_rank}：只训 {adapter_share:.2%}\n{full_gb:.0f} GB → {lora_gb:.0f} GB", **values),
                     color=pal.value, hold=True)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here



def shortest_pair(pairs):
    """The first of the shortest sentence pairs (source and target words together): it fits a phone's line."""
    return min(pairs, key=lambda p: len(p.source) + len(p.target))


def projection_input(acts, name: str) -> np.ndarray:
    """What the projection ``name`` multiplies in one forward pass: the queries' source for W_q, the keys' and values'
    source for W_k and W_v, the concatenated heads for W_o (``shared.math.tiny_transformer`` activations)."""
    stack, index, sublayer, projection = name.split("/")
    attention = getattr(getattr(acts, stack)[int(index)], sublayer).attention
    return {"w_q": attention.query_source, "w_k": attention.key_value_source, "w_v": attention.key_value_source,
            "w_o": attention.concatenated}[projection]  # fmt: skip
