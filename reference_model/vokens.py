"""Generative vokens: the [IMG0]..[IMGn-1] tokens (and the <ImageHere> placeholder) added to the
tokenizer, the input embedding and the LM head, with only the new rows trained.

Official behaviour kept: new rows start at the mean of the existing rows (separately for the input
embedding and the LM head); training masks the gradient of the full matrices to the new rows, so
AdamW's decoupled weight decay still shrinks the original rows slightly.
``restore_original_rows`` undoes that drift when the fix is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class VokenIds:
    """Token ids of the vokens and the input-image placeholder."""

    vokens: tuple[int, ...]
    placeholder: int

    @property
    def first(self) -> int:
        return self.vokens[0]

    @property
    def new_ids(self) -> tuple[int, ...]:
        return (*self.vokens, self.placeholder)


def add_vokens(tokenizer: Any, model: Any, num_vokens: int, placeholder: str = "<ImageHere>") -> VokenIds:
    """Add the special tokens (idempotent) and resize the LM's embedding and head with mean-initialised rows."""
    tokens = [f"[IMG{i}]" for i in range(num_vokens)] + [placeholder]
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    emb = model.get_input_embeddings()
    old = emb.weight.shape[0]
    new = len(tokenizer)
    if new > old:
        model.resize_token_embeddings(new, mean_resizing=False)
        with torch.no_grad():
            in_w = model.get_input_embeddings().weight  # (V', d)
            in_w[old:] = in_w[:old].mean(0, keepdim=True)
            out = model.get_output_embeddings()
            if out is not None and out.weight.data_ptr() != in_w.data_ptr():
                out.weight[old:] = out.weight[:old].mean(0, keepdim=True)
    return VokenIds(tuple(ids[:-1]), ids[-1])


def row_mask(n_rows: int, ids: tuple[int, ...], device: torch.device | None = None) -> torch.Tensor:
    """(V, 1) float mask: 1 on the rows of ``ids``, 0 elsewhere."""
    mask = torch.zeros(n_rows, 1, device=device)
    mask[list(ids)] = 1.0
    return mask


def mask_gradients_to_new_rows(model: Any, ids: VokenIds) -> list[Any]:
    """Register hooks so that only the new token rows of the embedding and LM head get gradients."""
    handles = []
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is None:
            continue
        weight = module.weight
        weight.requires_grad_(True)
        mask = row_mask(weight.shape[0], ids.new_ids, weight.device)
        handles.append(weight.register_hook(lambda g, m=mask: g * m.to(g.dtype)))
    return handles


def snapshot_original_rows(model: Any, ids: VokenIds) -> dict[str, torch.Tensor]:
    """Copies of the original (non-voken) rows, for ``restore_original_rows``."""
    keep = {}
    for name, module in (("in", model.get_input_embeddings()), ("out", model.get_output_embeddings())):
        if module is not None:
            keep[name] = module.weight.detach().clone()
    return keep


def restore_original_rows(model: Any, ids: VokenIds, snapshot: dict[str, torch.Tensor]) -> None:
    """Write back every row except the new ones (fixes the weight-decay drift of the official code)."""
    new = list(ids.new_ids)
    with torch.no_grad():
        for name, module in (("in", model.get_input_embeddings()), ("out", model.get_output_embeddings())):
            if module is None or name not in snapshot:
                continue
            w = module.weight
            saved_new = w[new].clone()
            w.copy_(snapshot[name])
            w[new] = saved_new
