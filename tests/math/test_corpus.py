"""shared/corpus.py: the Chinese → English grammar against hand translations, its splits, alignments and vocabulary."""

from __future__ import annotations

import random

import pytest

from shared.corpus import (
    PAD,
    SOURCE_VOCAB,
    TARGET_VOCAB,
    Clause,
    SentencePair,
    build_corpus,
    sample_clause,
    translate_clause,
)
from shared.math.tiny_transformer import BOS, EOS
from shared.text import check_glyphs


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


# Translated by hand (not by the code under test), with the alignment of the module docstring's convention.
HAND_TRANSLATED = [
    (Clause(("我",), "past", "看", ("一", "本", "书"), "昨天", "北京"),
     "我 昨天 在 北京 看 了 一 本 书", "I read a book in Beijing yesterday", (0, 4, 6, 8, 2, 3, 1)),
    (Clause(("我", "的", "朋友"), "future", "买", ("红色", "的", "车")),
     "我 的 朋友 会 买 红色 的 车", "my friend will buy the red car", (0, 2, 3, 4, None, 5, 7)),
    (Clause(("她",), "progressive", "吃", ("一", "个", "苹果"), "现在"),
     "她 现在 在 吃 一 个 苹果", "she is eating an apple now", (0, 2, 3, 4, 6, 1)),
    (Clause(("他们",), "progressive", "喂", ("两", "只", "猫")),
     "他们 在 喂 两 只 猫", "they are feeding two cats", (0, 1, 2, 3, 5)),
    (Clause(("老师",), "past", "卖", ("一", "辆", "旧", "的", "车"), "上周", "公园"),
     "老师 上周 在 公园 卖 了 一 辆 旧 的 车", "the teacher sold an old car in the park last week",
     (None, 0, 4, 6, 8, 10, 2, None, 3, 1, 1)),
    (Clause(("我们",), "future", "写", ("这", "封", "信"), "下周", "学校"),
     "我们 下周 会 在 学校 写 这 封 信", "we will write this letter at school next week", (0, 2, 5, 6, 8, 3, 4, 1, 1)),
    (Clause(("你",), "past", "洗", ("他", "的", "狗"), None, "家"),
     "你 在 家 洗 了 他 的 狗", "you washed his dog at home", (0, 3, 5, 7, 1, 2)),
]  # fmt: skip


@pytest.mark.parametrize("clause, source, target, alignment", HAND_TRANSLATED)
def test_grammar_translates_as_by_hand(clause, source, target, alignment):
    pair = translate_clause(clause)
    assert pair == SentencePair(tuple(source.split()), tuple(target.split()), alignment)


def test_the_brief_example_reorders_time_and_place():
    pair = translate_clause(HAND_TRANSLATED[0][0])
    assert not pair.is_monotonic()
    # time and place precede the verb in Chinese and follow the object in English
    source_order = [pair.source.index(w) for w in ("昨天", "北京", "看", "书")]
    target_order = [pair.target.index(w) for w in ("read", "book", "Beijing", "yesterday")]
    assert source_order == sorted(source_order) and target_order == sorted(target_order)


def test_corpus_is_deterministic_for_a_seed(corpus):
    assert build_corpus() == corpus
    other = build_corpus(seed=1)
    assert other.test != corpus.test and other.train != corpus.train


def test_splits_have_the_asked_sizes_and_share_no_sentence(corpus):
    assert (len(corpus.train), len(corpus.test)) == (4000, 400)
    train_sources = {p.source for p in corpus.train}
    test_sources = {p.source for p in corpus.test}
    assert len(train_sources) == 4000 and len(test_sources) == 400  # no duplicates inside a split
    assert not train_sources & test_sources
    assert not {p.target for p in corpus.train} & {p.target for p in corpus.test}


def test_test_split_has_reordered_sentences(corpus):
    reordered = [p for p in corpus.test if not p.is_monotonic()]
    assert len(reordered) > 0.5 * len(corpus.test)
    assert any(p.is_monotonic() for p in corpus.test)


FUNCTION_SOURCE_WORDS = {"的", "了", "只", "本", "封", "辆", "个", "块"}  # no target word points at these


def test_alignments_follow_the_documented_convention(corpus):
    for pair in corpus.train + corpus.test:
        assert len(pair.alignment) == len(pair.target)
        for word, index in zip(pair.target, pair.alignment):
            assert (index is None) == (word == "the"), pair  # only "the" has no Chinese word
            assert index is None or 0 <= index < len(pair.source)
        pointed_at = {i for i in pair.alignment if i is not None}
        for i, word in enumerate(pair.source):
            assert (i in pointed_at) == (word not in FUNCTION_SOURCE_WORDS), (pair, word)


def test_vocabularies_cover_the_corpus_with_pad_bos_eos_first(corpus):
    assert SOURCE_VOCAB[0] == PAD and TARGET_VOCAB[:3] == (PAD, BOS, EOS)
    assert len(set(SOURCE_VOCAB)) == len(SOURCE_VOCAB) and len(set(TARGET_VOCAB)) == len(TARGET_VOCAB)
    # every word of the vocabularies occurs in the training split, and nothing else does in either split
    assert {w for p in corpus.train for w in p.source} == set(SOURCE_VOCAB[1:])
    assert {w for p in corpus.train for w in p.target} == set(TARGET_VOCAB[3:])
    assert {w for p in corpus.test for w in p.source} <= set(SOURCE_VOCAB[1:])
    assert {w for p in corpus.test for w in p.target} <= set(TARGET_VOCAB[3:])
    assert len(SOURCE_VOCAB) < 100 and len(TARGET_VOCAB) < 100  # small enough for a d_model 16 model


def test_every_chinese_character_is_in_the_vendored_font():
    check_glyphs("".join(SOURCE_VOCAB))  # raises MissingGlyphError naming any character the font lacks


def test_sampled_clauses_are_grammatical_and_pairs_round_trip_through_dicts():
    rng = random.Random(7)
    for _ in range(2000):
        pair = translate_clause(sample_clause(rng))
        assert SentencePair.from_dict(pair.as_dict()) == pair


@pytest.mark.parametrize("clause, message", [
    (Clause(("我",), "past", "看", ("一", "本", "书"), "明天"), "does not fit the past"),
    (Clause(("我",), "progressive", "看", ("一", "本", "书"), None, "北京"), "not in the progressive"),
    (Clause(("我",), "past", "吃", ("一", "本", "书")), "must end in a noun 吃 takes"),
    (Clause(("我",), "past", "看", ("一", "只", "书")), "measure word 本, not 只"),
    (Clause(("我",), "past", "买", ("旧", "的", "猫")), "not an adjective for 猫"),
    (Clause(("猫",), "past", "买", ("一", "只", "猫")), "subject"),
    (Clause(("我",), "someday", "买", ("一", "只", "猫")), "tense"),
])  # fmt: skip
def test_ungrammatical_clauses_raise_clear_errors(clause, message):
    with pytest.raises(ValueError, match=message):
        translate_clause(clause)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="at least 1"):
        build_corpus(n_train=0)
