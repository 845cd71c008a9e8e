"""The metric conventions the leaderboard exposes beside the defaults (docs/metrics.md):

- ``rouge_l_minigpt5``: the official MiniGPT-5 ROUGE-L, the ``rouge`` package (case-sensitive, sentences split
  at '.', words at spaces) on the text before the first image, as metric.py's ``Rouge().get_scores(pred, gt)``;
  ``rouge_l`` (rouge-score: lower-cased, its own tokenizer) differs from it by up to 1.0 on a pair. Flagged.
- ``clip_score_i`` / ``clip_score_t``: the torchmetrics / Hessel et al. CLIPScore convention, 100 x max(cos, 0),
  of CLIP-I and CLIP-T. A missing image scores 0, the floor of that range, so (unlike the raw cosine, where a drawn
  but wrong image can score below a missing one) a missing image never outranks a drawn one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mg5bench.core.errors import ConfigError
from mg5bench.metrics.base import FeatureBank, ScoreItem
from mg5bench.metrics.clip import ClipI, ClipT
from mg5bench.metrics.text import _TextMetric


@lru_cache(maxsize=1)
def _rouge_package() -> Any:
    from rouge import Rouge

    return Rouge(metrics=["rouge-l"])


def rouge_l_official(hyp: str, ref: str) -> float:
    """The F of the ``rouge`` package's ROUGE-L (summary-level union LCS over '.'-split sentences), as the official
    metric.py computes it; 0 where the package refuses the input (a text of only '.' has no sentence).

    The package rebuilds each sentence pair's LCS recursively (one call per word of the two sentences) from a
    quadratic table, so a sentence longer than ``limits.MAX_ROUGE_SENTENCE_WORDS`` words is refused (a ConfigError)
    and the interpreter's recursion limit is raised to what the pair needs while it runs."""
    import sys

    from mg5bench.core.limits import MAX_ROUGE_SENTENCE_WORDS

    longest = max((len(s.split()) for t in (hyp, ref) for s in t.split(".") if s), default=0)
    if longest > MAX_ROUGE_SENTENCE_WORDS:
        raise ConfigError(f"rouge_l_minigpt5: a sentence of {longest} words, more than the {MAX_ROUGE_SENTENCE_WORDS} "
                          "the rouge package's recursive LCS is run on (fix: score it with rouge_l, which takes any "
                          "length, i.e. leave rouge_l_minigpt5 out of --metrics)")  # fmt: skip
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 2 * longest + 1000))
    try:
        return float(_rouge_package().get_scores(hyp, ref)[0]["rouge-l"]["f"])
    except ValueError:
        return 0.0
    finally:
        sys.setrecursionlimit(limit)


class RougeLMiniGPT5(_TextMetric):
    """The official ROUGE-L, flagged: the rouge package's F on the text before the first image (case-sensitive,
    '.'-split sentences). Higher is better."""

    name = "rouge_l_minigpt5"
    keys = ("rouge_l_minigpt5",)
    variant = "official: the rouge package's rouge-l F (case-sensitive, its own tokenizer), text before the image"
    flag = "compat: the rouge package's ROUGE-L (case-sensitive, '.'-split sentences); not rouge-score's ROUGE-L"
    official_text = True

    def score(self, ref: str, hyp: str) -> dict[str, float]:
        return {self.name: rouge_l_official(hyp, ref)}

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        for item in items:  # one at a time, so that a refused text names its sample
            try:
                super().update([item], bank)
            except ConfigError as e:
                raise ConfigError(f"sample {item.id}: {e}") from None


class _ClipScore:
    """100 x max(cos, 0) of a cosine metric's per-sample values (missing image: 0, the floor)."""

    def update(self, items: Sequence[ScoreItem], bank: FeatureBank) -> None:
        super().update(items, bank)  # type: ignore[misc]
        self.values = [v if np.isnan(v) else 100.0 * max(v, 0.0) for v in self.values]  # type: ignore[attr-defined]


class ClipScoreI(_ClipScore, ClipI):
    """CLIP-I in the CLIPScore convention (torchmetrics / Hessel et al.): 100 x max(cos, 0); a missing image scores 0,
    the floor. Higher is better."""

    name = "clip_score_i"
    variant = "torchmetrics / Hessel CLIPScore convention of CLIP-I: 100 x max(cos, 0); missing image = 0 (floor)"


class ClipScoreT(_ClipScore, ClipT):
    """CLIP-T in the CLIPScore convention: 100 x max(cos(caption, image), 0); a missing image scores 0, the floor.
    Higher is better."""

    name = "clip_score_t"
    variant = "torchmetrics / Hessel CLIPScore: 100 x max(cos(caption, image), 0); missing image = 0 (floor)"
