"""A tiny Chinese → English parallel corpus made by a grammar, with the word alignment the grammar knows.

The grammar is small enough for a Transformer with d_model 16 to learn (53 Chinese and 81 English words) and rich
enough that translating is more than looking words up one by one:

- **tense** is a separate Chinese word: 了 after the verb (past), 在 before it (progressive), 会 before it (future);
  English changes the verb (bought / am buying / will buy) and the progressive's "am/is/are" agrees with the subject;
- **measure words** (一只猫 → a cat, 一本书 → a book) have no English counterpart, and "a" becomes "an" before a vowel;
- **的-phrases**: 我的朋友 → my friend (我 becomes "my"), 红色的车 → the red car ("the" has no Chinese word);
- **word order**: time and place come BEFORE the verb in Chinese and AFTER the object in English::

      我 昨天 在 北京 看 了 一本 书   →   I read a book in Beijing yesterday

Tokens are whole words (one Chinese word or one English word per token). Sentences are drawn at random from the
grammar (seeded, deterministic); the test split shares no sentence with the train split.

Alignment convention
--------------------
``SentencePair.alignment[j]`` is, for target token j, the index of the source token it translates, or None when no
source word means it. A word maps to the word that carries its meaning: "my" → 我 (in 我的朋友), "a"/"an" → 一,
"two" → 两, "will" → 会, progressive "am/is/are" → 在, "in"/"at" → the locative 在, a past-tense verb → the verb
(not 了), "cats" → 猫, both words of "last week" → 上周. None: "the" (Chinese has no article). Source words that no
target word points at: the measure words (只, 本, …), 的 and 了. The list covers the target tokens only; the <eos> a
model predicts after them has no alignment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from shared.math.tiny_transformer import BOS, EOS

PAD = "<pad>"  # fills short sentences in a batch; the numpy model never sees it

# --- the grammar's words -------------------------------------------------------------------------------------------


class Pronoun(NamedTuple):
    zh: str
    subject: str  # as a subject: "I"
    possessive: str  # before 的: 我的 → "my"
    be: str  # progressive auxiliary that agrees with it: "am"


class Noun(NamedTuple):
    zh: str
    measure: str  # the measure word between a numeral or 这/那 and the noun (no English counterpart)
    singular: str
    plural: str
    kind: str  # "animal", "paper", "vehicle" or "food": which verbs and adjectives fit


class Verb(NamedTuple):
    zh: str
    base: str  # after "will"
    past: str  # with 了
    ing: str  # with 在
    objects: tuple[str, ...]  # noun kinds it takes


PRONOUNS = (
    Pronoun("我", "I", "my", "am"),
    Pronoun("你", "you", "your", "are"),
    Pronoun("他", "he", "his", "is"),
    Pronoun("她", "she", "her", "is"),
    Pronoun("我们", "we", "our", "are"),
    Pronoun("他们", "they", "their", "are"),
)
KINDS = ("animal", "paper", "vehicle", "food")  # of nouns: which verbs and adjectives fit them
# People as subjects: possessed (我的朋友 → my friend) or, where Chinese allows it bare, with "the" (老师 → the teacher).
PEOPLE = {"朋友": "friend", "老师": "teacher", "学生": "student"}
BARE_PEOPLE = ("老师", "学生")
NOUNS = (
    Noun("猫", "只", "cat", "cats", "animal"),
    Noun("狗", "只", "dog", "dogs", "animal"),
    Noun("鸟", "只", "bird", "birds", "animal"),
    Noun("书", "本", "book", "books", "paper"),
    Noun("信", "封", "letter", "letters", "paper"),
    Noun("车", "辆", "car", "cars", "vehicle"),
    Noun("苹果", "个", "apple", "apples", "food"),
    Noun("蛋糕", "块", "cake", "cakes", "food"),
)
VERBS = (
    Verb("买", "buy", "bought", "buying", KINDS),
    Verb("卖", "sell", "sold", "selling", KINDS),
    Verb("画", "draw", "drew", "drawing", KINDS),
    Verb("洗", "wash", "washed", "washing", ("animal", "vehicle", "food")),
    Verb("吃", "eat", "ate", "eating", ("food",)),
    Verb("喂", "feed", "fed", "feeding", ("animal",)),
    Verb("写", "write", "wrote", "writing", ("paper",)),
    Verb("看", "read", "read", "reading", ("paper",)),  # 看 is "read" with a book or letter (never "see" here)
)
ADJECTIVES = {"红色": ("red", KINDS), "白色": ("white", KINDS), "黑色": ("black", KINDS),
              "旧": ("old", ("paper", "vehicle"))}  # fmt: skip
DEMONSTRATIVES = {"这": "this", "那": "that"}
NUMERALS = {"一": "a", "两": "two"}  # "a" turns into "an" before a vowel
# Locative 在 + place → English preposition (+ "the") + place.
PLACES = {"北京": ("in", "Beijing"), "上海": ("in", "Shanghai"), "公园": ("in", "the", "park"),
          "学校": ("at", "school"), "家": ("at", "home")}  # fmt: skip
# Time words by tense; each English word of a time phrase aligns to the one Chinese word.
TIMES = {"past": {"昨天": ("yesterday",), "上周": ("last", "week")},
         "future": {"明天": ("tomorrow",), "下周": ("next", "week")},
         "progressive": {"现在": ("now",)}}  # fmt: skip
TENSES = ("past", "progressive", "future")
PAST, PROGRESSIVE, FUTURE = "了", "在", "会"  # the tense words
LOCATIVE, OF = "在", "的"
ARTICLES = ("the", "a", "an")
VOWELS = "aeiou"


def _ordered(words) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


SOURCE_WORDS = _ordered(
    [p.zh for p in PRONOUNS] + [OF] + list(PEOPLE) + [w for t in TIMES.values() for w in t]
    + [FUTURE, PAST, PROGRESSIVE, LOCATIVE] + list(PLACES) + [v.zh for v in VERBS] + list(NUMERALS)
    + list(DEMONSTRATIVES) + [n.measure for n in NOUNS] + list(ADJECTIVES) + [n.zh for n in NOUNS]
)
TARGET_WORDS = _ordered(
    [p.subject for p in PRONOUNS] + [p.possessive for p in PRONOUNS] + list(PEOPLE.values()) + list(ARTICLES)
    + list(NUMERALS.values()) + list(DEMONSTRATIVES.values()) + ["am", "is", "are", "will"]
    + [form for v in VERBS for form in (v.base, v.past, v.ing)] + [f for n in NOUNS for f in (n.singular, n.plural)]
    + [a for a, _ in ADJECTIVES.values()] + [w for place in PLACES.values() for w in place]
    + [w for t in TIMES.values() for phrase in t.values() for w in phrase]
)
SOURCE_VOCAB: tuple[str, ...] = (PAD, *SOURCE_WORDS)  # id 0 = <pad>
TARGET_VOCAB: tuple[str, ...] = (PAD, BOS, EOS, *TARGET_WORDS)  # id 0 = <pad>, 1 = <bos>, 2 = <eos>


# --- sentences -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentencePair:
    """One translation pair with its word alignment (see the module docstring for the convention)."""

    source: tuple[str, ...]  # Chinese words
    target: tuple[str, ...]  # English words, without <bos>/<eos>
    alignment: tuple[int | None, ...]  # per target word: index into source, or None

    def is_monotonic(self) -> bool:
        """True when the aligned source indices never go backwards along the target (no reordering)."""
        aligned = [i for i in self.alignment if i is not None]
        return all(a <= b for a, b in zip(aligned, aligned[1:]))

    def as_dict(self) -> dict:
        return {"source": list(self.source), "target": list(self.target), "alignment": list(self.alignment)}

    @classmethod
    def from_dict(cls, d: dict) -> SentencePair:
        return cls(tuple(d["source"]), tuple(d["target"]), tuple(d["alignment"]))


class Clause(NamedTuple):
    """One sentence as the grammar's choices, in Chinese words; :func:`translate_clause` makes the pair."""

    subject: tuple[str, ...]  # ("我",) | ("我", "的", "朋友") | ("老师",)
    tense: str  # one of TENSES
    verb: str  # "买"
    # ("一", "只", "猫") | ("一", "只", "黑色", "的", "猫") | ("黑色", "的", "猫") | ("我", "的", "猫") |
    # ("两", "只", "猫") | ("这", "只", "猫")
    object: tuple[str, ...]
    time: str | None = None  # a time word of the tense ("昨天" for the past), or none
    place: str | None = None  # "北京" (in 在北京), or none; never in the progressive, whose 在 comes before the verb


