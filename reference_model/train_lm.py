"""Pretraining of the tiny language backbone (``reference_model.lm``) on the world's text (captions, stories, dialogs
in the ``###Human: ... ###Assistant: ...`` convention), resumable (``reference_model.state``), with the
scene-tracking probe on val stories logged as it goes. Imports nothing from mg5bench.

    python -m reference_model.train_lm --world <world folder> --out runs/lm --steps 3000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from reference_model.lm import build_lm, train_tokenizer
from reference_model.schedule import warmup_cosine
from reference_model.state import resume, save_state


def pretrain(
    world: Path,
    out: Path,
    steps: int,
    batch: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    hidden: int = 256,
    layers: int = 4,
    probe_every: int = 500,
    probe_stories: int = 100,
    init: Path | None = None,
) -> dict[str, Any]:
    """Next-token pretraining on the world corpus (``world_text.corpus``: captions, stories, dialogs, the
    MiniGPT-5 prompt templates and statements of the current scene), one document per row, padded per batch
    (documents are never cut, so a state statement always sees its whole story). Resumes from
    out/lm_state.pt; every ``probe_every`` steps runs the scene-tracking probe on val stories and appends
    it to out/curve.jsonl; saves HF folders (model + tokenizer) at out/lm. ``init``: continue from an LM
    folder (its weights and tokenizer; a fresh optimizer and warmup + cosine over ``steps``), e.g. the shipped
    float16 LM when its float32 training state is gone."""
    from tqdm.auto import tqdm

    from reference_model.world_text import corpus

    out.mkdir(parents=True, exist_ok=True)
    docs = corpus(world, "train", seed)
    tok_dir = out / "tokenizer"
    if init is not None and not tok_dir.exists():  # continuing: the folder's tokenizer, saved for a resume
        from transformers import PreTrainedTokenizerFast

        PreTrainedTokenizerFast.from_pretrained(init).save_pretrained(tok_dir)
    if tok_dir.exists():
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tok = train_tokenizer(docs)
        tok.save_pretrained(tok_dir)
    rows = [[tok.bos_token_id, *tok(d)["input_ids"], tok.eos_token_id] for d in docs]
    max_len = max(len(r) for r in rows)
    torch.manual_seed(seed)
    if init is not None:
        from transformers import LlamaForCausalLM

        lm = LlamaForCausalLM.from_pretrained(init, dtype=torch.float32)
        hidden, layers = lm.config.hidden_size, lm.config.num_hidden_layers
    else:
        lm = build_lm(len(tok), hidden=hidden, layers=layers, max_len=max(512, max_len + 64))
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    state_path = out / "lm_state.pt"
    start, st = resume(state_path, {"model": lm, "opt": opt})
    log = st.get("log", [])
    gen = torch.Generator().manual_seed(seed + start)
    t0 = time.time()
    curve = out / "curve.jsonl"
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="lm", unit="step")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 200)
        pick = [rows[int(i)] for i in torch.randint(0, len(rows), (batch,), generator=gen)]
        t = max(len(r) for r in pick)
        x = torch.full((batch, t), tok.pad_token_id)  # (B, T)
        att = torch.zeros(batch, t, dtype=torch.long)
        for i, r in enumerate(pick):
            x[i, : len(r)] = torch.tensor(r)
            att[i, : len(r)] = 1
        labels = x.masked_fill(att == 0, -100)
        loss = lm(input_ids=x, attention_mask=att, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        log.append(float(loss.detach()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(log[-50:]) / len(log[-50:]):.3f}")
        if (step + 1) % probe_every == 0 or step + 1 == steps:
            lm.eval()
            probe = scene_probe(lm, tok, world, "val", probe_stories)
            lm.train()
            with open(curve, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step + 1, "loss": sum(log[-100:]) / len(log[-100:]), **probe}) + "\n")
            save_state({"model": lm.state_dict(), "opt": opt.state_dict(), "step": step + 1, "log": log}, state_path)
            bar.write(f"step {step + 1}: probe exact per step {probe['exact_per_step']}")
    lm.save_pretrained(out / "lm")
    tok.save_pretrained(out / "lm")
    lm.eval()
    return {
        "steps": steps,
        "wall_s": round(time.time() - t0, 1),
        "final_loss": sum(log[-100:]) / max(len(log[-100:]), 1),
        "params_m": round(sum(p.numel() for p in lm.parameters()) / 1e6, 2),
        "hidden": hidden,
        "layers": layers,
        "batch": batch,
        "lr": lr,
        "documents": len(rows),
        "init": str(init) if init is not None else None,
        "tokens": sum(len(r) for r in rows),
        "probe": scene_probe(lm, tok, world, "val", 200),
    }


@torch.no_grad()
def greedy_answers(lm: Any, tok: Any, prompts: list[str], max_new_tokens: int = 24, batch: int = 64) -> list[str]:
    """Greedy continuations of text prompts up to ``###`` (left-padded batches)."""
    out: list[str] = []
    dev = next(lm.parameters()).device
    for i in range(0, len(prompts), batch):
        enc = [[tok.bos_token_id, *tok(p)["input_ids"]] for p in prompts[i : i + batch]]
        t = max(len(e) for e in enc)
        x = torch.full((len(enc), t), tok.pad_token_id, device=dev)  # (B, T) left-padded
        att = torch.zeros(len(enc), t, dtype=torch.long, device=dev)
        for j, e in enumerate(enc):
            x[j, t - len(e) :] = torch.tensor(e)
            att[j, t - len(e) :] = 1
        ids = lm.generate(input_ids=x, attention_mask=att, max_new_tokens=max_new_tokens, do_sample=False,
                          pad_token_id=tok.pad_token_id)  # fmt: skip
        out += [tok.decode(s[t:], skip_special_tokens=True).split("###")[0].strip() for s in ids.tolist()]
    return out


