"""``minigpt5``: the reference MiniGPT-5 (reference_model). Prompts are built exactly as the official test
loaders build them (docs/minigpt5.md, "Training in two stages" and "Official evaluation"): VIST ``-gen`` (system prompt,
previous captions and images, "Generate an image with the scene description: <caption>"), MMDialog (system prompt,
history window, speaker tag), CC3M (the cleaned caption alone, as in stage 1).

Model args: ``checkpoint=<folder>`` (default: the shipped checkpoint for the task), or ``official=<ckpt>``
(a released official Lightning checkpoint, converted on the fly onto the paper preset; stage 2 also needs
``stage1=<ckpt>``) with ``lm=``, ``t2i=``, ``vision=`` local folders of the real parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from mg5bench.adapters.base import Adapter, Output
from mg5bench.adapters.common import (
    CROSS_TASK,
    CROSS_TASK_HELP,
    bool_arg,
    check_trained_task,
    read_json,
    require_folder,
    shipped_checkpoints,
)
from mg5bench.core.checkpoints import check_folder, check_safetensors
from mg5bench.core.errors import ConfigError
from mg5bench.core.hashing import sha256_file, sha256_folder
from mg5bench.core.sample import Sample, Segment
from mg5bench.runs.spec import GenerationConfig
from mg5bench.tasks import TaskConfig

IMG = "<Img><ImageHere></Img>"


def interleave(source: str, images: Sequence[Any]) -> list[Any]:
    """Source text with ``<Img><ImageHere></Img>`` placeholders + its images -> ``[str, image, str, ...]``: the
    input ``MiniGPT5.generate`` takes (the official loaders put each image where its placeholder is)."""
    parts = source.split(IMG)
    if len(parts) != len(images) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders but {len(images)} images")
    out: list[Any] = [parts[0]]
    for im, text in zip(images, parts[1:], strict=True):
        out += [im, text]
    return out


def vist_source(sample: Sample) -> tuple[str, list[str]]:
    """The official VIST ``-gen`` source for a sample: context segments in order, then the step caption."""
    from reference_model.data import SYSTEM_VIST, VIST_GEN

    *ctx, current = sample.context
    if not current.is_text:
        raise ConfigError(f"VIST sample {sample.id}: the last context segment must be the step caption")
    text, images = "", []
    for seg in ctx:  # official: captions and placeholders joined with no spaces, IMG.join(captions) + IMG + "\n"
        if seg.is_text:
            text += (" " if text and not text.endswith(IMG) else "") + seg.value  # text-only context: spaced
        else:
            text += IMG
            images.append(seg.value)
    text = (text + "\n") if text else ""
    draw = sample.meta.get("instruction_draw")  # the instruction=random protocol; else the first template
    template = VIST_GEN[0 if draw is None else min(int(float(draw) * len(VIST_GEN)), len(VIST_GEN) - 1)]
    return f"{SYSTEM_VIST}###Human:{text} {template.format(c=current.value)}", images


def _turns(context: Sequence[Segment]) -> list[tuple[str, list[Segment]]]:
    """Consecutive segments of one role form one turn (roles alternate in a dialog)."""
    turns: list[tuple[str, list[Segment]]] = []
    for seg in context:
        role = seg.role or "human"
        if turns and turns[-1][0] == role:
            turns[-1][1].append(seg)
        else:
            turns.append((role, [seg]))
    return turns


def mmdialog_source(sample: Sample) -> tuple[str, list[str]]:
    """S_d + ``###Human: text <Img><ImageHere></Img>`` history entries + the current speaker tag."""
    from reference_model.data import SYSTEM_MMDIALOG

    entries, images = [], []
    for role, segs in _turns(sample.context):
        text = " ".join(s.value for s in segs if s.is_text)
        entry = f"###{'Assistant' if role == 'assistant' else 'Human'}: {text}"
        imgs = [s.value for s in segs if s.is_image][:1]  # each turn contributes its first image
        if imgs:
            entry += f" {IMG}"
            images += imgs
        entries.append(entry)
    tag = "Assistant" if sample.meta.get("speaker") == "assistant" else "Human"
    return f"{SYSTEM_MMDIALOG} {' '.join(entries)} ###{tag}:", images


