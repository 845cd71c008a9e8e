"""Readers and writers of the real formats: the official samples, round trips, the VIST SIS converter,
and every kind of bad input giving one clear line that names the file and the record (raised by
default; with ``skip_bad`` the bad record is listed and the good ones are still read)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES
from PIL import Image

from mg5bench.core.errors import DataError
from mg5bench.data.cc3m import read_cc3m, write_cc3m
from mg5bench.data.io import Problems
from mg5bench.data.mmdialog import read_mmdialog, write_mmdialog
from mg5bench.data.vist import read_vist, write_vist
from mg5bench.data.vist_sis import convert_vist_sis

VIST_CAPTIONS = [
    "my sister arrived early to help me with the family bar bq .",
    "every one else arrived soon after .",
    "dad manned the grill .",
    "there was so much food and it was all delicious .",
    "we ended the day shooting off some fireworks .",
]
VIST_IMAGE_IDS = ["693397887", "695160730", "694227508", "693397865", "694227468"]
MM_KEYS = ["2682085160072908899", "-5632896413199993329", "3433276376275926389", "-5763052819421198282"]


@pytest.fixture(autouse=True)
def _need_samples(samples_dir: Path) -> None:
    assert samples_dir == SAMPLES


# --- the official samples, read exactly ------------------------------------------------------------


def test_official_cc3m() -> None:
    recs = read_cc3m(SAMPLES / "CC3M", "val")
    assert [(r.id, r.caption, r.line) for r in recs] == [
        ("val/000007775", "burning candle on the background of the aquarium with small fish .", 2),
        ("val/000009256", "shot of the full tree .", 3),
    ]
    assert recs[0].image == (SAMPLES / "CC3M" / "val" / "000007775.jpg").resolve()
    for r in recs:  # the caption matches the .txt file shipped beside each image
        assert r.image.is_absolute() and r.image.with_suffix(".txt").read_text().strip() == r.caption


def test_official_vist() -> None:
    (story,) = read_vist(SAMPLES / "VIST", "val")
    assert story.story_id == "40470"
    assert [s.sequence_index for s in story.steps] == [0, 1, 2, 3, 4]
    assert [s.caption for s in story.steps] == VIST_CAPTIONS
    assert [s.image_id for s in story.steps] == VIST_IMAGE_IDS
    assert [s.image.name for s in story.steps] == [f"00000000{k}.jpg" for k in (5, 7, 3, 4, 0)]
    assert all(s.image.is_absolute() and s.image.is_file() for s in story.steps)


def test_official_mmdialog() -> None:
    (conv,) = read_mmdialog(SAMPLES / "MMDialog", "test")
    assert conv.conversation_id == "0" and conv.line == 1 and len(conv.turns) == 9
    first = conv.turns[0]
    assert [e.kind for e in first.elements] == ["text", "image"]
    assert first.text.startswith("Happy JAchat day, traveltribe!") and first.text.endswith(
        ":smiling_face_with_heart-eyes:"
    )
    assert len(first.images) == 1 and Path(first.images[0]).is_file()
    assert Path(first.images[0]) == (SAMPLES / "MMDialog" / "test" / f"{MM_KEYS[0]}.jpg").resolve()
    assert [t.media_keys for t in conv.turns[:4]] == [(k,) for k in MM_KEYS]
    assert all(t.images == [] and t.media_keys == () and t.text for t in conv.turns[4:])
    assert conv.turns[4].text == "Absolutely stunning!! :growing_heart:"
    assert all(e.role is None for t in conv.turns for e in t.elements)


# --- round trips -----------------------------------------------------------------------------------


def _image(dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / "CC3M" / "val" / "000007775.jpg", dst)
    return dst


def test_cc3m_round_trip(tmp_path: Path) -> None:
    _image(tmp_path / "im" / "a.jpg")
    _image(tmp_path / "im" / "b.jpg")
    odd = "line\u2028separator and next\x85line, café ."  # must not split the row
    write_cc3m(tmp_path, "train", [("a caption .", "im/a.jpg"), (odd, "im/b.jpg")])
    recs = read_cc3m(tmp_path, "train")
    assert [(r.id, r.caption, r.line) for r in recs] == [("im/a", "a caption .", 2), ("im/b", odd, 3)]
    for bad in ("a\tb", "a\nb", "a\rb"):
        with pytest.raises(ValueError, match="tabs or newlines"):
            write_cc3m(tmp_path, "x", [(bad, "im/a.jpg")])
    assert not (tmp_path / "cc3m_x.tsv").exists()


def test_vist_round_trip(tmp_path: Path) -> None:
    _image(tmp_path / "im" / "a.jpg")
    _image(tmp_path / "im" / "b.jpg")
    steps = [{"caption": f"step {k} .", "image_id": "i2" if k else "i1", "sequence_index": k} for k in (2, 0, 1)]
    stories = {"zz": steps, "aa": [{"caption": "only .", "image_id": "i1", "sequence_index": 0}]}
    write_vist(tmp_path, "train", stories, {"i1": "im/a.jpg", "i2": "im/b.jpg"})
    got = read_vist(tmp_path, "train")
    assert [s.story_id for s in got] == ["zz", "aa"]  # file order
    assert [(s.caption, s.image_id, s.sequence_index) for s in got[0].steps] == [
        ("step 0 .", "i1", 0), ("step 1 .", "i2", 1), ("step 2 .", "i2", 2),
    ]  # fmt: skip
    assert got[0].steps[0].image == (tmp_path / "im" / "a.jpg").resolve()


def test_mmdialog_round_trip(tmp_path: Path) -> None:
    _image(tmp_path / "train" / "-12.jpg")
    _image(tmp_path / "train" / "34.jpg")
    convs: list[dict[str, Any]] = [
        {"conversation_id": 5, "conversation": [{"turn": [{"__MEDIA__": "-12"}]}, {"turn": [{"__TEXT__": "hi"}]}]},
        {
            "conversation_id": "abc",
            "conversation": [
                {"turn": [{"__TEXT__": " a\u2028b "}, {"__MEDIA__": "34"}, {"__TEXT__": "c"}, {"__MEDIA__": "-12"}]}
            ],
            "negative_candidate_media_keys": ["1", "-2"],
        },
    ]
    write_mmdialog(tmp_path, "train", convs)
    c1, c2 = read_mmdialog(tmp_path, "train")
    assert (c1.conversation_id, c1.line, c2.conversation_id, c2.line) == ("5", 1, "abc", 2)
    assert c1.turns[0].text == "" and c1.turns[0].media_keys == ("-12",) and c1.turns[1].text == "hi"
    (turn,) = c2.turns
    assert [e.kind for e in turn.elements] == ["text", "image", "text", "image"]
    assert turn.elements[0].value == " a\u2028b " and turn.text == "a\u2028b c"
    assert turn.media_keys == ("34", "-12") and [Path(p).name for p in turn.images] == ["34.jpg", "-12.jpg"]


# --- bad input ---------------------------------------------------------------------------------------
# Each case corrupts a copy of the official sample to which one good record has been added, so that
# skip_bad can show the good records survive. survivors=None marks a file-level error (always raised).

Corrupt = Callable[[Path], Any]


@dataclass(frozen=True)
class Case:
    corrupt: Corrupt
    problem: str
    record: str  # "" for file-level errors without a record
    survivors: list[str] | None
    file: str = ""  # the file the message must name; default: the format's main file


def _replace_bytes(rel: str, old: bytes, new: bytes) -> Corrupt:
    def go(root: Path) -> None:
        data = (root / rel).read_bytes()
        assert old in data
        (root / rel).write_bytes(data.replace(old, new, 1))

    return go


def _write(rel: str, text: str) -> Corrupt:
    return lambda root: (root / rel).write_text(text)


def _truncate(rel: str) -> Corrupt:
    return lambda root: (root / rel).write_bytes((root / rel).read_bytes()[:300])


def _unlink(rel: str) -> Corrupt:
    return lambda root: (root / rel).unlink()


# CC3M: line 1 header, line 2 val/000007775, line 3 val/000009256 (CRLF endings, as released)
TSV = "cc3m_val.tsv"


def _tsv_line(n: int, new: str) -> Corrupt:
    def go(root: Path) -> None:
        lines = (root / TSV).read_bytes().decode().split("\r\n")
        lines[n - 1] = new
        (root / TSV).write_bytes("\r\n".join(lines).encode())

    return go


def _tsv_append(line: str) -> Corrupt:
    return lambda root: (root / TSV).write_bytes((root / TSV).read_bytes() + f"\r\n{line}".encode())


def _prepare_cc3m(root: Path) -> None:
    shutil.copytree(SAMPLES / "CC3M", root)


GOOD_CC3M = ["val/000007775"]
BOTH_CC3M = ["val/000007775", "val/000009256"]
CC3M_CASES: dict[str, Case] = {
    "missing file": Case(_unlink(TSV), "not found", "", None),
    "non-utf8": Case(_replace_bytes(TSV, b"shot of", b"\xff\xfe of"), "not valid UTF-8", "line 3", None),
    "bad header": Case(_tsv_line(1, "text\tpath"), "header must be", "line 1", None),
    "missing header": Case(lambda r: (r / TSV).write_text("a .\tval/000007775.jpg\n"), "header must be", "line 1", None),
    "empty file": Case(_write(TSV, ""), "header must be", "line 1", None),
    "one field": Case(_tsv_append("only one field"), "expected 2 tab-separated fields, got 1", "line 4", BOTH_CC3M),
    "three fields": Case(_tsv_line(3, "shot\tof a tree .\tval/000009256.jpg"), "got 3", "line 3", GOOD_CC3M),
    "empty caption": Case(_tsv_line(3, " \tval/000009256.jpg"), "empty caption", "line 3", GOOD_CC3M),
    "empty image path": Case(_tsv_line(3, "a tree .\t "), "image path is empty", "line 3", GOOD_CC3M),
    "outside folder": Case(_tsv_line(3, "a tree .\t../CC3M/val/000009256.jpg"), "outside the data folder", "line 3", GOOD_CC3M),
    "absolute path": Case(_tsv_line(3, "a tree .\t/etc/hosts"), "outside the data folder", "line 3", GOOD_CC3M),
    "missing image": Case(_unlink("val/000009256.jpg"), "is missing", "line 3", GOOD_CC3M),
    "corrupt image": Case(_truncate("val/000009256.jpg"), "corrupt", "line 3", GOOD_CC3M),
    "not an image": Case(_write("val/000009256.jpg", "hello"), "corrupt", "line 3", GOOD_CC3M),
    "duplicate id": Case(_tsv_append("again .\tval/000007775.jpg"), "duplicate id 'val/000007775'", "line 4", BOTH_CC3M),
    "duplicate id spelled differently": Case(_tsv_append("again .\tval/./000009256.jpg"), "already used on line 3", "line 4", BOTH_CC3M),
}  # fmt: skip

# VIST: story 40470 (the sample) then story 99999 (one step, its own image "extra")
CLEANED, MAPPING = "val_cleaned.json", "val_image_mapping.json"


def _prepare_vist(root: Path) -> None:
    shutil.copytree(SAMPLES / "VIST", root)
    shutil.copy(root / "val_images" / "000000005.jpg", root / "val_images" / "extra.jpg")
    stories = json.loads((root / CLEANED).read_text())
    stories["99999"] = [{"caption": "a good story .", "image_id": "extra", "sequence_index": 0}]
    mapping = json.loads((root / MAPPING).read_text())
    mapping["extra"] = "val_images/extra.jpg"
    write_vist(root, "val", stories, mapping)


def _json_edit(name: str, edit: Callable[[Any], Any], replace: bool = False) -> Corrupt:
    """Edit a JSON file in place (``replace``: the edit's result becomes the new content)."""

    def go(root: Path) -> None:
        data = json.loads((root / name).read_text())
        out = edit(data)
        (root / name).write_text(json.dumps(out if replace else data, indent=2))

    return go


def _story(edit: Callable[[list[Any]], Any]) -> Corrupt:
    return _json_edit(CLEANED, lambda d: edit(d["40470"]))


def _set(obj: Any, key: Any, value: Any) -> None:
    obj[key] = value


def _duplicate_story(root: Path) -> None:
    d = json.loads((root / CLEANED).read_text())
    body = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in [("40470", d["40470"]), *d.items()])
    (root / CLEANED).write_text("{" + body + "}")