PRONOUN = {p.zh: p for p in PRONOUNS}
NOUN = {n.zh: n for n in NOUNS}
VERB = {v.zh: v for v in VERBS}
English = list[tuple[str, "int | None"]]  # (English word, index of the Chinese word it translates, or None)


class _Source:
    """Collects Chinese words in Chinese order; ``add`` returns the word's index for the English side to cite."""

    def __init__(self):
        self.words: list[str] = []

    def add(self, word: str) -> int:
        self.words.append(word)
        return len(self.words) - 1


def _pick(rng: random.Random, options):
    """A uniform choice made from ``rng.random()`` alone, whose sequence for a seed Python guarantees across
    versions (docs of ``random``, "Notes on Reproducibility"); ``rng.choice`` has no such promise."""
    options = list(options)
    return options[int(rng.random() * len(options))]


def sample_clause(rng: random.Random) -> Clause:
    """Draw one clause: every choice uniform among what fits (the object's noun fits the verb, the adjective the
    noun, the time word the tense); a time word in 60% of sentences, a place in half of the non-progressive ones."""
    tense = _pick(rng, TENSES)
    form = _pick(rng, ("pronoun", "pronoun", "possessed", "bare"))
    if form == "bare":
        subject: tuple[str, ...] = (_pick(rng, BARE_PEOPLE),)
    elif form == "pronoun":
        subject = (_pick(rng, PRONOUNS).zh,)
    else:
        subject = (_pick(rng, PRONOUNS).zh, OF, _pick(rng, PEOPLE))
    time = _pick(rng, TIMES[tense]) if rng.random() < 0.6 else None
    place = _pick(rng, PLACES) if tense != "progressive" and rng.random() < 0.5 else None
    verb = _pick(rng, VERBS)
    noun = _pick(rng, [n for n in NOUNS if n.kind in verb.objects])
    form = _pick(rng, ("a", "a_adjective", "the_adjective", "possessive", "two", "demonstrative"))
    if form in ("a_adjective", "the_adjective"):
        adjective = _pick(rng, [a for a, (_, kinds) in ADJECTIVES.items() if noun.kind in kinds])
        head = ("一", noun.measure) if form == "a_adjective" else ()
        obj: tuple[str, ...] = (*head, adjective, OF, noun.zh)
    elif form == "possessive":
        obj = (_pick(rng, PRONOUNS).zh, OF, noun.zh)
    else:
        determiner = {"a": "一", "two": "两"}.get(form) or _pick(rng, DEMONSTRATIVES)
        obj = (determiner, noun.measure, noun.zh)
    return Clause(subject, tense, verb.zh, obj, time, place)


