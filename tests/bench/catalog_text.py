"""Made-up but English-like catalog text for seed_catalog.py: a skewed (Zipf-like) vocabulary, creator names,
tag paths, and the planted query words that search_latency.py looks for.

Not a script. Everything here is deterministic for a given random.Random, so a seed gives the same catalog.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from itertools import accumulate

# ------------------------------------------------------------------------------------------------------------
# The query words. They are kept out of the random vocabulary, creator names and tags, and planted on purpose
# at fixed rates, so each one matches a known share of the items. Rates are per item (drafts included).


@dataclass(frozen=True, slots=True)
class Planted:
    word: str
    rate: float  # share of items that get it
    in_title: float  # of those, the share that has it in the title (the rest: in the description)


SELECTIVE = Planted("marimba", 0.0006, 0.5)  # ≈ 600 of 1M items
MEDIUM = Planted("lullaby", 0.0103, 0.4)  # ≈ 10,000 of 1M (~1 %)
NON_SELECTIVE = Planted("vintage", 0.33, 0.3)  # plus the phrase below: ≈ 34 % of items
PARTNER = Planted("cassette", 0.08, 0.2)  # a second word for the two-word query and the phrase
PHRASE = ("vintage cassette", 0.015)  # the two words next to each other, in descriptions
PLANTED = (SELECTIVE, MEDIUM, NON_SELECTIVE, PARTNER)

# What search_latency.py asks for (label, q). The phrase uses websearch_to_tsquery's quotes.
QUERIES = (
    ("selective", SELECTIVE.word),
    ("medium", MEDIUM.word),
    ("non-selective", NON_SELECTIVE.word),
    ("two words", f"{NON_SELECTIVE.word} {PARTNER.word}"),
    ("phrase", f'"{PHRASE[0]}"'),
)
# Nothing random may start like a planted word, or its stem could match the planted word's stem.
RESERVED_PREFIXES = tuple(p.word[:4] for p in PLANTED)

# ------------------------------------------------------------------------------------------------------------
# Vocabulary: English function words first (to_tsvector drops most of them), then ~300 common content words,
# then pronounceable made-up words. Word k is drawn with weight 1 / (k + 2.7) ** ZIPF_S: a handful of words
# are in a large share of the items, most are rare.

FUNCTION_WORDS = """the and of a to in with for on is this it that from by as at an are be or your you all its
into over each every our my their more one two three""".split()

COMMON_WORDS = """sound light dream night city field record song music track album beat loop sample drum
bass guitar piano voice choir string synth tape noise echo room space time water river ocean rain storm snow
winter summer spring autumn morning evening sun moon star sky cloud forest tree garden flower stone mountain
valley road train station window door house home street bridge harbor island desert shadow mirror glass
paper ink color colour paint canvas brush pencil sketch drawing portrait landscape photo camera film frame
lens grain black white blue green red gold silver gray orange purple warm cold soft loud quiet slow fast
deep high low long short old young little small large big wild calm dark bright clear open lost found hidden
secret simple pure raw live studio session demo mix master edit version remix collection pack set bundle
series volume chapter story poem essay book guide lesson course tutorial workshop notes letters journal
diary map atlas world country town village kitchen table chair lamp clock bell wind fire earth metal wood
iron copper crystal velvet silk cotton wool leather feather bird wolf fox deer horse whale bee butterfly cat
dog heart mind body hand eye face memory love hope fear joy grief wonder silence motion dance rhythm melody
harmony chord scale tempo groove ambience texture pattern shape line circle square grid pixel font type
letter word page print zine comic hero ghost witch dragon king queen knight castle tower temple ritual spell
magic machine robot engine signal radio broadcast channel wave pulse frequency circuit code script tool kit
preset plugin template asset sprite tile model scene level quest journey travel voyage return arrival
departure midnight dawn dusk twilight season holiday festival party club stage crowd band orchestra ensemble
solo duet trio quartet""".split()

ONSETS = "b c d f g h j k l m n p r s t v w z b d k l m n r s t br cr dr fl gr pr st tr sh ch th".split()
VOWELS = "a e i o u a e i o a e o ai ea ou".split()
CODAS = "n r l s m t nd rn st x".split()
ZIPF_S = 1.07


def made_up_word(rng: random.Random) -> str:
    """Open syllables and one closing consonant now and then: 'talomer', 'venkira', 'brosel'."""
    syllables = rng.choices((1, 2, 3, 4), (3, 8, 5, 1))[0]
    word = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables))
    return word + rng.choice(CODAS) if rng.random() < 0.55 or syllables == 1 else word


def clean(word: str) -> bool:
    return 3 <= len(word) <= 12 and not word.startswith(RESERVED_PREFIXES) and word.isalpha()


@dataclass
class Vocabulary:
    words: list[str]  # by rank, function words first
    cum_all: list[float]  # cumulative weights over every word (descriptions)
    content: list[str]  # without the function words (titles)
    cum_content: list[float]

    @classmethod
    def build(cls, rng: random.Random, made_up: int = 60_000) -> Vocabulary:
        real = [w for w in dict.fromkeys(FUNCTION_WORDS + COMMON_WORDS) if clean(w) or w in FUNCTION_WORDS]
        seen = set(real)
        extra: list[str] = []
        while len(extra) < made_up:
            word = made_up_word(rng)
            if clean(word) and word not in seen:
                seen.add(word)
                extra.append(word)
        # The common words are not all equally common either: shuffle them among the first few hundred ranks.
        head = [w for w in real if w not in FUNCTION_WORDS] + extra[:200]
        rng.shuffle(head)
        words = FUNCTION_WORDS + head + extra[200:]
        weights = [1 / (k + 2.7) ** ZIPF_S for k in range(len(words))]
        n_function = len(FUNCTION_WORDS)
        return cls(words, list(accumulate(weights)), words[n_function:],
                   list(accumulate(weights[n_function:])))


# ------------------------------------------------------------------------------------------------------------
# Tags: a hierarchy such as music.electronic.ambient (ltree labels match [a-z0-9_]{1,40}).

TAXONOMY: dict[str, dict[str, list[str]]] = {
    "music": {"electronic": ["ambient", "techno", "house", "drum_and_bass", "synthwave", "idm", "downtempo"],
              "acoustic": ["folk", "classical", "singer_songwriter", "bluegrass"],
              "hip_hop": ["instrumentals", "boom_bap", "trap", "lofi"],
              "jazz": ["bebop", "fusion", "big_band"], "rock": ["indie", "post_rock", "metal", "punk"],
              "soundtrack": ["film", "games", "trailer"], "experimental": []},
    "sound": {"samples": ["drums", "loops", "foley", "field_recordings", "one_shots"],
              "presets": ["synth", "effects", "serum", "vital"],
              "sound_effects": ["ui", "nature", "weather"]},
    "art": {"illustration": ["digital", "ink", "watercolor", "gouache"], "painting": ["oil", "acrylic"],
            "comics": ["webcomic", "manga", "graphic_novel"], "pixel_art": [],
            "concept_art": ["characters", "environments", "creatures"],
            "brushes": ["procreate", "photoshop"]},
    "photography": {"landscape": [], "portrait": [], "street": [], "nature": ["birds", "macro", "wildlife"],
                    "stock": ["textures", "backgrounds"], "presets": ["lightroom", "film_emulation"]},
    "writing": {"fiction": ["short_stories", "fantasy", "science_fiction", "horror", "romance", "mystery"],
                "poetry": ["haiku", "prose_poetry"], "nonfiction": ["essays", "memoir", "guides"],
                "zines": []},
    "video": {"tutorials": ["music_production", "drawing", "coding", "cooking"], "short_film": [],
              "animation": ["2d", "3d", "stop_motion"], "stock_footage": ["drone", "city", "nature"]},
    "software": {"plugins": ["vst3", "au", "clap"], "tools": ["cli", "scripts"],
                 "templates": ["notion", "web", "resume"],
                 "fonts": ["serif", "sans_serif", "display", "handwritten"]},
    "education": {"courses": ["music_theory", "painting", "photography", "writing"], "workbooks": [],
                  "sheet_music": ["piano", "guitar", "choir"]},
    "games": {"tabletop": ["rpg", "maps", "miniatures", "one_page"],
              "assets": ["sprites", "tilesets", "3d_models", "ui_kits"], "interactive_fiction": []},
}
# Which top-level categories an item of each type mostly sits in.
TYPE_ROOTS = {"audio": ("music", "sound"), "video": ("video", "education"), "text": ("writing", "education"),
              "image": ("art", "photography"), "file": ("software", "games", "sound", "art")}
TAG_LABEL = re.compile(r"[a-z0-9_]{1,40}")


def tag_paths(root: str) -> list[str]:
    """Every path under `root` (depth 1 to 3), most general first."""
    paths = [root]
    for middle, leaves in TAXONOMY[root].items():
        paths.append(f"{root}.{middle}")
        paths.extend(f"{root}.{middle}.{leaf}" for leaf in leaves)
    assert all(TAG_LABEL.fullmatch(label) for p in paths for label in p.split("."))
    return paths


class Tags:
    """Picks 0–3 tags for an item of a type; some paths are much more popular than others (Zipf again)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.by_root: dict[str, tuple[list[str], list[float]]] = {}
        for root in TAXONOMY:
            paths = tag_paths(root)[1:]  # the bare root is rarely used as a tag
            rng.shuffle(paths)
            self.by_root[root] = (paths, list(accumulate(1 / (k + 1) ** 0.9 for k in range(len(paths)))))
        self.roots = list(TAXONOMY)

    def pick(self, item_type: str) -> list[str]:
        rng = self.rng
        count = rng.choices((0, 1, 2, 3), cum_weights=(15, 50, 80, 100))[0]
        chosen: list[str] = []
        for _ in range(count):
            root = rng.choice(TYPE_ROOTS[item_type]) if rng.random() < 0.85 else rng.choice(self.roots)
            paths, cum = self.by_root[root]
            path = rng.choices(paths, cum_weights=cum)[0]
            if path not in chosen:
                chosen.append(path)
        return chosen