def _conflicting_mapping(root: Path) -> None:
    text = (root / MAPPING).read_text().rstrip().removesuffix("}")
    (root / MAPPING).write_text(text + ', "694227508": "val_images/000000000.jpg"}')


GOOD_VIST = ["99999"]
VIST_CASES: dict[str, Case] = {
    "missing story file": Case(_unlink(CLEANED), "not found", "", None),
    "missing mapping file": Case(_unlink(MAPPING), "not found", "", None, MAPPING),
    "non-utf8": Case(_replace_bytes(CLEANED, b"dad", b"\xffad"), "not valid UTF-8", "line 14", None),
    "malformed json": Case(_write(CLEANED, '{\n  "40470": [}\n'), "malformed JSON: Expecting value", "line 2 column 13", None),
    "malformed mapping": Case(_write(MAPPING, "{"), "malformed JSON", "line 1 column 2", None, MAPPING),
    "top level list": Case(_json_edit(CLEANED, lambda d: [d], replace=True), "top level must be an object", "", None),
    "mapping top level list": Case(_json_edit(MAPPING, lambda d: list(d), replace=True), "top level must be an object", "", None, MAPPING),
    "story not a list": Case(_json_edit(CLEANED, lambda d: _set(d, "40470", "x")), "non-empty list of steps, got str", "story 40470", GOOD_VIST),
    "story empty": Case(_json_edit(CLEANED, lambda d: _set(d, "40470", [])), "got an empty list", "story 40470", GOOD_VIST),
    "step not an object": Case(_story(lambda s: _set(s, 1, "x")), "a step must be an object", "story 40470 step 1", GOOD_VIST),
    "missing key": Case(_story(lambda s: s[0].pop("image_id")), "missing field(s) image_id", "story 40470 step 0", GOOD_VIST),
    "caption not a string": Case(_story(lambda s: _set(s[1], "caption", 3)), "caption must be a string", "story 40470 step 1", GOOD_VIST),
    "image_id not a string": Case(_story(lambda s: _set(s[1], "image_id", 695160730)), "image_id must be a string, got int", "story 40470 step 1", GOOD_VIST),
    "index not an integer": Case(_story(lambda s: _set(s[3], "sequence_index", "3")), "sequence_index must be an integer", "story 40470 step 3", GOOD_VIST),
    "index a boolean": Case(_story(lambda s: _set(s[1], "sequence_index", True)), "sequence_index must be an integer, got bool", "story 40470 step 1", GOOD_VIST),
    "index out of range": Case(_story(lambda s: _set(s[1], "sequence_index", 7)), "sequence_index values must be 0..4", "story 40470", GOOD_VIST),
    "index repeated": Case(_story(lambda s: _set(s[1], "sequence_index", 0)), "got [0, 0, 2, 3, 4]", "story 40470", GOOD_VIST),
    "empty caption": Case(_story(lambda s: _set(s[2], "caption", "  ")), "empty caption", "story 40470 step 2", GOOD_VIST),
    "unmapped image": Case(_json_edit(MAPPING, lambda d: d.pop("694227508")), "not in val_image_mapping.json", "story 40470 step 2", GOOD_VIST),
    "mapping value not a string": Case(_json_edit(MAPPING, lambda d: _set(d, "694227508", 3)), "must be a string, got int", "story 40470 step 2", GOOD_VIST, MAPPING),
    "mapping outside folder": Case(_json_edit(MAPPING, lambda d: _set(d, "694227508", "../../x.jpg")), "outside the data folder", "story 40470 step 2", GOOD_VIST, MAPPING),
    "mapping id conflict": Case(_conflicting_mapping, "given twice with different paths", "story 40470 step 2 (image 694227508)", GOOD_VIST, MAPPING),
    "missing image": Case(_unlink("val_images/000000003.jpg"), "is missing", "story 40470 step 2", GOOD_VIST),
    "corrupt image": Case(_truncate("val_images/000000003.jpg"), "corrupt", "story 40470 step 2", GOOD_VIST),
    "duplicate story id": Case(_duplicate_story, "duplicate story id (given 2 times)", "story 40470", GOOD_VIST),
}  # fmt: skip

