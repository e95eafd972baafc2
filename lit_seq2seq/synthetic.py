"""A synthetic French -> English wh-question corpus, so the default run needs nothing downloaded.

Questions are built from a small bilingual lexicon and templates chosen to need what attention gives
a translator: French elision (``l'``, ``d'``, ``qu'``), gender and number agreement of determiners,
adjectives and ``quel``, adjectives that follow the noun in French but precede it in English,
complex inversion (``le chat mange-t-il``, ``a-t-il``), ``est-ce que``, genitives that swap order
(``la voiture du médecin`` -> ``the doctor's car``), and lengths from 2 to 21 words. It is
synthetic: grammatical, but the sentences are not natural text and say nothing true about the world.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from lit_common.errors import InputError

GENERATOR_VERSION = 1
VOWELS = tuple("aeiouyéèêàâîïôûh")  # 'h' words below are all h muet (l'homme, l'hôpital)


@dataclass(frozen=True)
class Noun:
    fr: str
    fr_pl: str
    gender: str  # "m" | "f"
    en: str
    en_pl: str


@dataclass(frozen=True)
class Adjective:
    forms: tuple[str, str, str, str]  # m.sg, f.sg, m.pl, f.pl
    en: str
    before: bool = False  # precedes the noun in French (grand, petit, ...)
    m_before_vowel: str | None = None  # bel, vieil, nouvel


@dataclass(frozen=True)
class Verb:
    fr: str  # 3rd person singular
    fr_pl: str  # 3rd person plural
    en: str  # base form
    en_s: str  # 3rd person singular


def _n(fr: str, gender: str, en: str, fr_pl: str | None = None, en_pl: str | None = None) -> Noun:
    return Noun(fr, fr_pl or fr + "s", gender, en, en_pl or en + "s")


NOUNS = [
    _n("chat", "m", "cat"),
    _n("chien", "m", "dog"),
    _n("homme", "m", "man", en_pl="men"),
    _n("femme", "f", "woman", en_pl="women"),
    _n("enfant", "m", "child", en_pl="children"),
    _n("ami", "m", "friend"),
    _n("amie", "f", "girlfriend"),
    _n("médecin", "m", "doctor"),
    _n("professeur", "m", "teacher"),
    _n("étudiant", "m", "student"),
    _n("étudiante", "f", "student"),
    _n("voisin", "m", "neighbour"),
    _n("voisine", "f", "neighbour"),
    _n("oiseau", "m", "bird", fr_pl="oiseaux"),
    _n("cheval", "m", "horse", fr_pl="chevaux"),
    _n("maison", "f", "house"),
    _n("voiture", "f", "car"),
    _n("livre", "m", "book"),
    _n("lettre", "f", "letter"),
    _n("école", "f", "school"),
    _n("église", "f", "church", en_pl="churches"),
    _n("hôpital", "m", "hospital", fr_pl="hôpitaux"),
    _n("hôtel", "m", "hotel"),
    _n("arbre", "m", "tree"),
    _n("fleur", "f", "flower"),
    _n("pomme", "f", "apple"),
    _n("gâteau", "m", "cake", fr_pl="gâteaux"),
    _n("table", "f", "table"),
    _n("chaise", "f", "chair"),
    _n("fenêtre", "f", "window"),
    _n("porte", "f", "door"),
    _n("jardin", "m", "garden"),
    _n("ville", "f", "city", en_pl="cities"),
    _n("rue", "f", "street"),
    _n("bateau", "m", "boat", fr_pl="bateaux"),
    _n("avion", "m", "plane"),
    _n("train", "m", "train"),
    _n("robe", "f", "dress", en_pl="dresses"),
    _n("chemise", "f", "shirt"),
    _n("chapeau", "m", "hat", fr_pl="chapeaux"),
    _n("journal", "m", "newspaper", fr_pl="journaux"),
    _n("ordinateur", "m", "computer"),
    _n("clé", "f", "key"),
    _n("sac", "m", "bag"),
    _n("cadeau", "m", "present", fr_pl="cadeaux"),
    _n("photo", "f", "photo"),
    _n("chanson", "f", "song"),
    _n("film", "m", "film"),
]
PEOPLE = {"homme", "femme", "enfant", "ami", "amie", "médecin", "professeur", "étudiant"}
PEOPLE |= {"étudiante", "voisin", "voisine", "chat", "chien", "oiseau", "cheval"}


def _a(m: str, f: str, en: str, m_pl: str | None = None, f_pl: str | None = None) -> Adjective:
    return Adjective((m, f, m_pl or m + "s", f_pl or f + "s"), en)


ADJECTIVES = [
    _a("noir", "noire", "black"),
    _a("blanc", "blanche", "white"),
    _a("rouge", "rouge", "red"),
    _a("vert", "verte", "green"),
    _a("bleu", "bleue", "blue"),
    _a("jaune", "jaune", "yellow"),
    _a("gris", "grise", "grey", m_pl="gris"),
    _a("heureux", "heureuse", "happy", m_pl="heureux"),
    _a("célèbre", "célèbre", "famous"),
    _a("intéressant", "intéressante", "interesting"),
    _a("cher", "chère", "expensive"),
    _a("français", "française", "French", m_pl="français"),
    _a("anglais", "anglaise", "English", m_pl="anglais"),
    _a("fatigué", "fatiguée", "tired"),
    Adjective(("grand", "grande", "grands", "grandes"), "big", before=True),
    Adjective(("petit", "petite", "petits", "petites"), "small", before=True),
    Adjective(("jeune", "jeune", "jeunes", "jeunes"), "young", before=True),
    Adjective(("bon", "bonne", "bons", "bonnes"), "good", before=True),
    Adjective(("beau", "belle", "beaux", "belles"), "beautiful", True, "bel"),
    Adjective(("vieux", "vieille", "vieux", "vieilles"), "old", True, "vieil"),
    Adjective(("nouveau", "nouvelle", "nouveaux", "nouvelles"), "new", True, "nouvel"),
]

VERBS = [
    Verb("voit", "voient", "see", "sees"),
    Verb("aime", "aiment", "like", "likes"),
    Verb("cherche", "cherchent", "look for", "looks for"),
    Verb("regarde", "regardent", "watch", "watches"),
    Verb("achète", "achètent", "buy", "buys"),
    Verb("trouve", "trouvent", "find", "finds"),
    Verb("vend", "vendent", "sell", "sells"),
    Verb("attend", "attendent", "wait for", "waits for"),
    Verb("prend", "prennent", "take", "takes"),
    Verb("connaît", "connaissent", "know", "knows"),
    Verb("préfère", "préfèrent", "prefer", "prefers"),
    Verb("oublie", "oublient", "forget", "forgets"),
    Verb("dessine", "dessinent", "draw", "draws"),
    Verb("montre", "montrent", "show", "shows"),
]
PLACES = [("dans", "in"), ("devant", "in front of"), ("derrière", "behind"), ("près de", "near")]
QUESTION_WORDS = [("Pourquoi", "Why"), ("Quand", "When"), ("Où", "Where"), ("Comment", "How")]


def _elides(word: str) -> bool:
    return word.startswith(VOWELS)


@dataclass
class Phrase:
    """A noun phrase in both languages, with what agreement and inversion need to know."""

    fr: str
    en: str
    gender: str
    plural: bool


def _noun_phrase(rng: random.Random, people_only: bool = False, genitive: bool = True) -> Phrase:
    nouns = [n for n in NOUNS if n.fr in PEOPLE] if people_only else NOUNS
    noun = rng.choice(nouns)
    plural = rng.random() < 0.3
    adj = rng.choice(ADJECTIVES) if rng.random() < 0.55 else None
    index = {"m": 0, "f": 1}[noun.gender] + (2 if plural else 0)
    fr_noun = noun.fr_pl if plural else noun.fr
    en_noun = noun.en_pl if plural else noun.en
    if adj is None:
        words = [fr_noun]
    elif adj.before:
        form = adj.forms[index]
        if index == 0 and adj.m_before_vowel and _elides(fr_noun):
            form = adj.m_before_vowel
        words = [form, fr_noun]
    else:
        words = [fr_noun, adj.forms[index]]
    if plural:
        det = "les"
    elif _elides(words[0]):
        det = "l'"
    else:
        det = "le" if noun.gender == "m" else "la"
    fr = (det if det.endswith("'") else det + " ") + " ".join(words)
    en = "the " + (f"{adj.en} {en_noun}" if adj else en_noun)
    if genitive and rng.random() < 0.2:
        owner = _noun_phrase(rng, people_only=True, genitive=False)
        fr = f"{fr} {_de(owner.fr)}"
        owner_en = owner.en + ("'" if owner.plural and owner.en.endswith("s") else "'s")
        en = f"{owner_en} {en.removeprefix('the ')}"
    return Phrase(fr, en, noun.gender, plural)


def _de(phrase_fr: str) -> str:
    """``de`` + a definite noun phrase: du, de la, de l', des."""
    if phrase_fr.startswith("le "):
        return "du " + phrase_fr[3:]
    if phrase_fr.startswith("les "):
        return "des " + phrase_fr[4:]
    return "de " + phrase_fr