def cc3m_source(sample: Sample) -> tuple[str, list[str]]:
    from reference_model.losses import preprocess_caption

    return preprocess_caption(str(sample.meta.get("caption") or sample.context[0].value)), []


class MiniGPT5Adapter(Adapter):
    """``minigpt5``: wraps the reference MiniGPT-5 (``reference_model.modeling``), a shipped or trained checkpoint or
    an official one on the paper preset; prompts as the official loaders build them, generation settings from the
    checkpoint's config unless given."""

    args: ClassVar[dict[str, str]] = {
        "checkpoint": "checkpoint folder (default: reference_model/checkpoints/<stage1|stage2-vist|stage2-mmdialog>)",
        "official": "an official MiniGPT-5 Lightning checkpoint (converted onto the paper preset)",
        "stage1": "the official stage-1 checkpoint (needed with a stage-2 'official')",
        "lm": "local Vicuna-7B v0 folder (paper preset)",
        "t2i": "local SD-2.1-base folder (paper preset)",
        "vision": "local vision-path folder (paper preset)",
        "force_generation": "true: boost [IMG0] until it is generated (official option, off by default)",
        CROSS_TASK: CROSS_TASK_HELP,
    }
    uses = ("guidance_scale", "num_inference_steps", "max_new_tokens", "temperature", "top_p", "repetition_penalty",
            "do_sample")  # fmt: skip
    path_args = ("checkpoint", "official", "stage1", "lm", "t2i", "vision")
    hashed_args = ("checkpoint", "official")
    batch_size = 10  # divides 100: the usual --limit values cut no batch group
    default_checkpoints: ClassVar[dict[str, str]] = {
        "cc3m": "stage1",
        "vist": "stage2-vist",
        "mmdialog": "stage2-mmdialog",
    }

    def __init__(self, task: TaskConfig, model_args: dict[str, Any]) -> None:
        super().__init__(task, model_args)
        self.model: Any = None
        self.force_generation = bool_arg(model_args, "force_generation")
        if "official" in model_args:
            self.model_args.pop(CROSS_TASK, None)  # an official checkpoint does not record its task
            for k in ("lm", "t2i", "vision"):
                if k not in model_args:
                    raise ConfigError(f"--model-args official=... needs {k}=<local folder> for the paper preset")
            self.source = Path(model_args["official"]).expanduser().resolve()
            if not self.source.is_file():
                raise ConfigError(f"official checkpoint not found: {self.source}")
            self.sha = sha256_file(self.source)
        else:
            default = shipped_checkpoints() / self.default_checkpoints[task.format]
            self.source = require_folder(Path(model_args.get("checkpoint", default)), "MiniGPT-5 checkpoint",
                                         "checkpoint")  # fmt: skip
            cfg_path = self.source / "minigpt5_config.json"
            if not cfg_path.exists():
                raise ConfigError(f"{self.source}: not a MiniGPT-5 checkpoint (no minigpt5_config.json)")
            self._check_checkpoint()
            self.sha = sha256_folder(self.source) + ":" + self._parts_hash()

    def _check_checkpoint(self) -> None:
        """Before anything loads: the checkpoint was trained for this task (or ``cross_task=true``), its
        trainable weights are whole and hold what the loader expects, and its frozen parts are there."""
        from reference_model.config import checkpoint_stage

        read_json(self.source / "minigpt5_config.json", "the MiniGPT-5 checkpoint")
        state = read_json(self.source / "state.json", "the MiniGPT-5 checkpoint")
        check_trained_task(state.get("task"), self.task, self.source, self.model_args)
        stage2 = checkpoint_stage(state) == 2
        fix = "copy the checkpoint again, or retrain it (scripts/train_reference.sh)"
        check_safetensors(self.source / "trainable.safetensors", required=("tokens.embed", "tokens.head"),
                          prefixes=("mapper.", *(("lora.",) if stage2 else ())), fix=fix)  # fmt: skip

    def _parts_hash(self) -> str:
        """The frozen parts named by the checkpoint's config also determine outputs; each must be there, whole."""
        from reference_model.config import MiniGPT5Config

        cfg = MiniGPT5Config.load(self.source)
        parts = (("lm_path", cfg.lm_path), ("t2i_path", cfg.t2i_path), ("vision_path", cfg.vision_path))
        for field, p in parts:
            if not Path(p).is_dir():
                raise ConfigError(f"{self.source}: its {field} {p} (minigpt5_config.json) is missing; put the "
                                  "backbones back (reference_model/checkpoints/backbones) or fix the path")  # fmt: skip
            check_folder(p, "copy the backbones again (reference_model/checkpoints/backbones)")
        return ",".join(sha256_folder(Path(p))[:16] for _, p in parts)

    def settings_used(self, requested: GenerationConfig) -> tuple[str, ...]:
        """All decoding and sampling settings; greedy decoding (--do-sample false) reads no temperature / top-p."""
        if requested.do_sample is False:
            return tuple(u for u in self.uses if u not in ("temperature", "top_p"))
        return self.uses

    def _config(self) -> Any:
        from reference_model.config import MiniGPT5Config, paper_preset

        return paper_preset() if "official" in self.model_args else MiniGPT5Config.load(self.source)

    def documented_defaults(self) -> GenerationConfig:
        """The checkpoint's own settings (minigpt5_config.json; an official checkpoint: the paper preset), with
        sampled decoding as in the official code."""
        cfg = self._config()
        return GenerationConfig(
            guidance_scale=float(cfg.guidance_scale),
            num_inference_steps=int(cfg.num_inference_steps),
            max_new_tokens=int(cfg.max_new_tokens),
            temperature=float(cfg.temperature),
            top_p=float(cfg.top_p),
            repetition_penalty=float(cfg.repetition_penalty),
            do_sample=True,
        )

    def identity(self) -> dict[str, Any]:
        out: dict[str, Any] = {"adapter": self.name, "sha256": self.sha, "model_args": self.portable_args()}
        if "official" not in self.model_args:
            cfg = self._config()
            out["checkpoint"] = {k: getattr(cfg, k) for k in ("learned_null_condition", "voken_hidden_offset")}
        return out

    def load(self) -> None:
        if self.model is not None:
            return
        if "official" in self.model_args:
            import tempfile

            from reference_model.convert_official import convert_file
            from reference_model.modeling import load_checkpoint

            tmp = Path(tempfile.mkdtemp(prefix="mg5-official-"))
            convert_file(self.source, 1 if "stage1" not in self.model_args else 2, tmp,
                         stage1_ckpt=self.model_args.get("stage1"), lm_path=self.model_args["lm"],
                         t2i_path=self.model_args["t2i"], vision_path=self.model_args["vision"])  # fmt: skip
            self.model = load_checkpoint(tmp)
        else:
            from reference_model.modeling import load_checkpoint

            self.model = load_checkpoint(self.source)
        self.model.to(self.device)

    def source_of(self, sample: Sample) -> tuple[str, list[str]]:
        fmt = self.task.format
        return (
            vist_source(sample)
            if fmt == "vist"
            else mmdialog_source(sample)
            if fmt == "mmdialog"
            else cc3m_source(sample)
        )

    def generate(self, samples: Sequence[Sample], config: GenerationConfig, generators: Sequence[Any]) -> list[Output]:
        from PIL import Image

        self.load()
        inputs = []
        for s in samples:
            src, paths = self.source_of(s)
            inputs.append(interleave(src, [Image.open(p).convert("RGB") for p in paths]))
        # every setting explicit (resolved by ``resolve``): the model's own config fallbacks are never reached
        text_kw = {k: v for k, v in (("max_new_tokens", config.max_new_tokens), ("temperature", config.temperature),
                                     ("top_p", config.top_p), ("repetition_penalty", config.repetition_penalty),
                                     ("do_sample", config.do_sample)) if v is not None}  # fmt: skip
        outs = self.model.generate(inputs, list(generators), guidance_scale=config.guidance_scale,
                                   num_inference_steps=config.num_inference_steps,
                                   force_generation=self.force_generation,
                                   **text_kw)  # fmt: skip
        result: list[Output] = []
        for segs in outs:
            result.append([("text", s["text"]) if "text" in s else ("image", s["image"]) for s in segs])
        return result