# MMDialog: line 1 conversation 0 (the sample), line 2 blank, line 3 conversation x1 (image 777.jpg)
CONVS = "test/test_conversations.txt"
GOOD_CONV = {
    "conversation_id": "x1",
    "conversation": [
        {"turn": [{"__TEXT__": "hello"}]},
        {"turn": [{"__MEDIA__": "777"}]},
        {"turn": [{"__TEXT__": "bye"}]},
    ],
}


def _prepare_mm(root: Path) -> None:
    shutil.copytree(SAMPLES / "MMDialog", root)
    shutil.copy(root / "test" / f"{MM_KEYS[0]}.jpg", root / "test" / "777.jpg")
    first = (root / CONVS).read_text().strip()
    (root / CONVS).write_text(first + "\n\n" + json.dumps(GOOD_CONV) + "\n")


def _mm_line1(edit: Callable[[dict[str, Any]], Any]) -> Corrupt:
    def go(root: Path) -> None:
        lines = (root / CONVS).read_text().split("\n")
        conv = json.loads(lines[0])
        edit(conv)
        lines[0] = json.dumps(conv)
        (root / CONVS).write_text("\n".join(lines))

    return go


def _turn4(*elements: Any) -> Corrupt:
    return _mm_line1(lambda c: _set(c["conversation"][4], "turn", list(elements)))