def _inverted_verb(verb_fr: str, subject: Phrase) -> str:
    """Complex inversion pronoun: ``mange-t-il``, ``voit-elle``, ``aiment-ils``."""
    pronoun = (
        ("ils" if subject.gender == "m" else "elles")
        if subject.plural
        else ("il" if subject.gender == "m" else "elle")
    )
    link = "-t-" if verb_fr.endswith(("e", "a")) else "-"
    return f"{verb_fr}{link}{pronoun}"


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def _question(rng: random.Random) -> tuple[str, str]:
    subject = _noun_phrase(rng, people_only=True)
    verb = rng.choice(VERBS)
    verb_fr = verb.fr_pl if subject.plural else verb.fr
    do = "do" if subject.plural else "does"
    obj = _noun_phrase(rng)
    place = rng.choice(PLACES) if rng.random() < 0.25 else None
    tail_fr = tail_en = ""
    if place is not None:
        where = _noun_phrase(rng, genitive=False)
        prep = "près " + _de(where.fr) if place[0] == "près de" else f"{place[0]} {where.fr}"
        tail_fr, tail_en = f" {prep}", f" {place[1]} {where.en}"
    kind = rng.randrange(8)
    if kind == 0:  # Pourquoi le chat noir mange-t-il la pomme ?
        qfr, qen = rng.choice(QUESTION_WORDS)
        fr = f"{qfr} {subject.fr} {_inverted_verb(verb_fr, subject)} {obj.fr}{tail_fr} ?"
        en = f"{qen} {do} {subject.en} {verb.en} {obj.en}{tail_en}?"
    elif kind == 1:  # Quand est-ce que le chat noir mange la pomme ?
        qfr, qen = rng.choice(QUESTION_WORDS)
        fr = f"{qfr} est-ce que {subject.fr} {verb_fr} {obj.fr}{tail_fr} ?"
        en = f"{qen} {do} {subject.en} {verb.en} {obj.en}{tail_en}?"
    elif kind == 2:  # Qu'est-ce que le chat noir mange ?
        fr = f"Qu'est-ce que {subject.fr} {verb_fr}{tail_fr} ?"
        en = f"What {do} {subject.en} {verb.en}{tail_en}?"
    elif kind == 3:  # Qui voit la voiture rouge ?
        fr = f"Qui {verb.fr} {obj.fr}{tail_fr} ?"
        en = f"Who {verb.en_s} {obj.en}{tail_en}?"
    elif kind == 4:  # Quelle voiture le chat voit-il ?
        noun = rng.choice(NOUNS)
        plural = rng.random() < 0.3
        quel = ["quel", "quelle", "quels", "quelles"][{"m": 0, "f": 1}[noun.gender] + 2 * plural]
        fr_noun, en_noun = (noun.fr_pl, noun.en_pl) if plural else (noun.fr, noun.en)
        fr = f"{_capitalize(quel)} {fr_noun} {subject.fr} {_inverted_verb(verb_fr, subject)} ?"
        en = f"Which {en_noun} {do} {subject.en} {verb.en}?"
    elif kind == 5:  # Combien d'arbres l'enfant voit-il ?
        noun = rng.choice(NOUNS)
        de = "d'" if _elides(noun.fr_pl) else "de "
        fr = f"Combien {de}{noun.fr_pl} {subject.fr} {_inverted_verb(verb_fr, subject)}{tail_fr} ?"
        en = f"How many {noun.en_pl} {do} {subject.en} {verb.en}{tail_en}?"
    elif kind == 6:  # Où est la maison du professeur ? / Où sont ... ?
        thing = _noun_phrase(rng)
        fr = f"Où {'sont' if thing.plural else 'est'} {thing.fr} ?"
        en = f"Where {'are' if thing.plural else 'is'} {thing.en}?"
    else:  # Que voit-il ? / Qu'achète-t-elle ?  (pronoun inversion, elided que)
        pronoun_fr, pronoun_en = rng.choice(
            [("il", "he"), ("elle", "she"), ("ils", "they"), ("elles", "they")]
        )
        plural = pronoun_fr.endswith("s")
        v = verb.fr_pl if plural else verb.fr
        link = "-t-" if v.endswith(("e", "a")) else "-"
        que = "Qu'" if _elides(v) else "Que "
        fr = f"{que}{v}{link}{pronoun_fr}{tail_fr} ?"
        en = f"What {'do' if plural else 'does'} {pronoun_en} {verb.en}{tail_en}?"
    return _capitalize(fr), _capitalize(en)


def question_stream(seed: int = 0) -> Iterator[tuple[str, str]]:
    """(French, English) questions without end, repeats allowed: a corpus of any size in
    constant memory (``bench/prepare_scale.py``); ``generate_pairs`` keeps only distinct ones."""
    rng = random.Random(seed)
    while True:
        yield _question(rng)


def generate_pairs(n_pairs: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """``n_pairs`` distinct (French, English) questions, the same for the same seed.

    Raises:
        ValueError: when ``n_pairs`` is more than the templates can make distinct.
    """
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    misses = 0
    while len(seen) < n_pairs:
        pair = _question(rng)
        if pair in seen:
            misses += 1
            if misses > 50 * n_pairs + 10_000:
                raise InputError(f"generate_pairs: cannot make {n_pairs} distinct pairs")
            continue
        seen.add(pair)
        yield pair
