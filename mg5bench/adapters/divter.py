"""``divter``: the Divter-style pipeline (Sun et al. 2022): captioner -> text-only LM (LoRA) writes the response
text and an image description -> the text-to-image backbone draws it. Trained by ``mg5bench train divter``
(``mg5bench.training.divter``); the format the LM is trained on and decoded with lives here, below both.

Model args: ``checkpoint=<folder>`` (default: the shipped ``divter-<task>``), ``backbones=<folder>`` (default:
the folder recorded in the checkpoint, checked by sha256).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.adapters.backbones import Parts
from mg5bench.adapters.base import Adapter, Output
from mg5bench.adapters.common import (
    CROSS_TASK,
    CROSS_TASK_HELP,
    check_backbones,
    check_trained_task,
    read_json,
    require_folder,
    shipped_checkpoints,
)
from mg5bench.core.checkpoints import check_safetensors
from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import sha256_folder
from mg5bench.core.sample import Sample
from mg5bench.runs.spec import GenerationConfig
from mg5bench.tasks import TaskConfig

IMAGE_TAG = "###Image:"
NO_IMAGE = "none"
END = "###"


@dataclass
class DivterConfig:
    """Saved as divter_config.json next to the LoRA weights."""

    task: str
    backbones: str  # folder with lm/, vision/ and t2i/ (relative to this file's folder when shipped)
    backbones_sha256: str
    lora_r: int = 16
    lora_alpha: int = 32
    max_context_tokens: int = 192
    max_new_tokens: int = 40
    steps: int = 0
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    data_fingerprint: str = ""
    train_pairs: int = 0
    final_loss: float = 0.0
    wall_s: float = 0.0


def context_text(sample: Sample, task_format: str, caption_of: dict[str, str]) -> str:
    """The all-text context Divter's LM reads: images become ``[image: <caption>]``; dialog turns keep their
    speaker tags; the current speaker's tag ends a dialog context."""
    parts = []
    for seg in sample.context:
        piece = f"[image: {caption_of[seg.value]}]" if seg.is_image else seg.value
        if task_format == "mmdialog":
            piece = f"###{'Assistant' if seg.role == 'assistant' else 'Human'}: {piece}"
        parts.append(piece)
    if task_format == "mmdialog":
        parts.append(f"###{'Assistant' if sample.meta.get('speaker') == 'assistant' else 'Human'}:")
    return " ".join(parts)


def response_text(text: str, description: str | None) -> str:
    """The LM's target: the response text, then the image description (or 'none')."""
    return f" {text.strip()} {IMAGE_TAG} {description or NO_IMAGE} {END}"


def parse_response(generated: str) -> tuple[str, str | None]:
    """Inverse of ``response_text`` on what the LM wrote: (text, description or None)."""
    text, _, rest = generated.partition(IMAGE_TAG)
    desc = rest.split(END)[0].strip()
    return text.split(END)[0].strip(), (desc if desc and desc != NO_IMAGE else None)