def _mm_raw_line1(text: str) -> Corrupt:
    def go(root: Path) -> None:
        lines = (root / CONVS).read_text().split("\n")
        (root / CONVS).write_text("\n".join([text, *lines[1:]]))

    return go


def _mm_append(root: Path, conv: dict[str, Any]) -> None:
    with (root / CONVS).open("a") as f:
        f.write(json.dumps(conv) + "\n")


def _symlink_outside(root: Path) -> None:
    outside = _image(root.parent / "elsewhere" / "x.jpg")
    os.symlink(outside, root / "test" / "55.jpg")
    _turn4({"__MEDIA__": "55"})(root)


GOOD_MM = ["x1"]
T4 = "line 1 (conversation 0) turn 4"
MM_CASES: dict[str, Case] = {
    "missing file": Case(_unlink(CONVS), "not found", "", None),
    "non-utf8": Case(_replace_bytes(CONVS, b'"bye"', b'"\xc3ye"'), "not valid UTF-8", "line 3", None),
    "malformed line": Case(_mm_raw_line1('{"conversation_id": 0, oops'), "malformed JSON", "line 1", GOOD_MM),
    "line not an object": Case(_mm_raw_line1("[1, 2]"), "must be a JSON object, got list", "line 1", GOOD_MM),
    "missing conversation": Case(_mm_line1(lambda c: c.pop("conversation")), "missing field(s) conversation", "line 1", GOOD_MM),
    "id wrong type": Case(_mm_line1(lambda c: _set(c, "conversation_id", 1.5)), "conversation_id must be an integer or a non-empty string", "line 1", GOOD_MM),
    "id boolean": Case(_mm_line1(lambda c: _set(c, "conversation_id", True)), "got True", "line 1", GOOD_MM),
    "conversation not a list": Case(_mm_line1(lambda c: _set(c, "conversation", "hello")), "non-empty list of turns, got str", "line 1 (conversation 0)", GOOD_MM),
    "conversation empty": Case(_mm_line1(lambda c: _set(c, "conversation", [])), "got an empty list", "line 1 (conversation 0)", GOOD_MM),
    "turn not an object": Case(_mm_line1(lambda c: _set(c["conversation"], 4, ["x"])), "a turn must be an object", T4, GOOD_MM),
    "text not a string": Case(_turn4({"__TEXT__": 5}), "__TEXT__ must be a string, got int", T4, GOOD_MM),
    "media not a string": Case(_turn4({"__MEDIA__": -12}), "__MEDIA__ must be a string, got int", T4, GOOD_MM),
    "unknown element": Case(_turn4({"__AUDIO__": "x"}), "an element must be", T4, GOOD_MM),
    "two kinds in one element": Case(_turn4({"__TEXT__": "a", "__MEDIA__": MM_KEYS[0]}), "an element must be", T4, GOOD_MM),
    "turn without elements": Case(_turn4(), "empty turn", T4, GOOD_MM),
    "only empty text": Case(_turn4({"__TEXT__": " "}, {"__TEXT__": ""}), "empty turn", T4, GOOD_MM),
    "media key with slash": Case(_turn4({"__MEDIA__": "../../etc/x"}), "not a plain file name", T4, GOOD_MM),
    "media key with backslash": Case(_turn4({"__MEDIA__": "a\\b"}), "not a plain file name", T4, GOOD_MM),
    "media key with dots": Case(_turn4({"__MEDIA__": "..x"}), "not a plain file name", T4, GOOD_MM),
    "empty media key": Case(_turn4({"__MEDIA__": ""}), "not a plain file name", T4, GOOD_MM),
    "media resolving outside": Case(_symlink_outside, "outside the data folder", T4, GOOD_MM),
    "missing image": Case(_unlink(f"test/{MM_KEYS[2]}.jpg"), "is missing", "line 1 (conversation 0) turn 2", GOOD_MM),
    "corrupt image": Case(_truncate(f"test/{MM_KEYS[2]}.jpg"), "corrupt", "line 1 (conversation 0) turn 2", GOOD_MM),
    "duplicate id": Case(lambda r: _mm_append(r, GOOD_CONV), "duplicate conversation_id (first on line 3)", "line 4 (conversation x1)", ["0", "x1"]),
    "duplicate id int vs str": Case(lambda r: _mm_append(r, {**GOOD_CONV, "conversation_id": "0"}), "first on line 1", "line 4 (conversation 0)", ["0", "x1"]),
}  # fmt: skip