def _subject(words: tuple[str, ...], source: _Source) -> tuple[English, str]:
    """The subject in English, and the form of "be" that agrees with it."""
    if len(words) == 1 and words[0] in PRONOUN:
        pronoun = PRONOUN[words[0]]
        return [(pronoun.subject, source.add(pronoun.zh))], pronoun.be
    if len(words) == 1 and words[0] in BARE_PEOPLE:
        return [("the", None), (PEOPLE[words[0]], source.add(words[0]))], "is"
    if len(words) == 3 and words[0] in PRONOUN and words[1] == OF and words[2] in PEOPLE:
        owner = source.add(words[0])
        source.add(OF)
        return [(PRONOUN[words[0]].possessive, owner), (PEOPLE[words[2]], source.add(words[2]))], "is"
    raise ValueError(f"subject {words} is not a pronoun, {BARE_PEOPLE} or pronoun + 的 + one of {list(PEOPLE)}")


def _object(words: tuple[str, ...], verb: Verb, source: _Source) -> English:
    """The object noun phrase in English (see :class:`Clause` for its six forms)."""
    noun = NOUN.get(words[-1]) if words else None
    if noun is None or noun.kind not in verb.objects:
        raise ValueError(f"object {words} must end in a noun {verb.zh} takes: "
                         f"{[n.zh for n in NOUNS if n.kind in verb.objects]}")  # fmt: skip

    def adjective(word: str) -> tuple[str, int]:
        if word not in ADJECTIVES or noun.kind not in ADJECTIVES[word][1]:
            raise ValueError(f"{word!r} is not an adjective for {noun.zh} here: use one of "
                             f"{[a for a, (_, kinds) in ADJECTIVES.items() if noun.kind in kinds]}")  # fmt: skip
        return ADJECTIVES[word][0], source.add(word)

    determiners = NUMERALS | DEMONSTRATIVES
    if len(words) == 3 and words[1] == OF:  # 我的猫 → my cat; 黑色的猫 → the black cat
        if words[0] in PRONOUN:
            english: English = [(PRONOUN[words[0]].possessive, source.add(words[0]))]
        else:
            english = [("the", None), adjective(words[0])]
        source.add(OF)
    elif len(words) in (3, 5) and words[0] in determiners:  # 一只猫, 两只猫, 这只猫; 一只黑色的猫
        if words[1] != noun.measure:
            raise ValueError(f"{noun.zh} is counted with the measure word {noun.measure}, not {words[1]}")
        english = [(determiners[words[0]], source.add(words[0]))]
        source.add(words[1])
        if len(words) == 5:
            if words[0] != "一" or words[3] != OF:
                raise ValueError(f"object {words}: only 一 + measure word + adjective + 的 + noun takes an adjective")
            english.append(adjective(words[2]))
            source.add(OF)
    else:
        raise ValueError(f"object {words} has none of the six forms of Clause.object")
    english.append((noun.plural if words[0] == "两" else noun.singular, source.add(noun.zh)))
    if english[0][0] == "a" and english[1][0][0] in VOWELS:
        english[0] = ("an", english[0][1])
    return english


