"""The tiny language backbone of the embedded world: a byte-level BPE tokenizer with MiniGPT-5's special
tokens, and a LLaMA-architecture causal LM (transformers ``LlamaForCausalLM``) pretrained on the world's
text (captions, stories, dialogs in the ``###Human: ... ###Assistant: ...`` convention).

Reads the real file formats directly (imports nothing from mg5bench). Its pretraining and the scene-tracking
probe are in ``reference_model.train_lm``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

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
