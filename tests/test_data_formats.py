"""Readers and writers of the real formats: the official samples, round trips, and every kind of
bad input giving one clear line that names the file and the record (or skipped and listed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mg5bench.data.cc3m import read_cc3m, write_cc3m
from mg5bench.data.io import Problems
from mg5bench.data.mmdialog import read_mmdialog, write_mmdialog
from mg5bench.data.vist import read_vist, write_vist
from mg5bench.errors import DataError


def test_official_cc3m(samples_dir: Path) -> None:
    recs = read_cc3m(samples_dir / "CC3M", "val")
    assert [r.id for r in recs] == ["val/000007775", "val/000009256"]
    assert recs[1].caption == "shot of the full tree ."
    assert recs[0].image == (samples_dir / "CC3M" / "val" / "000007775.jpg").resolve()
    # the caption matches the .txt file shipped beside each image
    for r in recs:
        assert r.image.with_suffix(".txt").read_text().strip() == r.caption


def test_official_vist(samples_dir: Path) -> None:
    (story,) = read_vist(samples_dir / "VIST", "val")
    assert story.story_id == "40470"
    assert [s.sequence_index for s in story.steps] == [0, 1, 2, 3, 4]
    assert story.steps[0].caption == "my sister arrived early to help me with the family bar bq ."
    assert story.steps[2].image.name == "000000003.jpg"


def test_official_mmdialog(samples_dir: Path) -> None:
    (conv,) = read_mmdialog(samples_dir / "MMDialog", "test")
    assert conv.conversation_id == "0" and len(conv.turns) == 9
    assert conv.turns[0].media_keys == ("2682085160072908899",) and Path(conv.turns[0].images[0]).is_file()
    assert conv.turns[1].media_keys == ("-5632896413199993329",)
    assert all(not t.images for t in conv.turns[4:])
    assert conv.turns[4].text == "Absolutely stunning!! :growing_heart:"


def test_round_trips(tmp_path: Path, samples_dir: Path) -> None:
    img = samples_dir / "CC3M" / "val" / "000007775.jpg"
    (tmp_path / "im").mkdir()
    shutil.copy(img, tmp_path / "im" / "a.jpg")
    write_cc3m(tmp_path, "train", [("a caption .", "im/a.jpg")])
    assert [(r.id, r.caption) for r in read_cc3m(tmp_path, "train")] == [("im/a", "a caption .")]
    with pytest.raises(ValueError, match="tabs or newlines"):
        write_cc3m(tmp_path, "x", [("a\tb", "im/a.jpg")])
    steps = [{"caption": f"step {k} .", "image_id": "i1", "sequence_index": k} for k in range(2)]
    write_vist(tmp_path, "train", {"s1": steps}, {"i1": "im/a.jpg"})
    (story,) = read_vist(tmp_path, "train")
    assert [s.caption for s in story.steps] == ["step 0 .", "step 1 ."]
    (tmp_path / "train").mkdir()
    shutil.copy(img, tmp_path / "train" / "-12.jpg")
    conv = {
        "conversation_id": 5,
        "conversation": [{"turn": [{"__MEDIA__": "-12"}]}, {"turn": [{"__TEXT__": "hi"}]}],
    }
    write_mmdialog(tmp_path, "train", [conv])
    (c,) = read_mmdialog(tmp_path, "train")
    assert c.conversation_id == "5" and c.turns[0].text == "" and c.turns[0].media_keys == ("-12",)


# --- bad input: each case corrupts a fresh copy of the official sample -------------------------

Corrupt = Callable[[Path], None]


def _cc3m(edit: Callable[[str], str]) -> Corrupt:
    def go(root: Path) -> None:
        tsv = root / "cc3m_val.tsv"
        tsv.write_text(edit(tsv.read_text()))

    return go


def _json(name: str, edit: Callable[[dict], object]) -> Corrupt:
    def go(root: Path) -> None:
        p = root / name
        p.write_text(json.dumps(edit(json.loads(p.read_text()))))

    return go


def _story(fn: Callable[[list], None]) -> Callable[[dict], dict]:
    def edit(d: dict) -> dict:
        fn(d["40470"])
        return d

    return edit


def _mm(edit: Callable[[dict], object]) -> Corrupt:
    def go(root: Path) -> None:
        p = root / "test" / "test_conversations.txt"
        conv = json.loads(p.read_text().splitlines()[0])
        edit(conv)  # edits in place
        p.write_text(json.dumps(conv) + "\n")

    return go


def _setitem(obj: dict, key: str, value: object) -> dict:
    obj[key] = value
    return obj


def _corrupt_image(rel: str) -> Corrupt:
    return lambda root: (root / rel).write_bytes((root / rel).read_bytes()[:200])


def _bytes(rel: str, data: bytes) -> Corrupt:
    return lambda root: (root / rel).write_bytes(data)


CC3M_CASES: dict[str, tuple[Corrupt, str, str]] = {
    "missing file": (lambda r: (r / "cc3m_val.tsv").unlink(), "not found", ""),
    "bad header": (_cc3m(lambda t: t.replace("caption\timage_path", "text\tpath")), "header", "line 1"),
    "malformed line": (
        _cc3m(lambda t: t.rstrip("\n") + "\nonly one field\n"),
        "2 tab-separated fields",
        "line 4",
    ),
    "empty caption": (_cc3m(lambda t: t.replace("shot of the full tree .", " ")), "empty caption", "line 3"),
    "missing image": (lambda r: (r / "val" / "000009256.jpg").unlink(), "missing", "line 3"),
    "corrupt image": (_corrupt_image("val/000009256.jpg"), "corrupt", "line 3"),
    "duplicate id": (
        _cc3m(lambda t: t.rstrip("\n") + "\nagain .\tval/000007775.jpg\n"),
        "duplicate id",
        "line 4",
    ),
    "outside folder": (_cc3m(lambda t: t.replace("val/000009256.jpg", "../x.jpg")), "outside", "line 3"),
    "absolute path": (_cc3m(lambda t: t.replace("val/000009256.jpg", "/etc/hosts")), "outside", "line 3"),
    "non-utf8": (
        _bytes("cc3m_val.tsv", b"caption\timage_path\n\xff\xfe bad\tval/a.jpg\n"),
        "UTF-8",
        "line 2",
    ),
}

VIST_CASES: dict[str, tuple[Corrupt, str, str]] = {
    "missing file": (lambda r: (r / "val_image_mapping.json").unlink(), "not found", ""),
    "malformed json": (_bytes("val_cleaned.json", b'{"40470": [}'), "malformed JSON", "line 1 column"),
    "top level list": (_json("val_cleaned.json", lambda d: [d]), "top level", ""),
    "wrong type caption": (_json("val_cleaned.json", _story(lambda s: _setitem(s[1], "caption", 3))), "caption must be a string", "story 40470 step 1"),
    "wrong type image_id": (_json("val_cleaned.json", _story(lambda s: _setitem(s[1], "image_id", 695160730))), "image_id must be a string", "story 40470 step 1"),
    "wrong type index": (_json("val_cleaned.json", _story(lambda s: _setitem(s[1], "sequence_index", "1"))), "sequence_index must be an integer", "story 40470"),
    "bad indices": (_json("val_cleaned.json", _story(lambda s: _setitem(s[1], "sequence_index", 7))), "sequence_index values", "story 40470"),
    "empty caption": (_json("val_cleaned.json", _story(lambda s: _setitem(s[2], "caption", "  "))), "empty caption", "story 40470 step 2"),
    "missing key": (_json("val_cleaned.json", _story(lambda s: s[0].pop("image_id"))), "missing field", "story 40470 step 0"),
    "unmapped image": (_json("val_image_mapping.json", lambda d: {k: v for k, v in d.items() if k != "694227508"}), "not in val_image_mapping.json", "story 40470 step 2"),
    "outside folder": (_json("val_image_mapping.json", lambda d: _setitem(d, "694227508", "../../x.jpg")), "outside", "story 40470 step 2"),
    "missing image": (lambda r: (r / "val_images" / "000000003.jpg").unlink(), "missing", "story 40470 step 2"),
    "corrupt image": (_corrupt_image("val_images/000000003.jpg"), "corrupt", "story 40470 step 2"),
    "duplicate story": (_bytes("val_cleaned.json", b'{"1": [], "1": []}'), "duplicate", "story id 1"),
    "non-utf8": (_bytes("val_cleaned.json", b'{"40470": "\xff"}'), "UTF-8", "line 1"),
}  # fmt: skip

MM_CASES: dict[str, tuple[Corrupt, str, str]] = {
    "missing file": (lambda r: (r / "test" / "test_conversations.txt").unlink(), "not found", ""),
    "malformed line": (lambda r: (r / "test" / "test_conversations.txt").open("a").write("{oops\n"), "malformed JSON", "line 2"),
    "wrong type conversation": (_mm(lambda c: _setitem(c, "conversation", "hello")), "non-empty list", "conversation 0"),
    "wrong type text": (_mm(lambda c: _setitem(c["conversation"][4], "turn", [{"__TEXT__": 5}])), "must be a string", "conversation 0) turn 4"),
    "bad element": (_mm(lambda c: _setitem(c["conversation"][4], "turn", [{"__AUDIO__": "x"}])), "an element must be", "turn 4"),
    "empty turn": (_mm(lambda c: _setitem(c["conversation"][4], "turn", [{"__TEXT__": " "}])), "empty turn", "turn 4"),
    "key outside folder": (_mm(lambda c: _setitem(c["conversation"][4], "turn", [{"__MEDIA__": "../../etc/x"}])), "not a plain file name", "turn 4"),
    "missing image": (lambda r: (r / "test" / "3433276376275926389.jpg").unlink(), "missing", "turn 2"),
    "corrupt image": (_corrupt_image("test/3433276376275926389.jpg"), "corrupt", "turn 2"),
    "duplicate id": (lambda r: (r / "test" / "test_conversations.txt").write_text(((r / "test" / "test_conversations.txt").read_text().strip() + "\n") * 2), "duplicate conversation_id", "line 2"),
    "non-utf8": (_bytes("test/test_conversations.txt", b'{"conversation_id": 1, "conversation": [{"turn": [{"__TEXT__": "\xc3"}]}]}\n'), "UTF-8", "line 1"),
}  # fmt: skip


def _check_bad(
    src: Path, tmp_path: Path, corrupt: Corrupt, reader: Callable, split: str, problem: str, record: str
) -> None:
    root = tmp_path / src.name
    shutil.copytree(src, root)
    corrupt(root)
    with pytest.raises(DataError) as info:
        reader(root, split)
    line = str(info.value)
    assert "\n" not in line
    assert problem in line and record in line, line
    assert info.value.path.endswith((".tsv", ".json", ".txt")), "the message names the file"


@pytest.mark.parametrize("case", list(CC3M_CASES))
def test_bad_cc3m(case: str, samples_dir: Path, tmp_path: Path) -> None:
    corrupt, problem, record = CC3M_CASES[case]
    _check_bad(samples_dir / "CC3M", tmp_path, corrupt, read_cc3m, "val", problem, record)


@pytest.mark.parametrize("case", list(VIST_CASES))
def test_bad_vist(case: str, samples_dir: Path, tmp_path: Path) -> None:
    corrupt, problem, record = VIST_CASES[case]
    _check_bad(samples_dir / "VIST", tmp_path, corrupt, read_vist, "val", problem, record)


@pytest.mark.parametrize("case", list(MM_CASES))
def test_bad_mmdialog(case: str, samples_dir: Path, tmp_path: Path) -> None:
    corrupt, problem, record = MM_CASES[case]
    _check_bad(samples_dir / "MMDialog", tmp_path, corrupt, read_mmdialog, "test", problem, record)


def test_skip_bad_keeps_good_records_and_lists_bad_ones(samples_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "CC3M"
    shutil.copytree(samples_dir / "CC3M", root)
    _corrupt_image("val/000009256.jpg")(root)
    problems = Problems(skip_bad=True)
    recs = read_cc3m(root, "val", problems=problems)
    assert [r.id for r in recs] == ["val/000007775"]
    assert len(problems) == 1 and problems.to_list()[0]["record"] == "line 3"
    # a conversation with one bad turn is skipped whole, the file's other lines survive
    mm = tmp_path / "MMDialog"
    shutil.copytree(samples_dir / "MMDialog", mm)
    p = mm / "test" / "test_conversations.txt"
    good = json.loads(p.read_text().splitlines()[0])
    bad = {**good, "conversation_id": 1, "conversation": [{"turn": []}]}
    p.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    problems = Problems(skip_bad=True)
    convs = read_mmdialog(mm, "test", problems=problems)
    assert [c.conversation_id for c in convs] == ["0"] and "conversation 1" in problems.items[0].record
