"""Task definitions and sample builders, on the synthetic world and on the official samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mg5bench.core.errors import ConfigError
from mg5bench.tasks import build_samples, definitions_dir, get_task, parse_definition, task_registry


def test_definitions_parse_into_frozen_configs() -> None:
    assert task_registry().names() == ["cc3m", "mmdialog", "vist"]
    vist = get_task("vist")
    assert vist.option("round_range") == "all" and vist.option("context") == "text+image"
    mm = get_task("mmdialog")
    assert (mm.option("history_assistant"), mm.option("history_human"), mm.option("first_media_only")) == (
        3,
        2,
        True,
    )
    with pytest.raises(AttributeError):
        vist.version = 2  # type: ignore[misc]
    for name in ("cc3m", "vist", "mmdialog"):
        assert (definitions_dir() / name / "README.md").is_file()


def test_task_args_are_validated() -> None:
    assert get_task("vist", {"round_range": "last"}).option("round_range") == "last"
    assert get_task("mmdialog", {"first_media_only": "false"}).option("first_media_only") is False
    with pytest.raises(ConfigError, match="round_range must be one of"):
        get_task("vist", {"round_range": "first"})
    with pytest.raises(ConfigError, match="unknown vist protocol option 'contxt'"):
        get_task("vist", {"contxt": "text"})
    with pytest.raises(ConfigError, match="did you mean 'vist'"):
        get_task("vits")


def test_bad_definition_is_rejected(tmp_path: Path) -> None:
    definition = tmp_path / "x.yaml"
    definition.write_text("name: x\nversion: 1\ndescription: d\nformat: vist\ndefault_split: val\nmetrics: []\n"
                    "protocol: {round_range: sometimes}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"x\.yaml: round_range must be one of"):
        parse_definition(definition)
    definition.write_text("name: x\nversion: 1\n")
    with pytest.raises(ConfigError, match="missing field"):
        parse_definition(definition)


def test_vist_samples_all_steps_text_and_images(small_world: Path) -> None:
    sset = build_samples(get_task("vist"), str(small_world), "val", progress=False)
    stories = json.loads((small_world / "VIST" / "val_cleaned.json").read_text())
    assert len(sset.samples) == 5 * len(stories)
    story_id, steps = next(iter(stories.items()))
    s3 = next(s for s in sset.samples if s.id == f"{story_id}_3")
    kinds = [seg.kind for seg in s3.context]
    assert kinds == ["text", "image"] * 3 + ["text"]
    assert [seg.value for seg in s3.context if seg.is_text] == [st["caption"] for st in steps[:4]]
    assert s3.target_images[0].endswith(f"{steps[3]['image_id']}.png") and Path(s3.target_images[0]).is_absolute()
    assert s3.group == story_id and s3.meta["step"] == 3
    assert s3.meta["target_scenes"][0]["objects"]  # the scene record travels with the sample
    s0 = next(s for s in sset.samples if s.id == f"{story_id}_0")
    assert [seg.value for seg in s0.context] == [steps[0]["caption"]]


@pytest.mark.parametrize(("context", "kinds"), [("text", ["text"] * 5), ("image", ["image"] * 4 + ["text"])])
def test_vist_last_step_gill_protocol(small_world: Path, context: str, kinds: list[str]) -> None:
    task = get_task("vist", {"round_range": "last", "context": context})
    sset = build_samples(task, str(small_world), "val", progress=False)
    assert all(s.id.endswith("_4") for s in sset.samples)
    assert [seg.kind for seg in sset.samples[0].context] == kinds


def test_mmdialog_windows_and_roles(small_world: Path) -> None:
    sset = build_samples(get_task("mmdialog"), str(small_world), "val", progress=False)
    lines = (small_world / "MMDialog" / "val" / "val_conversations.txt").read_text().splitlines()
    conv = json.loads(lines[0])
    turns = conv["conversation"]
    n = len(turns)
    ids = [s.id for s in sset.samples if s.group == str(conv["conversation_id"])]
    assert ids == [f"{conv['conversation_id']}_{i}" for i in range(1, n)]
    by_id = {s.id: s for s in sset.samples}
    for i in range(1, n):
        s = by_id[f"{conv['conversation_id']}_{i}"]
        window = 3 if i % 2 else 2
        expected_texts = [t["turn"][0]["__TEXT__"] for t in turns[max(0, i - window) : i]]
        assert [seg.value for seg in s.context if seg.is_text] == expected_texts
        assert s.meta["speaker"] == ("assistant" if i % 2 else "human")
        assert all(seg.role == s.meta["speaker"] for seg in s.target)
        assert s.target[0].value == turns[i]["turn"][0]["__TEXT__"]
        has_media = any("__MEDIA__" in el for el in turns[i]["turn"])
        assert len(s.target_images) == int(has_media)


def test_official_samples_build(samples_dir: Path) -> None:
    cc = build_samples(get_task("cc3m"), str(samples_dir / "CC3M"), "val", progress=False)
    assert [s.id for s in cc.samples] == ["val/000007775", "val/000009256"]
    assert cc.samples[0].context[0].value == "burning candle on the background of the aquarium with small fish ."
    vist = build_samples(get_task("vist"), str(samples_dir / "VIST"), "val", progress=False)
    assert [s.id for s in vist.samples] == [f"40470_{k}" for k in range(5)]
    assert vist.samples[4].context[-1].value == "we ended the day shooting off some fireworks ."
    assert vist.samples[4].target_images[0].endswith("val_images/000000000.jpg")
    mm = build_samples(get_task("mmdialog"), str(samples_dir / "MMDialog"), "test", progress=False)
    assert [s.id for s in mm.samples] == [f"0_{i}" for i in range(1, 9)]
    s1 = mm.samples[0]
    assert [seg.kind for seg in s1.context] == ["text", "image"] and s1.context[1].value.endswith(
        "2682085160072908899.jpg"
    )
    assert [seg.kind for seg in s1.target] == ["text", "image"]
    assert not vist.source.synthetic and "target_scenes" not in vist.samples[0].meta


def test_sample_ids_and_fingerprint_are_stable(small_world: Path) -> None:
    a = build_samples(get_task("vist"), str(small_world), "test", progress=False)
    b = build_samples(get_task("vist"), str(small_world), "test", progress=False)
    assert [s.to_json() for s in a.samples] == [s.to_json() for s in b.samples]
    assert a.fingerprint == b.fingerprint
    c = build_samples(get_task("vist"), str(small_world), "val", progress=False)
    assert c.fingerprint != a.fingerprint