def scene_probe(lm: Any, tok: Any, world: Path, split: str = "val", stories: int = 200) -> dict[str, Any]:
    """Does the LM track the scene through a story? After each story prefix (steps 0..k, text only) and the
    question "what does the scene look like now ?", the greedy answer is parsed back into an object and
    compared with the world's record of step k: attribute and exact accuracy per step (chance: colour 1/6,
    shape 1/3, size 1/2, cell 1/9)."""
    from reference_model.world_text import ATTRIBUTES, attribute_scores, probe_prompt, vist_stories

    data = vist_stories(world, split)[:stories]
    prompts, truths, ks = [], [], []
    for steps in data:
        for k in range(len(steps)):
            prompts.append(probe_prompt([c for c, _ in steps[: k + 1]]))
            truths.append(steps[k][1])
            ks.append(k)
    answers = greedy_answers(lm, tok, prompts)
    scores = [attribute_scores(t, a) for t, a in zip(truths, answers, strict=True)]
    n_steps = max(ks) + 1 if ks else 0
    res: dict[str, Any] = {"probe_n": len(scores)}
    for a in (*ATTRIBUTES, "exact"):
        res[a] = round(sum(s[a] for s in scores) / max(len(scores), 1), 4)
    res["exact_per_step"] = [
        round(sum(s["exact"] for s, k in zip(scores, ks, strict=True) if k == j) / max(ks.count(j), 1), 4)
        for j in range(n_steps)
    ]
    res["examples"] = [{"prompt": prompts[i].split("###Human:")[1], "answer": answers[i]} for i in range(0, 10, 2)]
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--probe-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="continue from this LM folder (weights + tokenizer; its sizes override --hidden/--layers)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = pretrain(args.world, args.out, args.steps, args.batch, args.lr, hidden=args.hidden, layers=args.layers,
                   probe_every=args.probe_every, init=args.init)  # fmt: skip
    print(json.dumps(res))


if __name__ == "__main__":
    main()
