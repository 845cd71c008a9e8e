"""Every name the suite answers to, written once: models (``--model``), metrics (``--metrics``), evaluator
schemes (``--evaluator``) and trainers (``mg5bench train``). Entries point at ``"module:attr"`` strings, so
listing them (``mg5bench ls``) imports no torch; the rest of the code looks names up here and nowhere else.
Tasks are the other kind of name; they come from the task definitions (``mg5bench.tasks``)."""

from __future__ import annotations

from typing import Any

from mg5bench.core.registry import Registry

# a model's name is given to its adapter class on lookup (``Adapter.name``)
MODELS: Registry[Any] = Registry("model", names_classes=True)
METRICS: Registry[Any] = Registry("metric")  # entry meta = the class's constructor arguments
EVALUATORS: Registry[Any] = Registry("evaluator")  # by scheme, the part of --evaluator before the first ':'
TRAINERS: Registry[Any] = Registry("trainer")

for _name, _target, _desc in (
    ("gt", "mg5bench.adapters.bounds:GroundTruth", "returns the ground-truth target (the upper bound)"),
    ("blank", "mg5bench.adapters.bounds:Blank", "empty text and a blank white image (the lower bound)"),
    ("minigpt5", "mg5bench.adapters.minigpt5:MiniGPT5Adapter", "reference MiniGPT-5 (vokens + CFG), tiny ckpts"),
    ("sd2", "mg5bench.adapters.sd2:SD2",
     "text-to-image backbone given only the caption (VIST: the step caption; MMDialog: the last text turn)"),
    ("sd2-ft", "mg5bench.adapters.sd2:SD2FT", "text-to-image backbone fine-tuned on the task's training text"),
    ("divter", "mg5bench.adapters.divter:DivterAdapter",
     "Divter-style: captioner -> text LM (reply + image description) -> text-to-image"),
    ("two-stage", "mg5bench.adapters.twostage:TwoStage",
     "MiniGPT-4-style vision-LM writes the scene text, text-to-image renders it"),
):  # fmt: skip
    MODELS.register(_name, _target, _desc)

for _name, _target, _desc, _args in (
    ("clip_i", "clip:ClipI", "image-image cosine, ground truth vs generated (missing image = 0; image rate beside it)",
     {}),
    ("clip_t", "clip:ClipT", "caption-image cosine (missing image = 0)", {}),
    ("clip_t_minigpt5", "clip:ClipTMiniGPT5", "official CLIP-T, flagged: on VIST the text is the voken string", {}),
    ("fid", "distribution:FID", "Frechet distance on evaluator (or Inception) features, torchmetrics, N reported", {}),
    ("kid", "distribution:KID", "kernel inception distance, torchmetrics, 100 subsets, seeded", {}),
    ("inception_score", "distribution:InceptionScore", "Inception Score (needs --inception weights)", {}),
    ("fid_per_story_minigpt5", "distribution:FIDPerStoryMiniGPT5",
     "official VIST task-level FID averaged over stories, flagged", {}),
    ("mm_relevance", "mmrel:MMRelevance", "MM-Relevance, feng2023 (MMDialog paper) definition",
     {"variant": "feng2023"}),
    ("mm_relevance_minigpt5", "mmrel:MMRelevance", "official MiniGPT-5 'CLIP F1', conversation level, flagged",
     {"variant": "minigpt5"}),
    ("bleu1", "text:Bleu", "word-level BLEU-1 (nltk, smoothing method1)", {"n": 1}),
    ("bleu2", "text:Bleu", "word-level BLEU-2 (nltk, smoothing method1)", {"n": 2}),
    ("bleu_char_minigpt5", "text:BleuCharMiniGPT5", "official character-level BLEU-1/2, flagged", {}),
    ("rouge_l", "text:RougeL", "ROUGE-L F-measure (rouge-score)", {}),
    ("sbert", "text:SBert", "all-MiniLM-L6-v2 sentence cosine", {}),
    ("scene_accuracy", "scene:SceneAccuracy",
     "oracle exact-scene match, per-object and per-attribute accuracy (synthetic world only)", {}),
    ("persistence", "consistency:Persistence",
     "object attributes the story kept from step k-1 to k, drawn unchanged and right (oracle; synthetic world, VIST "
     "format)", {}),
    ("context_consistency", "consistency:ContextConsistency",
     "cos(gen_k, gt_k-1) - cos(gt_k, gt_k-1) on evaluator features: stays as close to the context image as the truth "
     "(VIST format)", {}),
    ("consistency_gap", "consistency:ConsistencyGap",
     "diagnostic: cos(gen_k, gen_k-1) - cos(gt_k, gt_k-1) on evaluator features, consistency alone (VIST format)", {}),
):  # fmt: skip
    METRICS.register(_name, f"mg5bench.metrics.{_target}", _desc, **_args)

# --- metric conventions (issue 13): official ROUGE-L, CLIPScore convention -----------------------------------------
for _name, _target, _desc in (
    ("rouge_l_minigpt5", "conventions:RougeLMiniGPT5",
     "official ROUGE-L, flagged: the rouge package (case-sensitive, its own tokenizer), not rouge-score"),
    ("clip_score_i", "conventions:ClipScoreI",
     "CLIP-I as a CLIPScore: 100 x max(cos, 0) (torchmetrics / Hessel); missing image = 0, the floor"),
    ("clip_score_t", "conventions:ClipScoreT",
     "CLIP-T as a CLIPScore: 100 x max(cos, 0) (torchmetrics / Hessel); missing image = 0, the floor"),
):  # fmt: skip
    METRICS.register(_name, f"mg5bench.metrics.{_target}", _desc)
# --- end of the metric conventions block ----------------------------------------------------------------------------

for _name, _target, _desc in (
    ("embedded", "mg5bench.evaluators:embedded_source",
     "embedded: the small CLIP trained on the synthetic world (default there; refused on other data unless named)"),
    ("open_clip", "mg5bench.evaluators:open_clip_source",
     "open_clip:<model>:<weights file> or open_clip:local-dir:<folder> (OpenAI weights: a -quickgelu model)"),
    ("hf-clip", "mg5bench.evaluators:hf_clip_source", "hf-clip:<folder>: a Hugging Face CLIPModel folder"),
):  # fmt: skip
    EVALUATORS.register(_name, _target, _desc)

for _name, _target, _desc in (
    ("sd2-ft", "mg5bench.training.finetune:train_sd2ft",
     "fine-tune the text-to-image backbone on the task's training text (the sd2-ft model)"),
    ("divter", "mg5bench.training.divter:train_divter",
     "train the LoRA of Divter's text LM (context with captioned images -> reply + image description)"),
):  # fmt: skip
    TRAINERS.register(_name, _target, _desc)
