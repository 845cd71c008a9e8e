"""Convert the released official MiniGPT-5 checkpoints into this project's checkpoint format.

The official release (README of ``eric-ai-lab/MiniGPT-5``, now ``UCSB-AI/MiniGPT-5``) ships three PyTorch
Lightning files: ``stage1_cc3m.ckpt``, ``stage2_vist.ckpt`` and ``stage2_mmdialog.ckpt``. They hold only the
trainable tensors, so converting them lets the reference model start from the authors' weights instead of
retraining both stages.

Where the official key names come from (official repo, read at commits ``77bcb64`` (Oct 2023, the release) and
``21308c1`` (Mar 2024); the names are identical in both):

* ``model.py``, ``class MiniGPT5_Model(LightningModule)``: the Lightning module, so every key is an attribute
  path below it. Its attributes (all confirmed):

  - ``fc = nn.Sequential(Linear(4096, 1024), GELU(), Linear(1024, 1024))`` -> ``fc.0.weight`` (1024, 4096),
    ``fc.0.bias``, ``fc.2.weight`` (1024, 1024), ``fc.2.bias``;
  - ``llm_to_t2i_mapping = nn.Transformer(batch_first=True, norm_first=True, d_model=1024, num_encoder_layers=4,
    num_decoder_layers=4, dim_feedforward=4096, dropout=0.0)`` (nhead = torch default 8) ->
    ``llm_to_t2i_mapping.<standard nn.Transformer key>``, the same layout as ``VokenMapper.transformer``;
  - ``t2i_decoder_prompt = nn.Parameter(torch.randn(1, 77, 1024))``: the learned queries;
  - ``model = MiniGPT5.from_config(...)`` (``minigpt4/models/mini_gpt5.py``, subclass of ``MiniGPT4`` in
    ``minigpt4/models/mini_gpt4.py``), whose LLM is ``self.llama_model`` -> prefix ``model.llama_model.``.
* ``model.py``, ``MiniGPT5_Model.on_save_checkpoint``: deletes every ``state_dict`` entry that is not a parameter
  with ``requires_grad``. Hence what each stage stores:

  - stage 1 (``constants.py``: ``USE_LORA = IS_STAGE2`` -> no PEFT): ``mini_gpt5.py`` sets ``requires_grad`` on the
    LLaMA parameters whose name contains ``lm_head`` or ``embed_tokens``, so the file has ``fc.*``,
    ``llm_to_t2i_mapping.*``, ``t2i_decoder_prompt``, ``model.llama_model.model.embed_tokens.weight`` and
    ``model.llama_model.lm_head.weight`` (both full (32009, 4096) matrices, fp32);
  - stage 2: ``MiniGPT5_Model.__init__`` freezes ``fc`` and ``t2i_decoder_prompt`` when ``IS_STAGE2``, so the
    stage-2 files do **not** contain them: they come from the stage-1 file, exactly as the official
    ``examples/playground.py`` does (load stage 1, then ``load_state_dict(stage2, strict=False)``). See
    ``merge_stage1``. ``mini_gpt5.py`` wraps the LLaMA with ``get_peft_model(LoraConfig(r=8, lora_alpha=16,
    lora_dropout=0.05, target_modules=["q_proj", "v_proj"], bias="none", modules_to_save=["lm_head",
    "embed_tokens"]))`` and freezes the ``original_module`` copies, so the file has ``llm_to_t2i_mapping.*``,
    ``model.llama_model.base_model.model.model.layers.{i}.self_attn.{q,v}_proj.lora_{A,B}.default.weight`` and the
    trainable PEFT copies ``model.llama_model.base_model.model.model.embed_tokens.modules_to_save.default.weight``
    and ``model.llama_model.base_model.model.lm_head.modules_to_save.default.weight``.
* New token rows: ``mini_gpt5.py`` adds ``ALL_IMG_TOKENS + ["<ImageHere>"]`` (``constants.py``:
  ``[IMG0]``..``[IMG7]``) as special tokens to the 32000-token Vicuna v0 vocabulary, giving ids 32000..32008 in
  that order. Only those rows are trained (gradient mask), so only they are converted.

Not confirmed, hence accepted as documented aliases:

* The LLaMA layout below ``llama_model`` (``model.embed_tokens``, ``model.layers.{i}.self_attn.{q,v}_proj``,
  ``lm_head``) comes from MiniGPT-5's copy of the HF LLaMA code, which is not in the searchable index; it is
  inferred from the attribute paths ``mini_gpt5.py`` uses and from MiniGPT-4's copy
  (``Vision-CAIR/MiniGPT-4: minigpt4/models/modeling_llama.py``, HF transformers layout).
* The PEFT version that wrote the released files is unpinned (``requirements.txt``: ``peft``). PEFT >= 0.3 puts the
  adapter name in the key (``lora_A.default.weight``, ``modules_to_save.default.weight``); older releases did not,
  so ``lora_A.weight`` / ``modules_to_save.weight`` are accepted too.
* Keys saved through a wrapper (DDP ``module.``, Lightning ``_forward_module.``) are accepted with that prefix
  stripped. The frozen PEFT ``original_module`` copies, if a file has them, are ignored.
* Whether the released stage-2 files really lack ``fc``/``t2i_decoder_prompt`` (the code says so) could not be
  checked against the files themselves; both cases work.

Output (this project's checkpoint format): ``mapper.<VokenMapper key>``, ``tokens.embed`` / ``tokens.head``
((num_vokens + 1, d_llm): the rows of [IMG0]..[IMG7], <ImageHere>) and, in stage 2, ``lora.<key of
peft.get_peft_model_state_dict>`` (e.g. ``lora.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from reference_model.config import MapperConfig, paper_preset
from reference_model.mapper import VokenMapper

# official key names (see the module docstring for the source of each)
FC_PREFIX = "fc."
MAPPING_PREFIX = "llm_to_t2i_mapping."
QUERIES_KEY = "t2i_decoder_prompt"
LLM_PREFIX = "model.llama_model."
EMBED_KEYS = (  # first: stage 1 (no PEFT); then the stage-2 PEFT trainable copy; then the pre-0.3 PEFT alias
    "model.llama_model.model.embed_tokens.weight",
    "model.llama_model.base_model.model.model.embed_tokens.modules_to_save.default.weight",
    "model.llama_model.base_model.model.model.embed_tokens.modules_to_save.weight",
)
HEAD_KEYS = (
    "model.llama_model.lm_head.weight",
    "model.llama_model.base_model.model.lm_head.modules_to_save.default.weight",
    "model.llama_model.base_model.model.lm_head.modules_to_save.weight",
)
LORA_RE = re.compile(
    r"^model\.llama_model\.base_model\.model\.model\.layers\.(\d+)\.self_attn\.(q_proj|v_proj)"
    r"\.lora_(A|B)(?:\.default)?\.weight$"
)
WRAPPER_PREFIXES = ("module.", "_forward_module.")
STAGE1_ONLY_HINT = (
    "official stage-2 checkpoints do not store fc.* and t2i_decoder_prompt (frozen in stage 2, dropped by "
    "on_save_checkpoint): merge the stage-1 checkpoint first (merge_stage1, or --stage1-ckpt on the command line)"
)


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in WRAPPER_PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def normalize_keys(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip training-wrapper prefixes, so files saved through DDP/Lightning wrappers map like the released ones."""
    out: dict[str, torch.Tensor] = {}
    for k, v in official.items():
        nk = _strip_wrappers(k)
        if nk in out:
            raise ValueError(f"official key {k!r} collides with another key after stripping wrapper prefixes")
        out[nk] = v
    return out


