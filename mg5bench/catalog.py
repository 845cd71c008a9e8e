"""The registries of models and metrics. Entries are lazy, so ``mg5bench ls`` lists them without
importing torch. Tasks come from the cards (``tasks.py``)."""

from __future__ import annotations

from functools import partial

from mg5bench.registry import Registry

MODELS: Registry[object] = Registry("model")
METRICS: Registry[object] = Registry("metric")

for _name, _target, _desc in (
    ("gt", "mg5bench.adapters.bounds:GroundTruth", "returns the ground-truth target (the upper bound)"),
    ("blank", "mg5bench.adapters.bounds:Blank", "empty text and a blank white image (the lower bound)"),
    ("minigpt5", "mg5bench.adapters.minigpt5:MiniGPT5Adapter", "reference MiniGPT-5 (vokens + CFG), tiny ckpts"),
    (
        "sd2",
        "mg5bench.adapters.sd2:SD2",
        "text-to-image backbone given only the caption (not fine-tuned)",
    ),
    ("sd2-ft", "mg5bench.adapters.sd2:SD2FT", "text-to-image backbone fine-tuned on the task's training text"),
    (
        "divter",
        "mg5bench.adapters.divter:DivterAdapter",
        "Divter-style: captioner -> text LM (reply + image description) -> text-to-image",
    ),
    (
        "two-stage",
        "mg5bench.adapters.twostage:TwoStage",
        "MiniGPT-4-style vision-LM writes the scene text, text-to-image renders it",
    ),
):
    MODELS.register(_name, _target, _desc)


def _metric(name: str) -> object:
    from mg5bench.metrics import factory

    return factory(name)


for _name, _desc in (
    ("clip_i", "image-image cosine, ground truth vs generated (missing image = 0; image rate beside it)"),
    ("clip_t", "caption-image cosine (missing image = 0)"),
    ("clip_t_minigpt5", "official CLIP-T, flagged: on VIST the text is the voken string"),
    ("fid", "Frechet distance on evaluator (or Inception) features, torchmetrics, N reported"),
    ("kid", "kernel inception distance, torchmetrics, 100 subsets, seeded"),
    ("inception_score", "Inception Score (needs --inception weights)"),
    ("fid_per_story_minigpt5", "official VIST task-level FID averaged over stories, flagged"),
    ("mm_relevance", "MM-Relevance, feng2023 (MMDialog paper) definition"),
    ("mm_relevance_minigpt5", "official MiniGPT-5 'CLIP F1', conversation level, flagged"),
    ("bleu1", "word-level BLEU-1 (nltk, smoothing method1)"),
    ("bleu2", "word-level BLEU-2 (nltk, smoothing method1)"),
    ("bleu_char_minigpt5", "official character-level BLEU-1/2, flagged"),
    ("rouge_l", "ROUGE-L F-measure (rouge-score)"),
    ("sbert", "all-MiniLM-L6-v2 sentence cosine"),
    ("scene_accuracy", "oracle exact-scene match and per-attribute accuracy (synthetic world only)"),
):
    METRICS.register(_name, partial(_metric, _name), _desc)
