"""reference_model.vokens on a tiny LLaMA: single-id tokens, mean-initialised rows, gradient masking,
and the official weight-decay drift of the original rows (and its fix)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from reference_model.vokens import add_vokens, mask_gradients_to_new_rows, restore_original_rows, snapshot_original_rows


def tiny_lm() -> tuple[PreTrainedTokenizerFast, LlamaForCausalLM]:
    words = ["<unk>", "<s>", "</s>", "a", "red", "circle", "it", "moves", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      tie_word_embeddings=False)  # fmt: skip
    return hf, LlamaForCausalLM(cfg)


def test_vokens_are_single_tokens_with_mean_rows() -> None:
    tok, lm = tiny_lm()
    old_in = lm.get_input_embeddings().weight.detach().clone()
    old_out = lm.get_output_embeddings().weight.detach().clone()
    ids = add_vokens(tok, lm, 8)
    assert len(ids.vokens) == 8 and len(set(ids.new_ids)) == 9
    assert tok("a red circle [IMG0][IMG1][IMG2][IMG3][IMG4][IMG5][IMG6][IMG7]")["input_ids"][-8:] == list(ids.vokens)
    w_in, w_out = lm.get_input_embeddings().weight, lm.get_output_embeddings().weight
    assert w_in.shape[0] == w_out.shape[0] == len(tok) == 9 + 9
    for i in ids.new_ids:
        assert torch.allclose(w_in[i], old_in.mean(0)) and torch.allclose(w_out[i], old_out.mean(0))
    assert add_vokens(tok, lm, 8) == ids  # idempotent


def test_only_new_rows_learn_but_weight_decay_drifts_the_rest() -> None:
    tok, lm = tiny_lm()
    ids = add_vokens(tok, lm, 8)
    for p in lm.parameters():
        p.requires_grad_(False)
    mask_gradients_to_new_rows(lm, ids)
    snap = snapshot_original_rows(lm, ids)
    params = [lm.get_input_embeddings().weight, lm.get_output_embeddings().weight]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01)
    x = torch.tensor([tok("a red circle [IMG0][IMG1]")["input_ids"]])
    loss = lm(input_ids=x, labels=x).loss
    loss.backward()
    g = lm.get_input_embeddings().weight.grad
    old_rows = [i for i in range(g.shape[0]) if i not in ids.new_ids]
    assert g[old_rows].abs().sum() == 0 and g[list(ids.vokens[:2])].abs().sum() > 0
    opt.step()
    w = lm.get_input_embeddings().weight
    drift = (w[old_rows] - snap["in"][old_rows]).abs().max()
    assert 0 < drift < 1e-3  # the official quirk: decoupled weight decay still shrinks masked rows
    changed = w[list(ids.vokens[:2])]
    restore_original_rows(lm, ids, snap)
    assert torch.equal(w[old_rows], snap["in"][old_rows]) and torch.equal(w[list(ids.vokens[:2])], changed)
