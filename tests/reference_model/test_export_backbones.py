"""reference_model.export.export_backbones: a new LM and vision path on the shipped T2I keep that T2I byte for byte,
so the sd2-ft deltas packed against it (which record its sha256) stay valid."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from mg5bench.adapters.common import shipped_checkpoints
from mg5bench.core.hashing import sha256_folder
from reference_model.export import export_backbones
from reference_model.lm import build_lm
from reference_model.vision import VisionConfig, VisionPath


def test_export_with_a_given_t2i_copies_it_verbatim_and_halves_the_rest(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, LlamaForCausalLM

    shipped = shipped_checkpoints() / "backbones"
    src = tmp_path / "src"
    tok = AutoTokenizer.from_pretrained(shipped / "lm")
    torch.manual_seed(0)
    lm = build_lm(len(tok), hidden=64, layers=3, max_len=128)
    lm.save_pretrained(src / "lm")
    tok.save_pretrained(src / "lm")
    VisionPath.build(VisionConfig(lm_hidden=64, hidden=32, qformer_hidden=32, num_queries=4)).save_pretrained(
        src / "vision"
    )
    dest = tmp_path / "dest"
    export_backbones(src, dest, t2i=shipped / "t2i")
    assert sha256_folder(dest / "t2i") == sha256_folder(shipped / "t2i")
    # the sd2-ft delta shipped for VIST names the shipped t2i by this hash: it still matches
    meta = json.loads((shipped_checkpoints() / "sd2-ft-vist" / "sd2ft.json").read_text())
    assert meta["base_sha256"] == sha256_folder(dest / "t2i")
    out = LlamaForCausalLM.from_pretrained(dest / "lm")
    assert out.config.num_hidden_layers == 3 and out.dtype == torch.float16
    want = lm.model.layers[2].mlp.up_proj.weight.detach().half()
    assert torch.equal(out.model.layers[2].mlp.up_proj.weight, want)
    assert not (tmp_path / "dest.tmp").exists()


def test_a_re_saved_t2i_names_no_training_folder(tmp_path: Path) -> None:
    """A T2I exported from a training run holds no folder of the machine it was trained on, so its content hash is
    the same wherever it was trained; diffusers still loads it and names the folder it was loaded from."""
    from reference_model.t2i import load_pipeline

    shipped = shipped_checkpoints() / "backbones"
    src = tmp_path / "src"
    for part in ("lm", "vision", "t2i"):
        shutil.copytree(shipped / part, src / part)
    names = ("model_index.json", "unet/config.json", "vae/config.json")
    for name in names:  # what diffusers writes when a training run saves the pipeline: the folder it came from
        cfg = json.loads((src / "t2i" / name).read_text())
        (src / "t2i" / name).write_text(json.dumps({**cfg, "_name_or_path": str(tmp_path / "train" / "t2i")}))
    dest = tmp_path / "dest"
    export_backbones(src, dest)
    for name in names:
        assert "_name_or_path" not in json.loads((dest / "t2i" / name).read_text())
    assert str(tmp_path) not in "".join(p.read_text() for p in (dest / "t2i").rglob("*.json"))
    pipe = load_pipeline(dest / "t2i")
    assert pipe.unet.config.sample_size == json.loads((shipped / "t2i" / "unet/config.json").read_text())["sample_size"]


def test_the_t2i_kept_alone_first_is_the_one_the_whole_export_writes(tmp_path: Path) -> None:
    """train_reference.sh keeps the T2I as soon as it is trained, then exports the LM and vision path on it: the set
    must hold the same T2I bytes as an export of all three at once."""
    from reference_model.export import export_t2i

    shipped = shipped_checkpoints() / "backbones"
    src = tmp_path / "src"
    for part in ("lm", "vision", "t2i"):
        shutil.copytree(shipped / part, src / part)
    (src / "t2i" / "curve.jsonl").write_text('{"step": 1}\n')
    export_backbones(src, tmp_path / "whole")
    export_t2i(src / "t2i", tmp_path / "staged" / "t2i")
    assert (tmp_path / "staged" / "t2i" / "curve.jsonl").is_file()
    (tmp_path / "staged" / "README.md").write_text("# the card written when the T2I was kept\n")
    export_backbones(src, tmp_path / "staged", t2i=tmp_path / "staged" / "t2i")
    assert (tmp_path / "staged" / "README.md").read_text() == "# the card written when the T2I was kept\n"
    assert sha256_folder(tmp_path / "staged" / "t2i") == sha256_folder(tmp_path / "whole" / "t2i")
    assert sha256_folder(tmp_path / "staged" / "lm") == sha256_folder(tmp_path / "whole" / "lm")
    assert not (tmp_path / "staged" / "t2i.tmp").exists()