# ------------------------------------------------------------------------------------------------------------
# Text


def capitalized(word: str) -> str:
    return word[:1].upper() + word[1:]


class Writer:
    """Titles (2–6 words) and Markdown descriptions (20–80 words in sentences and paragraphs), with HTML."""

    def __init__(self, rng: random.Random, vocabulary: Vocabulary) -> None:
        self.rng, self.v = rng, vocabulary

    def title(self, planted: list[str]) -> str:
        rng = self.rng
        n = rng.randint(2, 6) - len(planted)
        words = rng.choices(self.v.content, cum_weights=self.v.cum_content, k=max(n, 0))
        for word in planted:
            words.insert(rng.randint(0, len(words)), word)
        if len(words) >= 3 and rng.random() < 0.25:  # "Echoes of the Harbor"
            words.insert(rng.randint(1, len(words) - 1), rng.choice(("of", "of the", "and", "for", "in")))
        return " ".join(w if w in FUNCTION_WORDS or " " in w else capitalized(w) for w in words)

    def description(self, planted: list[str]) -> tuple[str, str]:
        """(Markdown, HTML) of 20–80 words; `planted` words (or phrases) go in at random places."""
        rng = self.rng
        words = rng.choices(self.v.words, cum_weights=self.v.cum_all, k=rng.randint(20, 80) - len(planted))
        for word in planted:
            words.insert(rng.randint(0, len(words)), word)
        if rng.random() < 0.15:  # a little Markdown now and then
            i = rng.randrange(len(words))
            words[i] = f"**{words[i]}**"
        sentences: list[str] = []
        i = 0
        while i < len(words):
            n = rng.randint(5, 14)
            sentence = words[i:i + n]
            i += n
            sentences.append(capitalized(" ".join(sentence)) + ".")
        paragraphs: list[str] = []
        i = 0
        while i < len(sentences):
            n = rng.randint(2, 4)
            paragraphs.append(" ".join(sentences[i:i + n]))
            i += n
        markdown = "\n\n".join(paragraphs)
        html = "".join(f"<p>{p}</p>\n" for p in paragraphs)
        if "**" in markdown:
            html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
        return markdown, html


def slugify(title: str) -> str:
    """As app.web.text.slugify does for ASCII titles."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80].rstrip("-")


# ------------------------------------------------------------------------------------------------------------
# Creators


def creator_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` distinct (username, display name) pairs: 'mira_tolvane' / 'Mira Tolvane', 'the_brandels' …"""
    out: list[tuple[str, str]] = []
    used: set[str] = set()

    def name_part() -> str:
        while True:
            word = made_up_word(rng)
            if clean(word) and 3 <= len(word) <= 9:
                return word

    while len(out) < count:
        style = rng.random()
        if style < 0.7:
            first, last = name_part(), name_part()
            display, base = f"{capitalized(first)} {capitalized(last)}", f"{first}_{last}"
        elif style < 0.85:
            band = name_part()
            display, base = f"The {capitalized(band)}s", f"the_{band}s"
        else:
            solo = name_part()
            display, base = capitalized(solo), solo
        username = base[:26]
        if username in used:
            username = f"{base[:24]}_{rng.randint(10, 999)}"
        if username in used or len(username) < 3:
            continue
        used.add(username)
        out.append((username, display[:60]))
    return out