def translate_clause(clause: Clause) -> SentencePair:
    """The sentence pair of a clause, with its alignment.

    Chinese order: subject [time] [会] [在 place] verb [了] object, or subject [现在] 在 verb object (progressive).
    English order: subject [will | am/is/are] verb object [place] [time].

    Raises
    ------
    ValueError
        For a word the grammar lacks or a combination it does not make (a time word of another tense, a place in
        the progressive, an object the verb does not take, a wrong measure word).
    """
    if clause.tense not in TENSES:
        raise ValueError(f"tense must be one of {TENSES}, got {clause.tense!r}")
    if clause.verb not in VERB:
        raise ValueError(f"verb {clause.verb!r} is not one of {list(VERB)}")
    if clause.time is not None and clause.time not in TIMES[clause.tense]:
        raise ValueError(f"time word {clause.time!r} does not fit the {clause.tense}: use one of "
                         f"{list(TIMES[clause.tense])}")  # fmt: skip
    if clause.place is not None and (clause.tense == "progressive" or clause.place not in PLACES):
        raise ValueError(f"place {clause.place!r} must be one of {list(PLACES)}, and not in the progressive")
    source = _Source()
    subject, be = _subject(clause.subject, source)
    time: English = []
    if clause.time is not None:
        index = source.add(clause.time)
        time = [(w, index) for w in TIMES[clause.tense][clause.time]]
    auxiliary: English = []
    if clause.tense == "future":
        auxiliary = [("will", source.add(FUTURE))]
    elif clause.tense == "progressive":
        auxiliary = [(be, source.add(PROGRESSIVE))]
    place: English = []
    if clause.place is not None:
        preposition, *rest = PLACES[clause.place]
        locative, index = source.add(LOCATIVE), source.add(clause.place)
        place = [(preposition, locative)] + [(w, None if w == "the" else index) for w in rest]
    verb = VERB[clause.verb]
    verb_index = source.add(verb.zh)
    if clause.tense == "past":
        source.add(PAST)
    verb_form = {"past": verb.past, "progressive": verb.ing, "future": verb.base}[clause.tense]
    obj = _object(tuple(clause.object), verb, source)
    english = subject + auxiliary + [(verb_form, verb_index)] + obj + place + time
    return SentencePair(tuple(source.words), tuple(w for w, _ in english), tuple(i for _, i in english))


def sample_pair(rng: random.Random) -> SentencePair:
    """One sentence pair drawn from the grammar: ``translate_clause(sample_clause(rng))``."""
    return translate_clause(sample_clause(rng))


# --- the corpus ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """Train and test splits (disjoint) and the vocabularies a model needs."""

    train: tuple[SentencePair, ...]
    test: tuple[SentencePair, ...]
    source_vocab: tuple[str, ...] = SOURCE_VOCAB
    target_vocab: tuple[str, ...] = TARGET_VOCAB


def build_corpus(n_train: int = 4000, n_test: int = 400, seed: int = 0) -> Corpus:
    """Draw ``n_train + n_test`` different sentences from the grammar with ``random.Random(seed)``.

    The first ``n_test`` distinct sentences drawn form the test split, the next ``n_train`` the train split, so the
    splits share no sentence (a Chinese sentence has exactly one translation here, so distinct sources mean distinct
    pairs). The same arguments give the same corpus on every machine and Python version (every choice comes from
    ``random.Random(seed).random()``, see :func:`_pick`).
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be at least 1, got {n_train} and {n_test}")
    rng = random.Random(seed)
    seen: dict[tuple[str, ...], SentencePair] = {}
    attempts = 0
    while len(seen) < n_train + n_test:
        pair = sample_pair(rng)
        seen.setdefault(pair.source, pair)
        attempts += 1
        if attempts > 20 * (n_train + n_test):
            raise ValueError(f"the grammar yields too few distinct sentences for {n_train + n_test}; ask for fewer")
    pairs = tuple(seen.values())
    return Corpus(train=pairs[n_test:], test=pairs[:n_test])
