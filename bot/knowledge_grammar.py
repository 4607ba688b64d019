"""Grammar of the coding-knowledge commands (issue 10), parsed into a `Command`.

```
/code drg 291                          an MS-DRG: title, MDC, type, weight, GMLOS, AMLOS, family
/code group PDX [SDX…] [PROC…] [age N] [sex F|M] [discharged YYYY-MM-DD] [died]
                                       group a claim: MS-DRG, the CC/MCC that made it, MCE edits
/code 250.00 · /code 47.01             an ICD-9-CM diagnosis / procedure and its ICD-10 GEM map
/code icd9 V45.81 · /code icd9 250     any ICD-9-CM form (V codes, undotted, categories)
/code crosswalk E11.9                  ICD-10-CM -> ICD-9-CM (backward GEM); also 250.00 -> …
/code guidelines sepsis                the Official Guidelines sections matching words
/code guideline I.C.1.d                one section, quoted in full
```
Each answer is one paid lookup. `Command.args` is (action, *words).
"""

from __future__ import annotations

from bot.codes.normalize import CodeShape, icd9_shape, shape_of

KNOWLEDGE_HEADS = {
    "drg": "drg",
    "ms-drg": "drg",
    "msdrg": "drg",
    "group": "group",
    "grouper": "group",
    "crosswalk": "crosswalk",
    "xwalk": "crosswalk",
    "gem": "crosswalk",
    "icd9": "icd9",
    "icd-9": "icd9",
    "icd9cm": "icd9",
    "icd-9-cm": "icd9",
    "guidelines": "guidelines",
    "guideline": "guideline",
}
USAGE = {
    "drg": "Usage: /code drg 291",
    "group": (
        "Usage: /code group PDX [SDX…] [PROC…] [age N] [sex F|M] [discharged YYYY-MM-DD] "
        "(e.g. /code group I50.20 N17.9 age 72 sex F)"
    ),
    "crosswalk": "Usage: /code crosswalk E11.9 (ICD-10-CM -> ICD-9-CM) or /code crosswalk 250.00",
    "icd9": "Usage: /code icd9 250.00 (also V45.81, E880.9, 47.01, 250)",
    "guidelines": "Usage: /code guidelines sepsis",
    "guideline": "Usage: /code guideline I.C.1.d",
}
MAX_WORDS = 60


def knowledge_action(head: str, rest: list[str]) -> str:
    """The action a first word names ("" when it is not a knowledge command).

    `group` and `grouper` are also ordinary words ("group therapy"): they are the grouping
    command only when a code follows them.
    """
    action = KNOWLEDGE_HEADS.get(head.lower(), "")
    if action == "group" and (not rest or shape_of(rest[0]) is CodeShape.WORD):
        return ""
    return action


def validate(action: str, rest: list[str]) -> str:
    """ "" when the words fit the action's grammar, else the usage line to answer with."""
    if not rest or len(rest) > MAX_WORDS:
        return USAGE[action]
    if action == "drg" and (len(rest) != 1 or not rest[0].isdigit() or len(rest[0]) > 3):
        return USAGE[action]
    if action == "crosswalk" and len(rest) != 1:
        return USAGE[action]
    if action == "icd9" and (
        len(rest) > 10 or not all(icd9_shape(word, forced=True) for word in rest)
    ):
        return USAGE[action]
    if action == "guideline" and len(rest) != 1:
        return USAGE[action]
    return ""


def all_icd9(words: list[str]) -> bool:
    """True when every word is an unambiguous ICD-9-CM code (250.00, 47.01, E880.9)."""
    return bool(words) and len(words) <= 10 and all(icd9_shape(word) for word in words)
