"""Feature backbones for the metrics, chosen with ``--evaluator`` (its schemes: ``SCHEMES``, listed by
``mg5bench ls evaluators``).

- ``embedded`` (the default on the synthetic world; refused on other data unless named, see
  ``resolve_evaluator``): the world CLIP shipped in ``mg5bench/assets/world_clip`` (open_clip local-dir).
- ``open_clip:<model name>:<weights file>``: any open_clip architecture with local weights
  (e.g. ``open_clip:ViT-L-14:/models/open_clip_pytorch_model.bin``), with open_clip's preprocessing.
- ``open_clip:local-dir:<folder>``: a folder with ``open_clip_config.json`` + weights.
- ``hf-clip:<folder>``: a Hugging Face ``CLIPModel`` folder (with its processor files).

Inception-v3 (FID features, Inception Score) comes from a local torch-fidelity weights file given
separately (``--inception PATH``), see ``InceptionFeatures``.

Every evaluator reports its name, weights sha256 and preprocessing, which go into metrics.json.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import sha256_file

EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "assets" / "world_clip"
EMBEDDED_LABEL = "embedded:world-clip"
EMBEDDED_ON_REAL_DATA = (
    "WARNING: scored with the embedded evaluator (a 48-pixel CLIP of coloured shapes) on data that is not the "
    "synthetic world: CLIP, FID and KID values say little about these images; use --evaluator open_clip:..."
)


def _load_rgb(image: Any) -> Any:

    if isinstance(image, (str, Path)):
        from mg5bench.data.io import open_image

        with open_image(image) as im:  # refused by its header when too large to decode
            return im.convert("RGB")
    return image.convert("RGB")


class ClipEvaluator:
    """Image and text towers of a CLIP model. Features are the projected embeddings (float32);
    ``encode_*`` return them L2-normalised, ``encode_images_raw`` unnormalised (for FID/KID)."""

    name: str
    weights_sha256: str
    preprocessing: str
    dim: int
    context_length: int
    device: str = "cpu"

    def __init__(self) -> None:
        raise TypeError("use load_evaluator(spec)")

    # subclasses implement these three
    def _image_batch(self, images: list[Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _text_batch(self, texts: list[str]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_images_raw(self, images: Sequence[Any], batch_size: int = 256, progress: bool = False) -> Any:
        """(N, d) unnormalised image embeddings of PIL images or paths, in batches."""
        import torch
        from tqdm.auto import tqdm

        out = []
        with torch.inference_mode():
            for i in tqdm(range(0, len(images), batch_size), disable=not progress, desc="encode images", leave=False):
                batch = [_load_rgb(im) for im in images[i : i + batch_size]]
                out.append(self._image_batch(batch).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def encode_images(self, images: Sequence[Any], batch_size: int = 256, progress: bool = False) -> Any:
        import torch

        return torch.nn.functional.normalize(self.encode_images_raw(images, batch_size, progress), dim=-1)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 512) -> Any:
        """(N, d) L2-normalised text embeddings."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                out.append(self._text_batch(list(texts[i : i + batch_size])).float().cpu())
        feats = torch.cat(out) if out else torch.zeros(0, self.dim)
        return torch.nn.functional.normalize(feats, dim=-1)

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature (exp of the logit scale): MM-Relevance reports its logit units with it."""
        return float(self.model.logit_scale.detach().exp())

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights_sha256": self.weights_sha256,
            "preprocessing": self.preprocessing,
            "feature_dim": self.dim,
            "text_context_length": self.context_length,
        }

    def feature_module(self) -> Any:
        """An nn.Module for torchmetrics FID/KID: uint8 images (N, 3, H, W) -> (N, d) features through
        this evaluator's own preprocessing; float features (N, d) pass through unchanged, so features
        encoded once per run can be reused."""
        return _FeatureModule(self)


def _make_feature_module_class() -> type:
    import torch

    class FeatureModule(torch.nn.Module):
        """The evaluator as the nn.Module torchmetrics' FID/KID call: images through its preprocessing, features
        passed through."""

        def __init__(self, ev: ClipEvaluator) -> None:
            super().__init__()
            self.ev = ev
            self.num_features = ev.dim

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.dtype == torch.uint8 and x.dim() == 4:
                from PIL import Image

                ims = [Image.fromarray(img.permute(1, 2, 0).cpu().numpy()) for img in x]
                return self.ev.encode_images_raw(ims).double()
            if x.dim() == 2 and x.shape[1] == self.num_features:
                return x.double()
            raise ValueError(
                f"expected uint8 images (N, 3, H, W) or features (N, {self.num_features}), got {tuple(x.shape)}"
            )

    return FeatureModule


def _FeatureModule(ev: ClipEvaluator) -> Any:
    return _make_feature_module_class()(ev)


class OpenClipEvaluator(ClipEvaluator):
    """An open_clip model (a named architecture with a local weights file, or a local-dir folder) with open_clip's
    preprocessing."""

    def __init__(self, model_name: str, pretrained: str | None, label: str, device: str = "cpu") -> None:
        import open_clip
        import torch

        if model_name.startswith("local-dir:"):
            folder = Path(model_name.removeprefix("local-dir:"))
            if not (folder / "open_clip_config.json").is_file():
                raise ConfigError(f"{folder}: not an open_clip folder (needs open_clip_config.json + weights)")
            weights = next(iter(sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))), None)
            if weights is None:
                raise ConfigError(f"{folder}: no weights file (.safetensors or .bin)")
            model, _, preprocess = open_clip.create_model_and_transforms(model_name)
        else:
            if not pretrained or not Path(pretrained).is_file():
                raise ConfigError(
                    f"open_clip evaluator {model_name!r} needs a local weights file: "
                    f"--evaluator open_clip:{model_name}:/path/to/weights (hub tags do not work offline)"
                )
            weights = Path(pretrained)
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=str(weights))
        self.device = device
        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.name = label
        self.weights_sha256 = sha256_file(weights)
        self.preprocessing = "open_clip " + " | ".join(repr(t) for t in getattr(preprocess, "transforms", [preprocess]))
        self.context_length = int(getattr(self.tokenizer, "context_length", 77))
        with torch.inference_mode():
            self.dim = int(self._text_batch(["a"]).shape[-1])

    def _image_batch(self, images: list[Any]) -> Any:
        import torch

        x = torch.stack([self.preprocess(im) for im in images])  # (B, 3, S, S)
        return self.model.encode_image(x.to(self.device))  # (B, d)

    def _text_batch(self, texts: list[str]) -> Any:
        return self.model.encode_text(self.tokenizer(texts).to(self.device))  # (B, d)


class HFClipEvaluator(ClipEvaluator):
    """A Hugging Face ``CLIPModel`` folder with its processor's preprocessing."""

    def __init__(self, folder: str, device: str = "cpu") -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor

        path = Path(folder)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path}: not a Hugging Face CLIPModel folder (config.json missing)")
        self.device = device
        self.model = CLIPModel.from_pretrained(str(path)).eval().to(device)
        self.processor = CLIPProcessor.from_pretrained(str(path))
        weights = next(iter(sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))), None)
        if weights is None:
            raise ConfigError(f"{path}: no weights file")
        self.name = f"hf-clip:{path.name}"
        self.weights_sha256 = sha256_file(weights)
        ip = self.processor.image_processor
        fields = ("size", "crop_size", "resample", "image_mean", "image_std")
        self.preprocessing = "transformers CLIPImageProcessor " + " ".join(
            f"{f}={getattr(ip, f, None)}" for f in fields
        )
        self.context_length = int(self.model.config.text_config.max_position_embeddings)
        with torch.inference_mode():
            self.dim = int(self._text_batch(["a"]).shape[-1])

    @staticmethod
    def _tensor(out: Any) -> Any:
        # transformers 5 returns an output object from get_*_features; 4.x a tensor
        return out if hasattr(out, "shape") else out.pooler_output

    def _image_batch(self, images: list[Any]) -> Any:
        inputs = self.processor(images=images, return_tensors="pt")
        return self._tensor(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device)))

    def _text_batch(self, texts: list[str]) -> Any:
        inputs = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt"
        )
        return self._tensor(self.model.get_text_features(**{k: v.to(self.device) for k, v in inputs.items()}))