FORMATS: dict[str, tuple[Callable[[Path], None], Callable[..., list[Any]], str, str, dict[str, Case]]] = {
    "cc3m": (_prepare_cc3m, read_cc3m, "val", TSV, CC3M_CASES),
    "vist": (_prepare_vist, read_vist, "val", CLEANED, VIST_CASES),
    "mmdialog": (_prepare_mm, read_mmdialog, "test", CONVS, MM_CASES),
}
ALL_CASES = [(fmt, name) for fmt, spec in FORMATS.items() for name in spec[4]]


def _ids(records: list[Any]) -> list[str]:
    return [getattr(r, "id", None) or getattr(r, "story_id", None) or r.conversation_id for r in records]


def _assert_one_line(err: DataError, case: Case, main_file: str) -> None:
    line = str(err)
    assert "\n" not in line and "\r" not in line, line
    assert case.problem in line, line
    assert case.record in line, line
    assert Path(case.file or main_file).name in line, "the message must name the file: " + line


def test_prepared_copies_are_good(tmp_path: Path) -> None:
    """The baseline the bad cases start from reads cleanly, with the extra good record."""
    assert _ids(read_cc3m(_prep(tmp_path, "cc3m"), "val")) == BOTH_CC3M
    assert _ids(read_vist(_prep(tmp_path, "vist"), "val")) == ["40470", "99999"]
    assert _ids(read_mmdialog(_prep(tmp_path, "mmdialog"), "test")) == ["0", "x1"]
    assert read_mmdialog(tmp_path / "mmdialog", "test")[1].line == 3  # blank line 2 skipped, still counted


