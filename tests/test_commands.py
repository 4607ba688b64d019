"""The command parser and code normaliser: grammar cases and property tests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.codes.normalize import CodeShape, normalize_code, shape_of
from bot.commands import MAX_INPUT_CHARS, CodeToken, CommandKind, clean_text, parse
from bot.model import CodeSystem


def test_codes_are_case_dot_and_space_insensitive() -> None:
    assert normalize_code("e11.9 ") == "E119"
    assert normalize_code(" E11.9") == "E119"
    assert normalize_code("-lt") == "LT"
    assert normalize_code("0dtj4zz") == "0DTJ4ZZ"


def test_shapes() -> None:
    assert shape_of("E11.9") is CodeShape.CODE
    assert shape_of("s72.001a") is CodeShape.CODE
    assert shape_of("0DTJ4ZZ") is CodeShape.CODE
    assert shape_of("A0425") is CodeShape.CODE
    assert shape_of("77306") is CodeShape.CODE
    assert shape_of("0001U") is CodeShape.CODE
    assert shape_of("LT") is CodeShape.MODIFIER
    assert shape_of("-LT") is CodeShape.MODIFIER
    assert shape_of("bladder") is CodeShape.MAYBE  # PCS-shaped word: looked up, then searched
    assert shape_of("knee") is CodeShape.WORD
    assert shape_of("diabetes") is CodeShape.WORD
    assert shape_of("E11.9.9") is CodeShape.WORD
    assert shape_of("A04.25.") is CodeShape.WORD


def test_lookup_of_several_codes() -> None:
    command = parse("/code E11.9 I10 A0425")
    assert command.kind is CommandKind.LOOKUP
    assert [token.text for token in command.codes] == ["E11.9", "I10", "A0425"]


def test_words_are_a_search() -> None:
    command = parse("/code knee brace")
    assert command.kind is CommandKind.SEARCH
    assert command.query == "knee brace"


def test_search_in_one_system() -> None:
    command = parse("search icd10cm knee pain")
    assert command.kind is CommandKind.SEARCH
    assert command.system is CodeSystem.ICD10CM
    assert command.query == "knee pain"


def test_modifier_forms() -> None:
    assert parse("modifier LT").codes[0].shape is CodeShape.MODIFIER
    assert parse("-LT").kind is CommandKind.LOOKUP


def test_share_note_admin_and_free_commands() -> None:
    assert parse("share E11.9").kind is CommandKind.SHARE
    assert parse("share E11.9 I10").kind is CommandKind.INVALID
    note = parse("note E11.9 use with Z79.4 when on insulin")
    assert note.kind is CommandKind.NOTE and note.text.startswith("use with")
    assert parse("note E11.9 delete").args == ("delete",)
    assert parse("admin grant <@U123> 50").args == ("grant", "<@U123>", "50")
    assert parse("admin plan team unlimited").args == ("plan", "team", "unlimited")
    assert parse("admin usage").args == ("usage",)
    assert parse("admin launch missiles").kind is CommandKind.INVALID
    for word in ("help", "quota", "register", "recent", "stats"):
        assert parse(word).is_free
    assert not parse("E11.9").is_free


def test_mentions_and_mass_mentions_are_removed() -> None:
    command = parse("<!channel> @everyone E11.9 <@U999>")
    assert command.kind is CommandKind.LOOKUP
    assert [token.text for token in command.codes] == ["E11.9"]
    assert "@everyone" not in clean_text("hi @everyone and @here")


def test_bad_input_gets_a_short_answer() -> None:
    assert parse("").kind is CommandKind.HELP
    assert parse("x" * 10_000).kind is CommandKind.INVALID
    assert parse("'; DROP TABLE codes;--").kind is CommandKind.SEARCH
    assert parse("\x00\x07\t\r\n").kind is CommandKind.HELP
    # a repeated code is one code; more than 10 distinct codes: the first 10, rest skipped
    assert parse(" ".join(["E11.9"] * 11)).codes == (CodeToken("E11.9", CodeShape.CODE),)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_parse_never_raises_and_is_bounded(text: str) -> None:
    command = parse(text)
    assert len(command.query) <= MAX_INPUT_CHARS
    assert len(command.text) <= MAX_INPUT_CHARS
    assert len(command.codes) <= 10
    assert "@everyone" not in command.query and "@here" not in command.query


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_shape_and_normalise_never_raise(text: str) -> None:
    shape = shape_of(text)
    assert isinstance(shape, CodeShape)
    assert normalize_code(text) == normalize_code(text).upper()
