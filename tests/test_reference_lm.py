"""reference_model.lm: the world tokenizer and a few pretraining steps of a tiny LLaMA."""

from __future__ import annotations

from pathlib import Path

import torch

from reference_model.lm import SPECIAL, build_lm, train_tokenizer, world_texts


def test_world_texts_and_tokenizer(small_world: Path) -> None:
    texts = world_texts(small_world)
    assert any(t.startswith("###Human:") for t in texts) and any(" ." in t for t in texts)
    tok = train_tokenizer(texts, vocab_size=400)
    for s in SPECIAL:
        assert len(tok(s, add_special_tokens=False)["input_ids"]) == 1, s
    ids = tok("a big red circle at the top left .", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "a big red circle at the top left ."
    assert "[IMG0]" not in tok.get_vocab()  # vokens are added by add_vokens, not by pretraining


def test_few_steps_reduce_the_loss(small_world: Path) -> None:
    tok = train_tokenizer(world_texts(small_world), vocab_size=400)
    torch.manual_seed(0)
    lm = build_lm(len(tok), hidden=64, layers=2, heads=4)
    batch = tok(world_texts(small_world)[:8], padding="max_length", max_length=24, truncation=True, return_tensors="pt")
    x = batch["input_ids"]
    labels = x.masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        loss = lm(input_ids=x, attention_mask=batch["attention_mask"], labels=labels).loss
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first