@dataclass(frozen=True)
class EvaluatorSource:
    """An ``--evaluator`` spec checked without loading anything: enough to name and hash it (score keys), and how
    to build it. ``open_clip_model`` is an open_clip model name or ``local-dir:<folder>``; ``hf_folder`` a
    Hugging Face CLIPModel folder."""

    label: str
    weights: Path
    open_clip_model: str | None = None
    hf_folder: str | None = None

    def load(self, device: str) -> ClipEvaluator:
        """Build the evaluator; weights a loader cannot read (a damaged .bin) are one line naming the file."""
        import pickle

        try:
            if self.hf_folder is not None:
                return HFClipEvaluator(self.hf_folder, device)
            assert self.open_clip_model is not None
            if self.open_clip_model.startswith("local-dir:"):
                return OpenClipEvaluator(self.open_clip_model, None, self.label, device)
            return OpenClipEvaluator(self.open_clip_model, str(self.weights), self.label, device)
        except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as e:
            first = " ".join(str(e).split())[:160]
            raise ConfigError(f"{self.weights}: the evaluator {self.label} cannot load its weights ({type(e).__name__}:"
                              f" {first}); copy the weights again or check the model name") from None  # fmt: skip


def embedded_source(rest: str = "") -> EvaluatorSource:
    """``embedded``: the world CLIP shipped in mg5bench/assets/world_clip."""
    if rest:
        raise ConfigError(f"--evaluator embedded takes no arguments, got 'embedded:{rest}'")
    if not (EMBEDDED_DIR / "open_clip_config.json").is_file():
        raise ConfigError(f"the embedded evaluator is missing from {EMBEDDED_DIR}; reinstall mg5bench")
    return EvaluatorSource(EMBEDDED_LABEL, _weights_in(EMBEDDED_DIR), open_clip_model=f"local-dir:{EMBEDDED_DIR}")