def _prep(tmp_path: Path, fmt: str) -> Path:
    root = tmp_path / fmt
    FORMATS[fmt][0](root)
    return root


@pytest.mark.parametrize(("fmt", "name"), ALL_CASES, ids=[f"{f}-{n}" for f, n in ALL_CASES])
def test_bad_input(fmt: str, name: str, tmp_path: Path) -> None:
    _, reader, split, main_file, cases = FORMATS[fmt]
    case = cases[name]
    root = _prep(tmp_path, fmt)
    case.corrupt(root)
    with pytest.raises(DataError) as info:
        reader(root, split)
    _assert_one_line(info.value, case, main_file)

    problems = Problems(skip_bad=True)
    if case.survivors is None:  # file-level: nothing can be read, so it raises even with skip_bad
        with pytest.raises(DataError):
            reader(root, split, problems=problems)
        return
    records = reader(root, split, problems=problems)
    assert _ids(records) == case.survivors
    assert len(problems) == 1
    _assert_one_line(problems.items[0], case, main_file)
    assert problems.to_list()[0]["record"] == info.value.record


def test_check_images_false_skips_only_the_image_checks(tmp_path: Path) -> None:
    root = _prep(tmp_path, "cc3m")
    _unlink("val/000009256.jpg")(root)
    assert _ids(read_cc3m(root, "val", check_images=False)) == BOTH_CC3M
    _tsv_line(3, "a tree .\t../x.jpg")(root)  # path safety is still checked
    with pytest.raises(DataError, match="outside"):
        read_cc3m(root, "val", check_images=False)


