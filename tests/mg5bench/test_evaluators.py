"""Evaluator back-ends: the embedded world CLIP, open_clip local weights, Hugging Face CLIPModel
folders (tiny random ones saved in the real formats), and the Inception error path."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import sha256_file
from mg5bench.scoring.evaluators import EMBEDDED_DIR, InceptionFeatures, load_evaluator


def _images(n: int = 4) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)) for _ in range(n)]


def test_embedded_evaluator_info_and_shapes() -> None:
    ev = load_evaluator("embedded")
    info = ev.info()
    assert info["weights_sha256"] == sha256_file(EMBEDDED_DIR / "open_clip_model.safetensors")
    assert "Resize" in info["preprocessing"] and "Normalize" in info["preprocessing"]
    img = ev.encode_images(_images())
    txt = ev.encode_texts(["a big red circle at the top left .", "an empty picture ."])
    assert img.shape == (4, ev.dim) and txt.shape == (2, ev.dim)
    assert torch.allclose(img.norm(dim=-1), torch.ones(4), atol=1e-5)
    # the feature module gives torchmetrics the same raw features from uint8 tensors
    x = torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in _images()])
    feats = ev.feature_module()(x)
    assert torch.allclose(feats.float(), ev.encode_images_raw(_images()), atol=1e-5)


def test_open_clip_local_weights_file(tmp_path: Path) -> None:
    """A built-in architecture name + a local weights file, as for real ViT-L-14 weights."""
    import open_clip

    cfg = json.loads((EMBEDDED_DIR / "open_clip_config.json").read_text())
    (tmp_path / "tiny-clip.json").write_text(json.dumps(cfg["model_cfg"]))
    open_clip.add_model_config(tmp_path / "tiny-clip.json")
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    ev = load_evaluator(f"open_clip:tiny-clip:{tmp_path / 'weights.pt'}")
    assert ev.weights_sha256 == sha256_file(tmp_path / "weights.pt")
    _, _, preprocess = open_clip.create_model_and_transforms("tiny-clip", pretrained=str(tmp_path / "weights.pt"))
    with torch.no_grad():
        direct = model.encode_image(torch.stack([preprocess(im) for im in _images()]))
    assert torch.allclose(ev.encode_images_raw(_images()), direct, atol=1e-5)
    with pytest.raises(ConfigError, match="needs a local weights file"):
        load_evaluator("open_clip:ViT-L-14:/no/such/file.bin")


def _tiny_hf_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = list(string.ascii_lowercase + string.digits + ".,!?'")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    proc = CLIPProcessor(CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), tok)
    cfg = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32,
                     "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    proc.save_pretrained(folder)


def test_hf_clip_folder(tmp_path: Path) -> None:
    from transformers import CLIPModel, CLIPProcessor

    folder = tmp_path / "hfclip"
    _tiny_hf_clip(folder)
    ev = load_evaluator(f"hf-clip:{folder}")
    assert ev.dim == 16 and ev.context_length == 32
    model, proc = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=proc(images=_images(), return_tensors="pt")["pixel_values"])
        direct = out if isinstance(out, torch.Tensor) else out.pooler_output
    assert torch.allclose(ev.encode_images_raw(_images()), direct, atol=1e-5)
    assert ev.encode_texts(["a red circle .", "blue"]).shape == (2, 16)


def test_inception_without_weights_says_how(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pt_inception-2015-12-05"):
        InceptionFeatures(tmp_path / "missing.pth")
    proc = subprocess.run(
        [sys.executable, "-m", "mg5bench", "score", "--task", "cc3m", "--data", "synth:size=small", "--predictions",
         str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "o"), "--metrics", "inception_score", "--quiet"],
        capture_output=True, text=True, env={**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "c")},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (tmp_path / "p.jsonl").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "mg5bench", "score", "--task", "cc3m", "--data", "synth:size=small", "--predictions",
         str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "o"), "--metrics", "inception_score", "--quiet"],
        capture_output=True, text=True, env={**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "c")},
    )  # fmt: skip
    assert proc.returncode == 2 and "inception_score needs real Inception-v3 weights" in proc.stderr


def test_unknown_evaluator() -> None:
    with pytest.raises(ConfigError, match="unknown evaluator"):
        load_evaluator("clip-please")