def open_clip_source(rest: str) -> EvaluatorSource:
    """``open_clip:<model name>:<weights file>`` or ``open_clip:local-dir:<folder>``."""
    if rest.startswith("local-dir:"):
        folder = Path(rest.removeprefix("local-dir:"))
        if not (folder / "open_clip_config.json").is_file():
            raise ConfigError(f"{folder}: not an open_clip folder (needs open_clip_config.json + weights)")
        return EvaluatorSource(f"open_clip:local-dir:{folder.name}", _weights_in(folder), open_clip_model=rest)
    name, sep, weights = rest.partition(":")
    if not sep:
        raise ConfigError(f"--evaluator 'open_clip:{rest}': use open_clip:<model name>:<weights file>")
    if not weights or not Path(weights).is_file():
        raise ConfigError(
            f"open_clip evaluator {name!r} needs a local weights file: "
            f"--evaluator open_clip:{name}:/path/to/weights (hub tags do not work offline)"
        )
    return EvaluatorSource(f"open_clip:{name}", _checked(Path(weights)), open_clip_model=name)


def hf_clip_source(rest: str) -> EvaluatorSource:
    """``hf-clip:<folder>``: a Hugging Face CLIPModel folder with its processor files."""
    path = Path(rest)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path}: not a Hugging Face CLIPModel folder (config.json missing)")
    return EvaluatorSource(f"hf-clip:{path.name}", _weights_in(path), hf_folder=str(path))