# --- VIST story-in-sequence converter ----------------------------------------------------------------


def _sis_annotation(story_id: Any, photo: Any, text: Any, order: Any) -> list[dict[str, Any]]:
    return [{
        "story_id": story_id, "photo_flickr_id": photo, "text": text, "original_text": str(text).capitalize(),
        "worker_arranged_photo_order": order, "storylet_id": f"{story_id}{order}", "album_id": "72157600000",
    }]  # fmt: skip


def _sis_source(tmp_path: Path) -> tuple[Path, Path, list[list[dict[str, Any]]]]:
    """SIS json from the VIST sample (given out of order, one photo as a real PNG) + a story with a
    missing photo; returns (json path, images folder, annotations)."""
    stories = json.loads((SAMPLES / "VIST" / CLEANED).read_text())
    mapping = json.loads((SAMPLES / "VIST" / MAPPING).read_text())
    images = tmp_path / "images"
    images.mkdir()
    annotations = []
    for st in reversed(stories["40470"]):
        src = SAMPLES / "VIST" / mapping[st["image_id"]]
        if st["image_id"] == "694227508":
            with Image.open(src) as im:
                im.save(images / "694227508.png")
        else:
            shutil.copy(src, images / f"{st['image_id']}.jpg")
        annotations.append(_sis_annotation("40470", st["image_id"], st["caption"], st["sequence_index"]))
    # a five-step story sharing a photo with 40470, and with one photo that is missing
    for k, photo in enumerate(["693397887", "123", "695160730", "694227508", "693397865"]):
        annotations.append(_sis_annotation("99", photo, f"step {k} .", k))
    return tmp_path / "val.story-in-sequence.json", images, annotations


def _good_story(story_id: str) -> list[list[dict[str, Any]]]:
    """A five-step story over the sample's photos (all present)."""
    return [_sis_annotation(story_id, photo, f"a good one {k} .", k) for k, photo in enumerate(VIST_IMAGE_IDS)]


def _write_sis(path: Path, annotations: list[Any]) -> None:
    path.write_text(
        json.dumps({"info": {}, "images": [], "albums": [], "type": "story_in_sequence", "annotations": annotations})
    )


def test_convert_vist_sis(tmp_path: Path) -> None:
    src, images, annotations = _sis_source(tmp_path)
    _write_sis(src, annotations)
    dst = tmp_path / "out"
    report = convert_vist_sis(src, images, dst)
    (story,) = read_vist(dst, "val")
    assert story.story_id == "40470"
    assert [s.caption for s in story.steps] == VIST_CAPTIONS
    assert [s.image_id for s in story.steps] == VIST_IMAGE_IDS
    assert story.steps[2].image == (dst / "val_images" / "694227508.png").resolve()  # extension kept
    assert os.path.samefile(story.steps[0].image, images / "693397887.jpg")  # hard link on one file system
    assert (report.split, report.stories_in, report.stories_written, report.images_copied) == ("val", 2, 1, 5)
    assert report.missing == [{"story_id": "99", "missing": ["123"]}] and report.skipped == []
    assert json.loads((dst / "val_conversion_report.json").read_text()) == report.to_dict()
    assert json.loads((dst / MAPPING).read_text())["693397865"] == "val_images/693397865.jpg"

    # converting again from the output's own images must not destroy them
    again = convert_vist_sis(src, dst / "val_images", dst, "val")
    assert again.stories_written == 1 and [s.caption for s in read_vist(dst, "val")[0].steps] == VIST_CAPTIONS
    assert sorted(p.name for p in (dst / "val_images").iterdir()) == sorted(
        f"{i}.png" if i == "694227508" else f"{i}.jpg" for i in VIST_IMAGE_IDS
    )  # no temp files left behind


def _ann_edit(i: int, key: str, value: Any) -> Callable[[list[Any]], None]:
    return lambda anns: _set(anns[i][0], key, value)


