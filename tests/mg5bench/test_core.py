"""Types, specs and the registry."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import canonical_json, content_hash
from mg5bench.core.registry import Registry
from mg5bench.core.sample import Sample, Segment
from mg5bench.runs.spec import GenerationConfig, RunSpec


def test_segment_json_round_trip_and_errors() -> None:
    for seg in (Segment.text("hi"), Segment.image("/a/b.png"), Segment.text("x", role="human")):
        assert Segment.from_json(json.loads(json.dumps(seg.to_json()))) == seg
    assert Segment.text("hi").to_json() == {"text": "hi"}
    with pytest.raises(ConfigError, match="exactly one"):
        Segment.from_json({"text": "a", "image": "b"})
    with pytest.raises(ConfigError, match="exactly one"):
        Segment.from_json({"caption": "a"})
    with pytest.raises(ConfigError, match="must be a string"):
        Segment.from_json({"text": 3})


def test_sample_round_trip() -> None:
    s = Sample("s_1", (Segment.text("a"), Segment.image("/x.png")), (Segment.image("/y.png"),), "s", {"step": 1})
    assert Sample.from_json(json.loads(json.dumps(s.to_json()))) == s
    assert s.target_images == ["/y.png"]


def test_runspec_round_trip_hash_and_name() -> None:
    spec = RunSpec(
        task="vist",
        model="minigpt5",
        split="val",
        limit=10,
        seed=3,
        generation=GenerationConfig(guidance_scale=7.5, num_inference_steps=25),
        model_args={"checkpoint": "stage2-vist"},
    )
    again = RunSpec.from_json(spec.to_json())
    assert again == spec and again.hash == spec.hash
    assert spec.name.startswith("val-seed3-gs7.5-steps25-n10-") and spec.name.endswith(spec.hash)
    # every setting moves the hash
    variants = [
        RunSpec(**{**spec.__dict__, "seed": 4}),
        RunSpec(**{**spec.__dict__, "generation": GenerationConfig(guidance_scale=3.0, num_inference_steps=25)}),
        RunSpec(**{**spec.__dict__, "model_args": {"checkpoint": "other"}}),
        RunSpec(**{**spec.__dict__, "task_args": {"round_range": "last"}}),
        RunSpec(**{**spec.__dict__, "data": "synth:level=2"}),
    ]
    assert len({v.hash for v in variants} | {spec.hash}) == len(variants) + 1
    # argument order does not matter
    a = RunSpec("vist", "m", model_args={"a": 1, "b": 2})
    b = RunSpec("vist", "m", model_args={"b": 2, "a": 1})
    assert a.hash == b.hash


def test_runspec_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        RunSpec.from_dict({"task": "vist", "model": "m", "sead": 1})
    with pytest.raises(ConfigError, match="limit"):
        RunSpec("vist", "m", limit=0)
    with pytest.raises(ConfigError, match="guidance_scale"):
        GenerationConfig(guidance_scale=-1)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        GenerationConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="do_sample must be true or false"):
        GenerationConfig(do_sample="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"frozen|cannot assign"):
        try:
            RunSpec("vist", "m").seed = 2  # type: ignore[misc]
        except AttributeError as e:  # dataclasses.FrozenInstanceError
            raise ConfigError(f"frozen: {e}") from e


def test_generation_config_merge() -> None:
    merged = GenerationConfig(guidance_scale=2.0).merged(GenerationConfig(guidance_scale=7.5, num_inference_steps=50))
    assert merged.guidance_scale == 2.0 and merged.num_inference_steps == 50
    assert merged.set_fields() == ["guidance_scale", "num_inference_steps"]
    assert merged.only(["num_inference_steps"]) == GenerationConfig(num_inference_steps=50)


def test_every_adapter_resolves_to_numbers_and_refuses_what_it_does_not_use() -> None:
    """resolve() on each registered model: no None left for a setting it uses, nothing set it does not use, and
    each unused setting refused with a one-line error naming the used ones (their command-line spelling)."""
    import dataclasses

    from mg5bench.adapters.common import shipped_checkpoints
    from mg5bench.catalog import MODELS
    from mg5bench.runs.spec import generation_flag
    from mg5bench.tasks import get_task

    everything = GenerationConfig(guidance_scale=2.0, num_inference_steps=3, max_new_tokens=5, temperature=0.5,
                                  top_p=0.5, repetition_penalty=1.5, do_sample=True)  # fmt: skip
    checked = 0
    for name in MODELS.names():
        cls = MODELS.get(name)
        for task in cls.tasks:
            default = getattr(cls, "default_checkpoints", {}).get(task)
            if default and not (shipped_checkpoints() / default).is_dir():
                continue  # a checkpoint that is not shipped in this install
            adapter = cls(get_task(task), {})
            used = adapter.settings_used(GenerationConfig())
            resolved = adapter.resolve(GenerationConfig())
            assert all(getattr(resolved, f) is not None for f in used), (name, task, resolved)
            assert set(resolved.set_fields()) == set(used), (name, task)
            assert adapter.resolve(everything.only(used)) == everything.only(used)  # given settings win
            for field in dataclasses.fields(GenerationConfig):
                if field.name in used:
                    continue
                one = dataclasses.replace(GenerationConfig(), **{field.name: getattr(everything, field.name)})
                with pytest.raises(ConfigError) as err:
                    adapter.resolve(one)
                msg = str(err.value)
                assert "\n" not in msg and generation_flag(field.name) in msg
                assert all(generation_flag(u) in msg for u in used)
            checked += 1
    assert checked >= 7


def test_canonical_hash_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})


def test_registry_lazy_and_did_you_mean() -> None:
    reg: Registry[object] = Registry("metric")
    reg.register("clip_i", "json:dumps", "cosine of image features")
    reg.register("clip_t", lambda: 42, "cosine of caption and image")
    reg.register("broken", "no_such_module_xyz:thing")
    assert reg.names() == ["broken", "clip_i", "clip_t"]
    assert reg.get("clip_i") is json.dumps
    assert reg.get("clip_t") == 42
    with pytest.raises(ConfigError, match=r"did you mean .*'clip_i'"):
        reg.get("clip_j")
    with pytest.raises(ConfigError, match=r"did you mean 'clip_i' or 'clip_t'\?"):
        reg.get("clip_ii")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("clip_i", "json:loads")
    with pytest.raises(ModuleNotFoundError):  # lazy: the bad target only fails when used
        reg.get("broken")


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from mg5bench.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'yaml', 'PIL', 'transformers') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: mg5bench" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_ls_tasks_lists_the_three_tasks() -> None:
    out = subprocess.run([sys.executable, "-m", "mg5bench", "ls", "tasks"], capture_output=True, text=True)
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == ["cc3m", "mmdialog", "vist"]


def test_ls_models_names_each_default_checkpoint_and_whether_it_is_shipped() -> None:
    """`ls models` shows, per adapter, its default checkpoint per task; a missing folder is flagged, and listing
    still imports no torch."""
    from mg5bench.adapters.common import shipped_checkpoints

    code = (
        "import sys\nfrom mg5bench.cli import main\nrc = main(['ls', 'models'])\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[-1] == "HEAVY="
    block = {}
    for line in lines[:-1]:
        if not line.startswith(" "):
            current = line.split()[0]
        else:
            block[current] = line
    assert set(block) >= {"gt", "blank", "minigpt5", "sd2"}
    assert "none needed" in block["gt"]
    for task, rel in (("vist", "stage2-vist"), ("mmdialog", "stage2-mmdialog"), ("cc3m", "stage1")):
        shipped = (shipped_checkpoints() / rel).is_dir()
        assert f"{task}={rel}" + ("" if shipped else " (MISSING)") in block["minigpt5"]
    assert "vist=backbones/t2i" in block["sd2"] and "MISSING" not in block["sd2"]