# --evaluator schemes (the part of the spec before the first ':'): the function that reads the rest, and the forms
# it takes as ``mg5bench ls evaluators`` and an unknown scheme's error show them
SCHEMES: dict[str, tuple[Callable[[str], EvaluatorSource], str]] = {
    "embedded": (embedded_source, "embedded: the small CLIP trained on the synthetic world (default there; refused "
                 "on other data unless named)"),
    "hf-clip": (hf_clip_source, "hf-clip:<folder>: a Hugging Face CLIPModel folder"),
    "open_clip": (open_clip_source, "open_clip:<model>:<weights file> or open_clip:local-dir:<folder> (OpenAI "
                  "weights: a -quickgelu model)"),
}  # fmt: skip


def evaluator_source(spec: str) -> EvaluatorSource:
    """``--evaluator`` spec -> its source (``SCHEMES``)."""
    scheme, _, rest = spec.partition(":")
    if scheme not in SCHEMES:
        forms = "; ".join(SCHEMES[n][1] for n in sorted(SCHEMES))
        raise ConfigError(f"unknown evaluator {spec!r}; use {forms}")
    return SCHEMES[scheme][0](rest)


def _weights_in(folder: Path) -> Path:
    weights = next(iter(sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))), None)
    if weights is None:
        raise ConfigError(f"{folder}: no weights file (.safetensors or .bin)")
    return _checked(weights)


def _checked(weights: Path) -> Path:
    """A safetensors weights file is checked (header, sizes) before any loader sees it: a file cut short is one
    line naming it, not a traceback from inside open_clip or transformers."""
    if weights.suffix == ".safetensors":
        from mg5bench.core.checkpoints import safetensors_header

        safetensors_header(weights, "copy the evaluator's weights again")
    return weights


def evaluator_identity(spec: str = "embedded") -> dict[str, str]:
    """Name and weights sha256 of the evaluator ``spec`` names, without loading it (for score keys)."""
    source = evaluator_source(spec)
    return {"name": source.label, "weights_sha256": sha256_file(source.weights)}


def resolve_evaluator(spec: str | None, synthetic: bool) -> tuple[str, list[str]]:
    """The evaluator to score with and the warnings that must stay in the table. Not given (None): the embedded
    world CLIP on the synthetic world; on other data that is refused, because a 48-pixel CLIP of coloured shapes
    scores real photographs meaninglessly; naming it (``--evaluator embedded``) uses it anyway, with a warning."""
    if spec is None:
        if synthetic:
            return "embedded", []
        raise ConfigError(
            "this data is not the synthetic world: the default evaluator (the embedded 48-pixel CLIP of coloured "
            "shapes) would score it meaninglessly; pass a real CLIP, e.g. --evaluator "
            "open_clip:ViT-L-14-quickgelu:/models/clip-vit-l-14-openai.bin (or hf-clip:<folder>), or --evaluator "
            "embedded to use it anyway"
        )
    if not synthetic and evaluator_source(spec).label == EMBEDDED_LABEL:
        return spec, [EMBEDDED_ON_REAL_DATA]
    return spec, []


@lru_cache(maxsize=8)
def load_evaluator(spec: str = "embedded", device: str = "cpu") -> ClipEvaluator:
    """Build (once per process and device) the evaluator named by ``spec``; see the module docstring."""
    return evaluator_source(spec).load(device)


INCEPTION_HELP = (
    "Inception-v3 metrics need the torch-fidelity FID weights file "
    "(pt_inception-2015-12-05-6726825d.pth) on disk and the torch-fidelity package: "
    "pip install torch-fidelity, then pass --inception /path/to/pt_inception-2015-12-05-6726825d.pth"
)


