"""Where does a MiniGPT-5 checkpoint lose the scene on its way to the image? Two diagnostics used in
reference_model/candidates/README.md:

``fit``: the mapper's condition against the diffusion text encoder's states of the caption that names the whole
scene (per-position MSE, the first-token state apart) and the relative error of the backbone's layout map (what
the tiny UNet reads to place the object: 0 = as from the caption, 1 = as bad as the mean layout). ``--task cc3m``
reads bare CC3M val captions (stage 1's format); ``--task vist`` reads VIST val step 0 through the ``-gen``
prompt, vokens teacher-forced right after it.

``linear``: logistic-regression probes of the current scene's first object's cell, shape and colour (on level 3
the big object, the one every caption names) from each LM layer's voken states, the mapper's first layers
(``mapper_fc``), its transformer encoder (``mapper_encoder``), its output and the layout map's pooled input (1,500
train / 500 val examples). Needs scikit-learn (installed with the dev extras through sentence-transformers).

``--level N`` reads the default world of that level (default: the embedded default's, 3); docs/world.md quotes the
shipped stage 1's probes, reference_model/candidates/README.md the level-1 candidates':

    .venv/bin/python scripts/probe_condition.py linear reference_model/checkpoints/stage1 --task cc3m

    .venv/bin/python scripts/probe_condition.py fit reference_model/candidates/stage2-vist-v3 --task vist --level 1
    .venv/bin/python scripts/probe_condition.py linear reference_model/candidates/stage2-vist-v3 --task vist --level 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mg5bench.data.world_content import DEFAULT_LEVEL


def _examples(root: Path, task: str, split: str, num_vokens: int) -> list[Any]:
    """The task's evaluation examples (CC3M: bare captions; VIST: the ``-gen`` source of every step)."""
    from reference_model.data import cc3m_examples, vist_examples

    build = cc3m_examples if task == "cc3m" else vist_examples
    return build(root / task.upper(), split, train=False, num_vokens=num_vokens)


def _states(model: Any, examples: list[Any], load: Any) -> dict[str, Any]:
    """Teacher-forced voken states per LM layer, the mapper output (G, Q, D) and the layout map's pooled input."""
    import torch

    out: dict[str, list[Any]] = {}
    for i in range(0, len(examples), 25):
        chunk = examples[i : i + 25]
        b = model.collate(chunk, load, train=False)
        with torch.no_grad():
            x, att, _, tokens = model._inputs_embeds(b)
            o = model._decoder()(inputs_embeds=x, attention_mask=att, output_hidden_states=True)
            rows = list(range(len(chunk)))
            for li, h in enumerate(o.hidden_states):
                out.setdefault(f"layer{li}", []).append(model.voken_states(h, tokens, rows).flatten(1))
            states = model.voken_states(o.last_hidden_state, tokens, rows)  # (G, n, d_llm)
            src = model.mapper.fc(states)  # (G, n, d_model)
            out.setdefault("mapper_fc", []).append(src.flatten(1))
            out.setdefault("mapper_encoder", []).append(model.mapper.transformer.encoder(src).flatten(1))
            cond = model.mapper(states)  # (G, Q, D)
            out.setdefault("cond", []).append(cond)
            out.setdefault("pooled", []).append(model.unet.conv_in.pool(cond))  # (G, D)
    return {k: torch.cat(v) for k, v in out.items()}


def fit(model: Any, root: Path, task: str, n: int) -> dict[str, float]:
    import torch

    from reference_model.data import read_vist
    from reference_model.train import ImageCache

    ex = _examples(root, task, "val", model.cfg.num_vokens)
    if task == "cc3m":
        ex = ex[:n]
        caps = [str(e.caption) for e in ex]
    else:  # step 0, where the step's caption names the whole scene
        ex = [e for e in ex if e.task.endswith("_0-gen")][:n]
        stories = read_vist(root / "VIST", "val")
        caps = [stories[e.task.rsplit("_", 1)[0]][0][0] for e in ex]
    cond = _states(model, ex, ImageCache())["cond"]
    ci = model.unet.conv_in
    with torch.no_grad():
        tgt = model.caption_targets(caps)  # (G, Q, D)
        lc, lt = ci.layout(ci.pool(cond)), ci.layout(ci.pool(tgt))
    per = ((cond - tgt) ** 2).mean((0, 2))  # (Q,)
    spread = float(((lt - lt.mean(0)) ** 2).mean())
    return {
        "n": len(ex),
        "mse": round(float(per.mean()), 4),
        "mse_first_token": round(float(per[0]), 4),
        "mse_rest": round(float(per[1:].mean()), 4),
        "mse_mean_predictor": round(float(((tgt - tgt.mean(0)) ** 2).mean()), 4),
        "layout_rel_err": round(float(((lc - lt) ** 2).mean()) / spread, 3),
    }


def linear(model: Any, root: Path, task: str, world_scenes: dict[str, Any]) -> dict[str, dict[str, float]]:
    import numpy as np

    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:  # a dev-only diagnostic
        raise SystemExit("error: 'linear' needs scikit-learn: .venv/bin/pip install scikit-learn") from e
    from reference_model.train import ImageCache

    load = ImageCache()
    feats, labels = {}, {}
    for split, n in (("train", 1500), ("val", 500)):
        ex = _examples(root, task, split, model.cfg.num_vokens)[:n]
        st = _states(model, ex, load)
        st["mapper"] = st.pop("cond").flatten(1)
        feats[split] = {k: v.numpy() for k, v in st.items()}
        objs = [world_scenes[str(Path(e.output_image).resolve())]["objects"][0] for e in ex]
        labels[split] = {a: np.array([o[a] for o in objs]) for a in ("cell", "shape", "colour")}
    res = {}
    for name in feats["train"]:
        res[name] = {a: round(float((LogisticRegression(max_iter=2000).fit(feats["train"][name], labels["train"][a])
                                     .predict(feats["val"][name]) == labels["val"][a]).mean()), 3)
                     for a in ("cell", "shape", "colour")}  # fmt: skip
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", choices=["fit", "linear"])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--task", choices=["cc3m", "vist"], default="vist")
    ap.add_argument("--n", type=int, default=100, help="fit: examples (default 100)")
    ap.add_argument("--level", type=int, default=DEFAULT_LEVEL, help=f"world level (default {DEFAULT_LEVEL})")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from mg5bench.data.world import WorldConfig, ensure_world, load_scenes
    from reference_model.modeling import load_checkpoint

    torch.set_num_threads(args.threads)
    root = ensure_world(WorldConfig(level=args.level), progress=False)
    model = load_checkpoint(args.checkpoint).eval()
    if args.probe == "fit":
        res: Any = fit(model, root, args.task, args.n)
    else:
        res = linear(model, root, args.task, load_scenes(root))
    print(
        json.dumps(
            {"checkpoint": str(args.checkpoint), "task": args.task, "level": args.level, args.probe: res}, indent=2
        )
    )


if __name__ == "__main__":
    main()
