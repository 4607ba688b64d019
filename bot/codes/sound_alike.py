"""Spellings that sound like a misspelt medical word, for search's spelling correction.

Medical words are misspelt the way they sound: "nefrectomy" (nephrectomy), "exema" (eczema),
"dyspnia" (dyspnea), "hemoroids" (hemorrhoids), "nuropathy" (neuropathy). Edit distance alone
reads some of them as a nearer word that sounds different ("exema" is one edit from "edema"
and from "eczema"; "nefrectomy" is two from nephrectomy). `sound_alike_spellings` undoes one
or two of the usual sound-for-letters substitutions; the search engine prefers those of its
results that are vocabulary words over plain edit-distance matches (see
`bot.codes.search.SearchEngine._alternatives`).

The rules are general English/medical spelling correspondences written by the codebot team,
not a list of words.
"""

from __future__ import annotations

# (as typed, as spelt): the letters a writer puts down for a sound, and the spelling that
# medical words of Greek and Latin origin use for it.
_RULES: tuple[tuple[str, str], ...] = (
    ("f", "ph"),
    ("x", "cz"),  # eczema
    ("x", "cs"),
    ("k", "c"),
    ("k", "ch"),  # kolecystitis, kronic
    ("c", "ch"),  # colecystitis
    ("s", "c"),  # sirrhosis
    ("s", "sc"),  # absess
    ("s", "ps"),  # soriasis (inside a word too: "colapse" is not one; only vocabulary words win)
    ("z", "s"),
    ("z", "x"),  # anzious
    ("i", "y"),  # dialisis, hipoglycemia
    ("y", "i"),
    ("ia", "ea"),  # dyspnia, apnia
    ("ea", "ia"),
    ("e", "ae"),
    ("u", "eu"),  # nuropathy, numonia
    ("r", "rh"),  # diarea, hemorage
    ("r", "rrh"),
    ("t", "th"),  # asma is not one, but "arthritis" typed "artritis" is
    ("n", "pn"),  # apnea typed "anea" is not one; "dyspnea" typed "dysnea" is
    ("n", "gn"),
    ("m", "mm"),
    ("p", "pp"),
    ("l", "ll"),
    ("r", "rr"),
    ("s", "ss"),
    ("t", "tt"),
    ("c", "cc"),
    ("mm", "m"),
    ("pp", "p"),
    ("ll", "l"),
    ("rr", "r"),
    ("ss", "s"),
    ("tt", "t"),
    ("cc", "c"),
)
_MAX_LENGTH = 30  # longer "words" are not words; their variants would only cost time


def _one_step(word: str) -> set[str]:
    out: set[str] = set()
    for typed, spelt in _RULES:
        start = word.find(typed)
        while start != -1:
            out.add(word[:start] + spelt + word[start + len(typed) :])
            start = word.find(typed, start + 1)
    out.discard(word)
    return out


def sound_alike_spellings(word: str, *, deep: bool = True) -> tuple[set[str], set[str]]:
    """Spellings one and (with `deep`) two substitutions away from `word` (lower-case
    letters only; both sets empty for anything else), each set without `word` itself."""
    if not word.isalpha() or not word.isascii() or len(word) > _MAX_LENGTH:
        return set(), set()
    first = _one_step(word)
    second: set[str] = set()
    if not deep:
        return first, second
    for spelling in first:
        second |= _one_step(spelling)
    second -= first
    second.discard(word)
    return first, second
