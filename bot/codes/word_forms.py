"""Noun and adjective forms of the same body part ("kidney" and "renal") or condition
("dependence" and "dependent"), and a few plain words for the clinical ones titles use
("bowel", "bleeding"), for search.

Code titles use one form and coders type the other: "acute renal failure" for N17.9 "Acute
kidney failure, unspecified", "cyst of ovary" for "Unspecified ovarian cysts", "left lower
lobe pneumonia" for "Lobar pneumonia". The search engine offers each form as an
alternative of the other (a little below the word typed, see `WORD_FORM_QUALITY` in
`bot.codes.search`). Only pairs that name one part and nothing else are listed: "cervical"
(neck or cervix), "oral" (a route of administration), "radial" and "ulnar" (also nerves and
arteries) are left out. General anatomical vocabulary written by the codebot team.
"""

from __future__ import annotations

from bot.codes.search_index import tokenize

_PAIRS = (
    ("kidney", "renal"),
    ("liver", "hepatic"),
    ("stomach", "gastric"),
    ("heart", "cardiac"),
    ("lung", "pulmonary"),
    ("brain", "cerebral"),
    ("ovary", "ovarian"),
    ("lobe", "lobar"),
    ("femur", "femoral"),
    ("uterus", "uterine"),
    ("testis", "testicular"),
    ("intestine", "intestinal"),
    ("colon", "colonic"),
    ("spleen", "splenic"),
    ("pancreas", "pancreatic"),
    ("prostate", "prostatic"),
    ("urethra", "urethral"),
    ("ureter", "ureteral"),
    ("esophagus", "esophageal"),
    ("tibia", "tibial"),
    ("fibula", "fibular"),
    ("humerus", "humeral"),
    ("pelvis", "pelvic"),
    ("vertebra", "vertebral"),
    ("duodenum", "duodenal"),
    ("rectum", "rectal"),
    ("vagina", "vaginal"),
    ("larynx", "laryngeal"),
    ("pharynx", "pharyngeal"),
    ("trachea", "tracheal"),
    ("bronchus", "bronchial"),
    ("abdomen", "abdominal"),
    ("thorax", "thoracic"),
    ("skin", "cutaneous"),
    ("nose", "nasal"),
    ("eye", "ocular"),
    ("face", "facial"),
    ("skull", "cranial"),
    ("gum", "gingival"),
    ("spine", "spinal"),
    ("muscle", "muscular"),
    ("vein", "venous"),
    ("artery", "arterial"),
    ("breast", "mammary"),
    ("heel", "calcaneal"),
    ("calcaneus", "calcaneal"),
    ("disc", "disk"),  # two spellings of one word
    ("intestine", "bowel"),
    ("intestinal", "bowel"),
    ("virus", "viral"),
    ("bacteria", "bacterial"),
    ("fungus", "fungal"),
    ("hemorrhage", "bleeding"),
    ("hemorrhage", "bleed"),
    ("bilateral", "both"),
    ("hypertension", "hypertensive"),
    ("diabetes", "diabetic"),
    ("presence", "present"),
    # A condition's noun and the adjective or participle a coder types for it ("dialysis
    # dependent" for Z99.2 "Dependence on renal dialysis", "osteoporotic fracture" for
    # "osteoporosis with current pathological fracture"). Left out where the adjective names
    # something else: "ulcerative" (colitis), "infectious" (mononucleosis), "inflammatory"
    # (bowel disease), "septic" (arthritis), "traumatic", "allergic" (rhinitis), "depressed"
    # (fracture).
    ("dependence", "dependent"),
    ("resistance", "resistant"),
    ("deficiency", "deficient"),
    ("incontinence", "incontinent"),
    ("obesity", "obese"),
    ("anemia", "anemic"),
    ("asthma", "asthmatic"),
    ("arthritis", "arthritic"),
    ("infection", "infected"),
    ("dehydration", "dehydrated"),
    ("pregnancy", "pregnant"),
    ("alcohol", "alcoholic"),
    ("fracture", "fractured"),
    ("dislocation", "dislocated"),
    ("sprain", "sprained"),
    ("rupture", "ruptured"),
    ("perforation", "perforated"),
    ("obstruction", "obstructed"),
    ("inflammation", "inflamed"),
    ("swelling", "swollen"),
    ("constipation", "constipated"),
    ("anxiety", "anxious"),
    ("confusion", "confused"),
    ("dizziness", "dizzy"),
    ("nausea", "nauseous"),
    ("paralysis", "paralyzed"),
    ("psychosis", "psychotic"),
    ("cirrhosis", "cirrhotic"),
    ("ischemia", "ischemic"),
    ("hypoxia", "hypoxic"),
    ("hypoxemia", "hypoxemic"),
    ("osteoporosis", "osteoporotic"),
    ("embolism", "embolic"),
    ("thrombosis", "thrombotic"),
    ("atherosclerosis", "atherosclerotic"),
    ("hemorrhage", "hemorrhagic"),
    ("stenosis", "stenotic"),
    ("necrosis", "necrotic"),
    ("gangrene", "gangrenous"),
    ("ulcer", "ulcerated"),
)


def _forms() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for noun, adjective in _PAIRS:
        (n,), (a,) = tokenize(noun), tokenize(adjective)
        out.setdefault(n, []).append(a)
        out.setdefault(a, []).append(n)
    return {word: tuple(forms) for word, forms in out.items()}


WORD_FORMS: dict[str, tuple[str, ...]] = _forms()


def other_forms(token: str) -> tuple[str, ...]:
    """The other forms of a (tokenised) word (body part or condition), or ()."""
    return WORD_FORMS.get(token, ())