class InceptionFeatures:
    """torch-fidelity's FID Inception-v3 from a local weights file: 2048-d pool features for FID/KID
    and 1008 logits for the Inception Score. Without the file, a clear error says how to get one."""

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        import pickle

        path = Path(weights)
        self.device = device
        if not path.is_file():
            raise ConfigError(f"{path}: Inception weights not found. {INCEPTION_HELP}")
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except (ImportError, ModuleNotFoundError) as e:  # pragma: no cover - depends on the install
            raise ConfigError(f"{INCEPTION_HELP} ({e})") from None
        try:
            self.pool = NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
            )
            self.logits = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["logits_unbiased"],
                feature_extractor_weights_path=str(path),
            )
        except ModuleNotFoundError as e:  # torch-fidelity missing
            raise ConfigError(f"{INCEPTION_HELP} ({e})") from None
        except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as e:  # damaged file
            first = " ".join(str(e).split())[:160]
            raise ConfigError(f"{path}: the Inception weights cannot be loaded ({type(e).__name__}: {first}); "
                              f"copy them again. {INCEPTION_HELP}") from None  # fmt: skip
        self.pool, self.logits = self.pool.to(device), self.logits.to(device)
        self.name = "inception-v3-compat (torch-fidelity)"
        self.weights_sha256 = sha256_file(path)
        self.preprocessing = "uint8 RGB -> torch-fidelity bilinear resize to 299x299 inside the network"
        self.dim = 2048

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing}

    def encode_pool(self, paths: Sequence[str], batch_size: int = 32) -> Any:
        """(N, 2048) pool features of images read as uint8 RGB (sizes may differ: one at a time)."""
        import numpy as np
        import torch

        out = []
        with torch.inference_mode():
            for p in paths:
                arr = np.array(_load_rgb(p))
                out.append(self.pool(torch.from_numpy(arr).permute(2, 0, 1)[None].to(self.device)).double().cpu())
        return torch.cat(out) if out else torch.zeros(0, 2048, dtype=torch.float64)


class LazyEvaluator:
    """The evaluator ``spec`` names, loaded on first use. Its identity comes from the weights' sha256 and its
    description (preprocessing, feature dimension, logit scale, ``info()``) from a small record written the first
    time it was loaded (``<cache>/features/evaluators/``, keyed by the weights' sha256 and the spec): a scoring
    whose features are all cached by content never loads the model, nor torch."""

    def __init__(self, spec: str, device: str, cache_dir: Path) -> None:
        from mg5bench.core.hashing import sha256_bytes

        self.spec, self.device = spec, device
        ident = evaluator_identity(spec)
        self.name, self.weights_sha256 = ident["name"], ident["weights_sha256"]
        self.cache_key = sha256_bytes(json.dumps([spec, self.weights_sha256]))[:24]
        self._meta_path = Path(cache_dir) / "features" / "evaluators" / f"{self.cache_key}.json"
        self._real: ClipEvaluator | None = None
        self._meta: dict[str, Any] | None = None
        try:
            meta = json.loads(self._meta_path.read_text(encoding="utf-8"))
            if isinstance(meta, dict) and meta.get("weights_sha256") == self.weights_sha256 and "info" in meta:
                self._meta = meta
        except (OSError, ValueError):
            self._meta = None

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def real(self) -> ClipEvaluator:
        """The loaded evaluator (loading it now if needed; its description is remembered for next time)."""
        if self._real is None:
            from mg5bench.core.files import atomic_write_json

            self._real = load_evaluator(self.spec, self.device)
            meta = {"weights_sha256": self.weights_sha256, "preprocessing": self._real.preprocessing,
                    "dim": int(self._real.dim), "logit_scale": float(self._real.logit_scale),
                    "info": self._real.info()}  # fmt: skip
            if meta != self._meta:
                with contextlib.suppress(OSError):  # a read-only cache only costs a load next time
                    atomic_write_json(self._meta_path, meta)
            self._meta = meta
        return self._real

    def _field(self, name: str) -> Any:
        if self._meta is None:
            self.real()
        assert self._meta is not None
        return self._meta[name]

    @property
    def preprocessing(self) -> str:
        return str(self._field("preprocessing"))

    @property
    def dim(self) -> int:
        return int(self._field("dim"))

    @property
    def logit_scale(self) -> float:
        return float(self._field("logit_scale"))

    def info(self) -> dict[str, Any]:
        return dict(self._field("info"))

    def encode_images_raw(self, images: Sequence[Any], batch_size: int = 256, progress: bool = False) -> Any:
        return self.real().encode_images_raw(images, batch_size, progress)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 512) -> Any:
        return self.real().encode_texts(texts, batch_size)
