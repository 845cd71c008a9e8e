"""The feature mapper: voken hidden states -> the diffusion model's text-condition space.

h (B, n_vokens, d_llm) -> fc: Linear, GELU, Linear -> (B, n_vokens, d_model)
-> nn.Transformer(src = that, tgt = learned queries (1, Q, d_model)) -> (B, Q, d_model)
Official details kept: pre-LayerNorm, dropout 0, ReLU FFN, final LayerNorm on encoder and decoder,
no positional encodings and no masks (the decoder attends bidirectionally over the queries),
queries initialised N(0, 1), no output projection (d_model == the text encoder's hidden size).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from reference_model.config import MapperConfig


class VokenMapper(nn.Module):
    """The feature mapper (module docstring): voken hidden states (B, n, d_llm) -> the T2I text condition (B, Q,
    d_model)."""

    def __init__(self, d_llm: int, cfg: MapperConfig) -> None:
        super().__init__()
        if cfg.d_model != cfg.out_dim:
            raise ValueError(f"mapper d_model ({cfg.d_model}) must equal the text encoder width ({cfg.out_dim})")
        self.fc = nn.Sequential(nn.Linear(d_llm, cfg.fc_hidden), nn.GELU(), nn.Linear(cfg.fc_hidden, cfg.d_model))
        with warnings.catch_warnings():
            # pre-LN (the official choice) rules out torch's nested-tensor fast path, which torch announces with a
            # UserWarning on every construction; the fast path only skips padding, and the mapper has none
            warnings.filterwarnings("ignore", message="enable_nested_tensor is True", category=UserWarning)
            self.transformer = nn.Transformer(
                d_model=cfg.d_model,
                nhead=cfg.heads,
                num_encoder_layers=cfg.encoder_layers,
                num_decoder_layers=cfg.decoder_layers,
                dim_feedforward=cfg.ffn,
                dropout=0.0,
                batch_first=True,
                norm_first=True,
            )
        self.queries = nn.Parameter(torch.randn(1, cfg.num_queries, cfg.d_model))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, n_vokens, d_llm) -> (B, Q, d_model)."""
        src = self.fc(h)  # (B, n, d_model)
        tgt = self.queries.expand(h.shape[0], -1, -1)  # (B, Q, d_model)
        return self.transformer(src, tgt)  # (B, Q, d_model)

    def null_condition(self, n_vokens: int, d_llm: int) -> torch.Tensor:
        """The learned negative condition mapper(fc(0)): (1, Q, d_model)."""
        zeros = torch.zeros(1, n_vokens, d_llm, device=self.queries.device, dtype=self.queries.dtype)
        return self.forward(zeros)
