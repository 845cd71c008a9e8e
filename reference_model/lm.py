"""The tiny language backbone of the embedded world: a byte-level BPE tokenizer with MiniGPT-5's special
tokens, and a LLaMA-architecture causal LM (transformers ``LlamaForCausalLM``) pretrained on the world's
text (captions, stories, dialogs in the ``###Human: ... ###Assistant: ...`` convention).

Reads the real file formats directly (imports nothing from mg5bench).

    python -m reference_model.lm --world <world folder> --out runs/lm --steps 3000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from reference_model.schedule import warmup_cosine

# Only the base specials: the vokens and <ImageHere> are added later by reference_model.vokens.add_vokens, with
# mean-initialised rows, exactly as MiniGPT-5 adds them to Vicuna.
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>"]


def world_texts(world: Path, split: str = "train") -> list[str]:
    """Training documents from a world folder in the real formats."""
    docs: list[str] = []
    with open(world / "CC3M" / f"cc3m_{split}.tsv", encoding="utf-8") as f:
        docs += [row[0] for row in list(csv.reader(f, delimiter="\t"))[1:]]
    stories = json.loads((world / "VIST" / f"{split}_cleaned.json").read_text(encoding="utf-8"))
    docs += [" ".join(step["caption"] for step in steps) for steps in stories.values()]
    path = world / "MMDialog" / split / f"{split}_conversations.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        conv = json.loads(line)
        turns = []
        for i, t in enumerate(conv["conversation"]):
            text = " ".join(e["__TEXT__"] for e in t["turn"] if "__TEXT__" in e)
            turns.append(f"###{'Assistant' if i % 2 else 'Human'}: {text}")
        docs.append(" ".join(turns))
    return docs


def train_tokenizer(texts: list[str], vocab_size: int = 1024) -> Any:
    """Byte-level BPE; the special tokens become single ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator([*texts, "###Human: ###Assistant: <Img></Img>"], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
    )  # fmt: skip


def build_lm(vocab_size: int, hidden: int = 256, layers: int = 4, heads: int = 4, max_len: int = 512) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 16 * 16,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=max_len, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      tie_word_embeddings=False)  # fmt: skip
    return LlamaForCausalLM(cfg)


def pretrain(
    world: Path, out: Path, steps: int, batch: int = 16, seq: int = 128, lr: float = 1e-3, seed: int = 0
) -> dict[str, Any]:
    """Next-token pretraining on packed world text; resumes from out/lm_state.pt; saves HF folders."""
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    texts = world_texts(world, "train")
    tok_dir = out / "tokenizer"
    if tok_dir.exists():
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tok = train_tokenizer(texts)
        tok.save_pretrained(tok_dir)
    stream = [i for t in texts for i in [tok.bos_token_id, *tok(t)["input_ids"], tok.eos_token_id]]
    data = torch.tensor(stream[: len(stream) // seq * seq]).view(-1, seq)  # (N, seq)
    torch.manual_seed(seed)
    lm = build_lm(len(tok))
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    state_path = out / "lm_state.pt"
    start, log = 0, []
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        lm.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start, log = st["step"], st["log"]
    gen = torch.Generator().manual_seed(seed + start)
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="lm", unit="step")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, steps, lr, 100)
        x = data[torch.randint(0, len(data), (batch,), generator=gen)]
        loss = lm(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        log.append(float(loss))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(log[-50:]) / len(log[-50:]):.3f}")
        if (step + 1) % 500 == 0 or step + 1 == steps:
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": lm.state_dict(), "opt": opt.state_dict(), "step": step + 1, "log": log}, tmp)
            os.replace(tmp, state_path)
    lm.save_pretrained(out / "lm")
    tok.save_pretrained(out / "lm")
    return {
        "steps": steps,
        "wall_s": round(time.time() - t0, 1),
        "final_loss": sum(log[-100:]) / max(len(log[-100:]), 1),
        "params_m": round(sum(p.numel() for p in lm.parameters()) / 1e6, 2),
        "tokens": len(stream),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(pretrain(args.world, args.out, args.steps, args.batch)))


if __name__ == "__main__":
    main()