SIS_CASES: dict[str, tuple[Callable[[list[Any]], Any], str, str]] = {
    "not a list": (lambda a: _set(a, 2, a[2][0]), "one-element list", "annotation 2 (story 40470)"),
    "two elements": (lambda a: a[2].append(a[2][0]), "one-element list", "annotation 2 (story 40470)"),
    "missing field": (lambda a: a[2][0].pop("text"), "missing field(s) text", "annotation 2 (story 40470)"),
    "story id not a string": (_ann_edit(2, "story_id", 40470), "story_id must be a string, got int", "annotation 2"),
    "photo id not a string": (_ann_edit(2, "photo_flickr_id", 694227508), "photo_flickr_id must be a string", "annotation 2 (story 40470)"),
    "order not an integer": (_ann_edit(2, "worker_arranged_photo_order", "2"), "must be an integer, got '2'", "annotation 2 (story 40470)"),
    "order a boolean": (_ann_edit(2, "worker_arranged_photo_order", False), "got False", "annotation 2 (story 40470)"),
    "photo id a path": (_ann_edit(2, "photo_flickr_id", "../../etc/passwd"), "cannot be a file name", "annotation 2 (story 40470)"),
    "empty text": (_ann_edit(2, "text", " "), "empty text", "annotation 2 (story 40470)"),
    "duplicate order": (_ann_edit(2, "worker_arranged_photo_order", 4), "duplicate worker_arranged_photo_order 4", "annotation 2 (story 40470)"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SIS_CASES))
def test_convert_vist_sis_bad_annotation(name: str, tmp_path: Path) -> None:
    edit, problem, record = SIS_CASES[name]
    src, images, annotations = _sis_source(tmp_path)
    annotations += _good_story("7")
    edit(annotations)
    _write_sis(src, annotations)
    with pytest.raises(DataError) as info:
        convert_vist_sis(src, images, tmp_path / "out")
    line = str(info.value)
    assert "\n" not in line and problem in line and record in line and src.name in line, line
    assert not (tmp_path / "out" / CLEANED).exists()

    problems = Problems(skip_bad=True)
    report = convert_vist_sis(src, images, tmp_path / "out", problems=problems)
    assert [s.story_id for s in read_vist(tmp_path / "out", "val")] == ["7"]  # 40470 left out whole
    assert len(problems) == 1 and report.skipped == problems.to_list()
    saved = json.loads((tmp_path / "out" / "val_conversion_report.json").read_text())
    assert saved["skipped"][0]["record"] == info.value.record and saved["stories_written"] == 1


def test_convert_vist_sis_file_errors(tmp_path: Path) -> None:
    src, images, _ = _sis_source(tmp_path)
    src.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="'annotations' list") as info:
        convert_vist_sis(src, images, tmp_path / "out", problems=Problems(skip_bad=True))
    assert src.name in str(info.value)
    with pytest.raises(DataError, match="images folder not found"):
        convert_vist_sis(src, tmp_path / "nope", tmp_path / "out")


@pytest.mark.parametrize("steps", [3, 4, 6])
def test_convert_vist_sis_refuses_a_story_of_another_length(steps: int, tmp_path: Path) -> None:
    """A VIST story has five steps: a story of 3, 4 or 6 annotations is a bad record (raised, or listed with
    skip_bad), never written for the task to refuse later."""
    src, images, annotations = _sis_source(tmp_path)
    story = _good_story("7")
    story = story[:steps] if steps < 5 else [*story, _sis_annotation("7", VIST_IMAGE_IDS[0], "one more .", 5)]
    _write_sis(src, annotations + story)
    with pytest.raises(DataError, match=f"story 7: {steps} steps, but a VIST story has 5") as info:
        convert_vist_sis(src, images, tmp_path / "out")
    assert src.name in str(info.value) and not (tmp_path / "out" / CLEANED).exists()
    problems = Problems(skip_bad=True)
    report = convert_vist_sis(src, images, tmp_path / "out", problems=problems)
    assert [s.story_id for s in read_vist(tmp_path / "out", "val")] == ["40470"]
    assert [p["record"] for p in report.skipped] == ["story 7"]


def test_convert_vist_sis_writing_no_story_is_an_error(tmp_path: Path) -> None:
    """Every photo missing (the wrong images folder): an error naming the count and a missing photo, nothing
    written."""
    src, _, annotations = _sis_source(tmp_path)
    _write_sis(src, annotations)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no story to write: 0 of 2 \(every story misses an image \(e.g. story "
                       r"40470: .*not in .*empty\)") as info:  # fmt: skip
        convert_vist_sis(src, tmp_path / "empty", tmp_path / "out")
    assert "IMAGES_DIR" in str(info.value) and not (tmp_path / "out").exists()