def _lora_target_key(layer: int, proj: str, ab: str) -> str:
    return f"lora.base_model.model.model.layers.{layer}.self_attn.{proj}.lora_{ab}.weight"


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def convert_state_dict(
    official: Mapping[str, torch.Tensor],
    stage: int,
    num_vokens: int = 8,
    base_vocab: int = 32000,
    *,
    d_llm: int = 4096,
    mapper: MapperConfig | None = None,
    llm_layers: int = 32,
    lora_r: int = 8,
) -> dict[str, torch.Tensor]:
    """Map an official stage-1/2 ``state_dict`` onto the project format; all problems are reported at once.

    Defaults are the paper shapes (Vicuna-7B, paper mapper); the keyword-only arguments exist so the mapping can
    be checked on small tensors. Works on ``meta`` tensors. For stage 2 the dict must also hold ``fc.*`` and
    ``t2i_decoder_prompt`` from the stage-1 file (see ``merge_stage1``).
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    mcfg = mapper if mapper is not None else paper_preset().mapper
    c = _Mapping(normalize_keys(official))
    n_new = num_vokens + 1  # [IMG0]..[IMG{n-1}] and <ImageHere>
    with torch.device("meta"):
        expected_mapper = {k: _shape(v) for k, v in VokenMapper(d_llm=d_llm, cfg=mcfg).state_dict().items()}
    for key, shape in expected_mapper.items():
        if key.startswith("fc."):
            c.take(FC_PREFIX + key[len("fc.") :], "mapper." + key, shape)
        elif key.startswith("transformer."):
            c.take(MAPPING_PREFIX + key[len("transformer.") :], "mapper." + key, shape)
        elif key == "queries":
            c.take(QUERIES_KEY, "mapper.queries", shape)
        else:  # pragma: no cover - VokenMapper grew a tensor this converter does not know
            raise AssertionError(f"no official source known for VokenMapper key {key!r}")
    _take_token_rows(c, base_vocab, n_new, d_llm)
    if stage == 2:
        _take_lora(c, llm_layers, d_llm, lora_r)
    c.raise_problems(stage)
    return c.out


class _Mapping:
    """An official state_dict being mapped: what was taken (``out``), and every problem found, reported at once."""

    def __init__(self, src: Mapping[str, torch.Tensor]) -> None:
        self.src = src
        self.out: dict[str, torch.Tensor] = {}
        self.missing: list[str] = []
        self.shape_errors: list[str] = []
        self.conflicts: list[str] = []
        self.used: set[str] = set()

    def take(self, src_key: str, dst_key: str, shape: tuple[int, ...]) -> None:
        if src_key not in self.src:
            self.missing.append(src_key)
            return
        self.used.add(src_key)
        t = self.src[src_key]
        if _shape(t) != shape:
            self.shape_errors.append(f"{src_key}: expected shape {shape}, found {_shape(t)}")
            return
        self.out[dst_key] = t

    def raise_problems(self, stage: int) -> None:
        ignored = {k for k in self.src if ".original_module." in k}  # frozen PEFT originals: never the trained copy
        unexpected = sorted(set(self.src) - self.used - ignored)
        problems: list[str] = []
        if self.missing:
            problems.append("missing official keys:\n  " + "\n  ".join(self.missing))
            if stage == 2 and any(k.startswith(FC_PREFIX) or k == QUERIES_KEY for k in self.missing):
                problems.append(STAGE1_ONLY_HINT)
        if unexpected:
            lora_only = stage == 1 and any(LORA_RE.match(k) for k in unexpected)
            note = " (LoRA keys only exist in stage 2)" if lora_only else ""
            problems.append(f"unexpected official keys{note}:\n  " + "\n  ".join(unexpected))
        if self.shape_errors:
            problems.append("shape mismatches:\n  " + "\n  ".join(self.shape_errors))
        if self.conflicts:
            problems.append("conflicting official keys:\n  " + "\n  ".join(self.conflicts))
        if problems:
            raise ValueError(f"cannot convert official stage-{stage} checkpoint:\n" + "\n".join(problems))


def _take_token_rows(c: _Mapping, base_vocab: int, n_new: int, d_llm: int) -> None:
    """The rows of the new tokens ([IMG0].., <ImageHere>) of the LM's input embedding and output head."""
    full = (base_vocab + n_new, d_llm)
    for candidates, dst in ((EMBED_KEYS, "tokens.embed"), (HEAD_KEYS, "tokens.head")):
        present = [k for k in candidates if k in c.src]
        if not present:
            c.missing.append(" or ".join(candidates))
            continue
        if len(present) > 1:
            c.conflicts.append(
                f"ambiguous source for {dst}: several official keys present: {present} "
                "(combine stage-1 and stage-2 files with merge_stage1, not a plain dict update)"
            )
            c.used.update(present)
            continue
        key = present[0]
        c.used.add(key)
        t = c.src[key]
        if _shape(t) != full:
            c.shape_errors.append(
                f"{key}: expected shape {full} (base vocab {base_vocab} + {n_new} new tokens, d {d_llm}), "
                f"found {_shape(t)}"
            )
            continue
        c.out[dst] = t[base_vocab : base_vocab + n_new].clone()  # rows of [IMG0]..[IMG7], <ImageHere>