class Divter:
    """A trained Divter folder (LoRA + config) on its backbones, ready to generate."""

    def __init__(self, folder: Path, backbones: Path | None = None, device: str = "cpu") -> None:
        from peft import PeftModel

        self.folder = Path(folder)
        path = self.folder / "divter_config.json"
        if not path.exists():
            raise ConfigError(f"{self.folder}: not a Divter checkpoint (no divter_config.json); train one with "
                              "mg5bench train divter --task T --out DIR")  # fmt: skip
        self.cfg = DivterConfig(**json.loads(path.read_text()))
        base = Path(backbones) if backbones else (self.folder / self.cfg.backbones).resolve()
        sha = sha256_folder(base)
        if sha != self.cfg.backbones_sha256:
            raise ConfigError(
                f"{self.folder} was trained on backbones {self.cfg.backbones_sha256[:12]}, but {base} "
                f"is {sha[:12]}; retrain it (mg5bench train divter) or pass backbones=<the original>"
            )
        self.parts = Parts(base, device)
        self.lm = PeftModel.from_pretrained(self.parts.lm, self.folder).eval().to(device)

    def write(self, contexts: Sequence[str], max_new_tokens: int | None = None) -> list[tuple[str, str | None]]:
        """Greedy (text, description) for each all-text context (left-padded batch); ``max_new_tokens`` defaults
        to the trained length (divter_config.json)."""
        import torch

        tok = self.parts.tok
        rows = [[tok.bos_token_id, *tok(c, add_special_tokens=False)["input_ids"][-self.cfg.max_context_tokens:]]
                for c in contexts]  # fmt: skip
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        att = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = torch.tensor(r)
            att[i, width - len(r) :] = 1
        with torch.inference_mode():
            out = self.lm.generate(
                input_ids=ids.to(self.parts.device),
                attention_mask=att.to(self.parts.device),
                max_new_tokens=max_new_tokens or self.cfg.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        return [parse_response(tok.decode(o[width:], skip_special_tokens=True)) for o in out]


class DivterAdapter(Adapter):
    """``divter``: wraps a Divter-style pipeline on the shipped backbones: context images captioned by the vision
    path, the LoRA-tuned text LM writes the reply and an image description, the T2I draws the description."""

    description = "Divter-style: captions of context images -> text LM writes reply + image description -> T2I"
    args: ClassVar[dict[str, str]] = {
        "checkpoint": "a folder from 'mg5bench train divter' (default: the shipped divter-<task>)",
        "backbones": "backbones folder with lm/, vision/, t2i/ (default: the one the checkpoint records)",
        CROSS_TASK: CROSS_TASK_HELP,
    }
    uses = ("guidance_scale", "num_inference_steps", "max_new_tokens")
    defaults = GenerationConfig(guidance_scale=3.0, num_inference_steps=25)  # max_new_tokens: the checkpoint's
    batch_size = 20  # divides 100: the usual --limit values cut no batch group
    default_checkpoints: ClassVar[dict[str, str]] = {t: f"divter-{t}" for t in ("cc3m", "vist", "mmdialog")}
    path_args = ("checkpoint", "backbones")
    hashed_args = ("checkpoint",)

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        default = shipped_checkpoints() / self.default_checkpoints[task.format]
        self.path = require_folder(Path(model_args.get("checkpoint", default)), "Divter checkpoint", "checkpoint")
        self.backbones = Path(model_args["backbones"]).expanduser() if "backbones" in model_args else None
        self.model: Any = None
        cfg = read_json(self.path / "divter_config.json", "the Divter checkpoint (train one: mg5bench train divter)")
        check_trained_task(cfg.get("task"), task, self.path, self.model_args)
        check_backbones(self.backbones or self.path / str(cfg.get("backbones", "")), owner=self.path)
        check_safetensors(self.path / "adapter_model.safetensors", prefixes=("base_model.",),
                          fix="copy the checkpoint again, or retrain it: mg5bench train divter")  # fmt: skip

    def documented_defaults(self) -> GenerationConfig:
        """guidance 3, 25 steps; the reply + description length the LoRA was trained with (divter_config.json)."""
        import dataclasses

        trained = json.loads((self.path / "divter_config.json").read_text()).get("max_new_tokens", 40)
        return dataclasses.replace(self.defaults, max_new_tokens=int(trained))

    def identity(self) -> dict[str, Any]:
        recorded = json.loads((self.path / "divter_config.json").read_text())["backbones_sha256"]
        return {"adapter": self.name, "sha256": sha256_folder(self.path), "backbones_sha256": recorded,
                "model_args": self.portable_args()}  # fmt: skip

    def load(self) -> None:
        if self.model is None:
            self.model = Divter(self.path, self.backbones, self.device)

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        self.load()
        parts = self.model.parts
        paths = [seg.value for s in samples for seg in s.context if seg.is_image]
        caption_of = dict(zip(paths, parts.captions(paths), strict=True))
        written = self.model.write([context_text(s, self.task.format, caption_of) for s in samples],
                                   config.max_new_tokens)  # fmt: skip
        drawn = [i for i, (_, desc) in enumerate(written) if desc]
        images = parts.render([written[i][1] or "" for i in drawn], [generators[i] for i in drawn],
                              config.guidance_scale, config.num_inference_steps) if drawn else []  # fmt: skip
        image_of = dict(zip(drawn, images, strict=True))
        outs: list[Output] = []
        for i, (text, _) in enumerate(written):
            out: Output = [("text", text)] if self.task.format == "mmdialog" else []
            if i in image_of:
                out.append(("image", image_of[i]))
            outs.append(out)
        return outs
