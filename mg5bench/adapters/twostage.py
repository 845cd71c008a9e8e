"""``two-stage``: the paper's human-evaluation baseline: a MiniGPT-4-style vision-LM writes the next scene's
text, the text-to-image model renders it. No training of its own: it runs the shipped backbones (the LM and
the vision path trained "the MiniGPT-4 way", the text-to-image backbone).

On the tiny world the vision-LM has learned two things only: to continue world text (stories, dialogs) and
to describe an image under MiniGPT-4's prompt. So the scene text it writes is its description of the last
context image (the current state) followed by the instruction (VIST: the step caption; MMDialog: the last
text turn; CC3M: the caption), and in a dialog it also continues the conversation with the response text.
Unlike ``minigpt5`` and ``divter`` it was never trained to apply the instruction to the state.

Model args: ``backbones=<folder>`` (default: the shipped reference_model/checkpoints/backbones).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.adapters.backbones import Parts
from mg5bench.adapters.base import Adapter, Output
from mg5bench.adapters.common import caption_prompt, check_backbones, require_folder, shipped_checkpoints
from mg5bench.adapters.minigpt5 import IMG, mmdialog_source
from mg5bench.core.hashing import sha256_folder
from mg5bench.core.sample import Sample
from mg5bench.runs.spec import GenerationConfig
from mg5bench.tasks import TaskConfig


class TwoStage(Adapter):
    """``two-stage``: wraps the shipped vision-LM (its description of the last context image plus the instruction) and
    the text-to-image backbone that draws that text; see the module docstring."""

    args: ClassVar[dict[str, str]] = {"backbones": "folder with lm/, vision/, t2i/ (default: the shipped backbones)"}
    uses = ("guidance_scale", "num_inference_steps")  # + max_new_tokens on a dialog task (the reply's length)
    defaults = GenerationConfig(guidance_scale=3.0, num_inference_steps=25, max_new_tokens=24)
    batch_size = 20  # divides 100: the usual --limit values cut no batch group
    default_checkpoints: ClassVar[dict[str, str]] = dict.fromkeys(("cc3m", "vist", "mmdialog"), "backbones")
    checkpoint_arg = "backbones"
    path_args = ("backbones",)
    hashed_args = ("backbones",)

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        default = shipped_checkpoints() / "backbones"
        self.path = check_backbones(require_folder(Path(model_args.get("backbones", default)), "backbones folder",
                                                   "backbones"))  # fmt: skip
        self.parts: Any = None

    def settings_used(self, requested: GenerationConfig) -> tuple[str, ...]:
        """Only in a dialog does the vision-LM write text (a reply), so only there does --max-new-tokens count."""
        return (*self.uses, "max_new_tokens") if self.task.format == "mmdialog" else self.uses

    def identity(self) -> dict[str, Any]:
        return {"adapter": self.name, "sha256": sha256_folder(self.path), "model_args": self.portable_args()}

    def scene_text(self, sample: Sample, caption_of: dict[str, str]) -> str:
        images = [s.value for s in sample.context if s.is_image]
        described = caption_of[images[-1]] + " " if images else ""
        return described + caption_prompt(sample)

    def dialog_replies(self, samples: Sequence[Sample], max_new_tokens: int) -> list[str]:
        """The vision-LM continues each dialog (images through the vision path, MiniGPT-4's placeholder)."""
        import torch
        from PIL import Image

        tok, lm, vision, dev = self.parts.tok, self.parts.lm, self.parts.vision, self.parts.device
        emb = lm.get_input_embeddings()
        rows = []
        for s in samples:
            src, paths = mmdialog_source(s)
            pieces = src.split(IMG)
            img = vision.encode_images([Image.open(p).convert("RGB") for p in paths]) if paths else None  # (N, Q, d)
            seq = [emb(torch.tensor([tok.bos_token_id], device=dev))]
            for k, text in enumerate(pieces):
                if k:
                    seq.append(img[k - 1])
                ids = tok(text, add_special_tokens=False)["input_ids"]
                if ids:
                    seq.append(emb(torch.tensor(ids, device=dev)))
            rows.append(torch.cat(seq)[-256:])  # (T, d); the tiny LM's window
        width = max(len(r) for r in rows)
        x = torch.zeros(len(rows), width, rows[0].shape[1], device=dev)  # (B, T, d), left padded
        att = torch.zeros(len(rows), width, dtype=torch.long, device=dev)
        for i, r in enumerate(rows):
            x[i, width - len(r) :] = r
            att[i, width - len(r) :] = 1
        out = lm.generate(
            inputs_embeds=x,
            attention_mask=att,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            max_new_tokens=max_new_tokens,
        )
        return [tok.decode(o, skip_special_tokens=True).split("###")[0].strip() for o in out]

    def load(self) -> None:
        if self.parts is None:
            self.parts = Parts(self.path, self.device)

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        import torch

        self.load()
        paths = [[s.value for s in sample.context if s.is_image][-1:] for sample in samples]
        flat = [p for ps in paths for p in ps]
        caption_of = dict(zip(flat, self.parts.captions(flat), strict=True))
        prompts = [self.scene_text(s, caption_of) for s in samples]
        images = self.parts.render(prompts, generators, config.guidance_scale, config.num_inference_steps)
        if self.task.format != "mmdialog":
            return [[("image", im)] for im in images]
        with torch.inference_mode():
            replies = self.dialog_replies(samples, config.max_new_tokens)
        return [[("text", t), ("image", im)] for t, im in zip(replies, images, strict=True)]