def _take_lora(c: _Mapping, llm_layers: int, d_llm: int, lora_r: int) -> None:
    """Stage 2's LoRA A and B of every layer's q_proj and v_proj."""
    lora_src: dict[tuple[int, str, str], list[str]] = {}
    for k in c.src:
        m = LORA_RE.match(k)
        if m:
            lora_src.setdefault((int(m.group(1)), m.group(2), m.group(3)), []).append(k)
    for layer in range(llm_layers):
        for proj in ("q_proj", "v_proj"):
            for ab, shape in (("A", (lora_r, d_llm)), ("B", (d_llm, lora_r))):
                keys = lora_src.get((layer, proj, ab), [])
                canonical = f"{LLM_PREFIX}base_model.model.model.layers.{layer}.self_attn.{proj}.lora_{ab}"
                if not keys:
                    c.missing.append(f"{canonical}.default.weight")
                elif len(keys) > 1:
                    c.conflicts.append(f"ambiguous source for {canonical}: several official keys: {keys}")
                    c.used.update(keys)
                else:
                    c.take(keys[0], _lora_target_key(layer, proj, ab), shape)


def merge_stage1(stage1: Mapping[str, torch.Tensor], stage2: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add the stage-1 ``fc.*`` and ``t2i_decoder_prompt`` to a stage-2 dict, as the official loader does.

    The official code loads stage 1 and then stage 2 on top (``strict=False``); the only stage-1 tensors that
    survive are the ones stage 2 froze. Stage-1 LLM keys are left out: stage 2 has its own trained PEFT copies.
    """
    s1, out = normalize_keys(stage1), normalize_keys(stage2)
    for k, v in s1.items():
        if (k.startswith(FC_PREFIX) or k == QUERIES_KEY) and k not in out:
            out[k] = v
    return out


def load_official(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read an official ``.ckpt`` (or a bare state dict / ``.safetensors``) and return its tensor ``state_dict``.

    ``weights_only`` loading is used because checkpoints from the internet can run code when unpickled; pass
    ``allow_pickle=True`` only for a file you trust if it holds non-tensor objects. The file is memory-mapped
    where possible, since Lightning files also carry optimizer states that are not needed.
    """
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(p)))
    try:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:  # legacy (non-zip) serialisation cannot be memory-mapped
            if "mmap" not in str(e).lower() and "zip" not in str(e).lower():
                raise
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not allow_pickle:
            raise ValueError(
                f"{p}: cannot be read with weights_only=True ({str(e).splitlines()[0]}); if you trust the file, "
                "pass allow_pickle=True (--allow-pickle)"
            ) from e
        obj = torch.load(p, map_location="cpu", weights_only=False)
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(sd, Mapping):
        raise ValueError(f"{p}: expected a dict (or a Lightning checkpoint with 'state_dict'), found {type(sd)}")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{p}: state_dict entries that are not tensors: {bad[:10]}")
    return dict(sd)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hash in 1 MiB chunks (the official files are several GB with optimizer states)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write to a temp file in the same folder, then rename, so a crash never leaves a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def convert_file(
    ckpt: str | os.PathLike[str],
    stage: int,
    out: str | os.PathLike[str],
    *,
    stage1_ckpt: str | os.PathLike[str] | None = None,
    lm_path: str = "",
    t2i_path: str = "",
    vision_path: str = "",
    allow_pickle: bool = False,
    num_vokens: int = 8,
    base_vocab: int = 32000,
    d_llm: int = 4096,
    mapper: MapperConfig | None = None,
    llm_layers: int = 32,
    lora_r: int = 8,
) -> Path:
    """Convert one official file into FOLDER/{trainable.safetensors, minigpt5_config.json, state.json}.

    The shape arguments go to ``convert_state_dict`` (tests use small shapes); the written config is always the
    paper preset, because the official checkpoints are paper-sized.
    """
    from safetensors.torch import save_file

    folder = Path(out)
    official = load_official(ckpt, allow_pickle=allow_pickle)
    if stage1_ckpt is not None:
        official = merge_stage1(load_official(stage1_ckpt, allow_pickle=allow_pickle), official)
    converted = convert_state_dict(
        official, stage, num_vokens, base_vocab, d_llm=d_llm, mapper=mapper, llm_layers=llm_layers, lora_r=lora_r
    )
    tensors = {k: v.detach().contiguous() for k, v in converted.items()}

    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / "trainable.safetensors", lambda tmp: save_file(tensors, tmp))
    paper_preset(lm_path=lm_path, t2i_path=t2i_path, vision_path=vision_path).save(folder)
    state: dict[str, object] = {
        "stage": f"stage{stage}",
        "source": "official",
        "source_sha256": sha256_file(ckpt),
        "converted_keys": len(tensors),
    }
    if stage1_ckpt is not None:
        state["stage1_source_sha256"] = sha256_file(stage1_ckpt)
    _atomic_write(folder / "state.json", lambda tmp: Path(tmp).write_text(json.dumps(state, indent=2) + "\n"))
    return folder


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: python -m reference_model.convert_official CKPT --stage {1,2} --out FOLDER."""
    ap = argparse.ArgumentParser(
        prog="python -m reference_model.convert_official",
        description="Convert a released official MiniGPT-5 Lightning checkpoint (stage 1 or 2) into this "
        "project's format: FOLDER/trainable.safetensors, minigpt5_config.json (paper preset) and state.json.",
        epilog="examples:\n"
        "  python -m reference_model.convert_official weights/stage1_cc3m.ckpt --stage 1 --out ckpt/official_s1 \\\n"
        "      --lm models/vicuna-7b --t2i models/sd-2-1-base --vision models/minigpt4-vision\n"
        "  python -m reference_model.convert_official weights/stage2_vist.ckpt --stage 2 \\\n"
        "      --stage1-ckpt weights/stage1_cc3m.ckpt --out ckpt/official_vist\n"
        "Official stage-2 files lack fc.* and t2i_decoder_prompt (frozen in stage 2): pass --stage1-ckpt.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("ckpt", help="official .ckpt file (Lightning checkpoint with a 'state_dict' entry)")
    ap.add_argument("--stage", type=int, choices=(1, 2), required=True, help="training stage of CKPT")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--stage1-ckpt", default=None, help="stage-1 .ckpt supplying fc and the queries for --stage 2")
    ap.add_argument("--lm", default="", help="Vicuna-7B v0 folder recorded in the config (lm_path)")
    ap.add_argument("--t2i", default="", help="SD-2.1-base folder recorded in the config (t2i_path)")
    ap.add_argument("--vision", default="", help="vision path recorded in the config (vision_path)")
    ap.add_argument("--allow-pickle", action="store_true", help="allow full unpickling (only for trusted files)")
    args = ap.parse_args(argv)
    if args.stage == 1 and args.stage1_ckpt:
        ap.error("--stage1-ckpt is only meaningful with --stage 2")
    try:
        folder = convert_file(
            args.ckpt,
            args.stage,
            args.out,
            stage1_ckpt=args.stage1_ckpt,
            lm_path=args.lm,
            t2i_path=args.t2i,
            vision_path=args.vision,
            allow_pickle=args.allow_pickle,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
