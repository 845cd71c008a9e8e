"""Every name the suite answers to besides the tasks: models (``--model``), metrics (``--metrics``), evaluator
schemes (``--evaluator``) and trainers (``mg5bench train``). Models, metrics and trainers are written here once,
each pointing at a ``"module:attr"`` string, so listing them (``mg5bench ls``) imports no torch; the evaluator
schemes are declared beside the functions that parse them (``scoring.evaluators.SCHEMES``) and listed here. Tasks
are the other kind of name; they come from the task definitions (``mg5bench.tasks``).

The direction is one way: the catalog names the adapters, metrics, evaluators and trainers; none of them imports
the catalog. What builds an object from its name (``make_metric``, ``MODELS.get``) lives here, and the stages that
need it (runs, scoring) call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mg5bench.core.registry import Registry
from mg5bench.scoring.evaluators import SCHEMES

if TYPE_CHECKING:
    from mg5bench.metrics.base import Metric, MetricContext

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
    ("clip_i", "mg5bench.metrics.clip:ClipI",
     "image-image cosine, ground truth vs generated (missing image = 0; image rate beside it)", {}),
    ("clip_t", "mg5bench.metrics.clip:ClipT", "caption-image cosine (missing image = 0)", {}),
    ("clip_t_minigpt5", "mg5bench.metrics.clip:ClipTMiniGPT5",
     "official CLIP-T, flagged: on VIST the text is the voken string", {}),
    ("clip_score_i", "mg5bench.metrics.conventions:ClipScoreI",
     "CLIP-I as a CLIPScore: 100 x max(cos, 0) (torchmetrics / Hessel); missing image = 0, the floor", {}),
    ("clip_score_t", "mg5bench.metrics.conventions:ClipScoreT",
     "CLIP-T as a CLIPScore: 100 x max(cos, 0) (torchmetrics / Hessel); missing image = 0, the floor", {}),
    ("fid", "mg5bench.metrics.distribution:FID",
     "Frechet distance on evaluator (or Inception) features, torchmetrics, N reported", {}),
    ("kid", "mg5bench.metrics.distribution:KID", "kernel inception distance, torchmetrics, 100 subsets, seeded", {}),
    ("inception_score", "mg5bench.metrics.distribution:InceptionScore",
     "Inception Score (needs --inception weights)", {}),
    ("fid_per_story_minigpt5", "mg5bench.metrics.distribution:FIDPerStoryMiniGPT5",
     "official VIST task-level FID averaged over stories, flagged", {}),
    ("mm_relevance", "mg5bench.metrics.mmrel:MMRelevance", "MM-Relevance, feng2023 (MMDialog paper) definition",
     {"variant": "feng2023"}),
    ("mm_relevance_minigpt5", "mg5bench.metrics.mmrel:MMRelevance",
     "official MiniGPT-5 'CLIP F1', conversation level, flagged", {"variant": "minigpt5"}),
    ("bleu1", "mg5bench.metrics.text:Bleu", "word-level BLEU-1 (nltk, smoothing method1)", {"n": 1}),
    ("bleu2", "mg5bench.metrics.text:Bleu", "word-level BLEU-2 (nltk, smoothing method1)", {"n": 2}),
    ("bleu_char_minigpt5", "mg5bench.metrics.text:BleuCharMiniGPT5", "official character-level BLEU-1/2, flagged", {}),
    ("rouge_l", "mg5bench.metrics.text:RougeL", "ROUGE-L F-measure (rouge-score)", {}),
    ("rouge_l_minigpt5", "mg5bench.metrics.conventions:RougeLMiniGPT5",
     "official ROUGE-L, flagged: the rouge package (case-sensitive, its own tokenizer), not rouge-score", {}),
    ("sbert", "mg5bench.metrics.text:SBert", "all-MiniLM-L6-v2 sentence cosine", {}),
    ("scene_accuracy", "mg5bench.metrics.scene:SceneAccuracy",
     "oracle exact-scene match, per-object and per-attribute accuracy (synthetic world only)", {}),
    ("persistence", "mg5bench.metrics.consistency:Persistence",
     "object attributes the story kept from step k-1 to k, drawn unchanged and right (oracle; synthetic world, VIST "
     "format)", {}),
    ("context_consistency", "mg5bench.metrics.consistency:ContextConsistency",
     "cos(gen_k, gt_k-1) - cos(gt_k, gt_k-1) on evaluator features: stays as close to the context image as the truth "
     "(VIST format)", {}),
    ("consistency_gap", "mg5bench.metrics.consistency:ConsistencyGap",
     "diagnostic: cos(gen_k, gen_k-1) - cos(gt_k, gt_k-1) on evaluator features, consistency alone (VIST format)", {}),
):  # fmt: skip
    METRICS.register(_name, _target, _desc, **_args)

for _name, (_fn, _desc) in SCHEMES.items():
    EVALUATORS.register(_name, f"{_fn.__module__}:{_fn.__name__}", _desc)

for _name, _target, _desc in (
    ("sd2-ft", "mg5bench.training.finetune:train_sd2ft",
     "fine-tune the text-to-image backbone on the task's training text (the sd2-ft model)"),
    ("divter", "mg5bench.training.divter:train_divter",
     "train the LoRA of Divter's text LM (context with captioned images -> reply + image description)"),
):  # fmt: skip
    TRAINERS.register(_name, _target, _desc)


def metric_class(name: str) -> type[Metric]:
    """The class registered as ``name`` (did-you-mean on typos), without building it: its declared capabilities
    (``needs_scenes``) decide what a scoring includes before anything is computed."""
    return METRICS.get(name)  # type: ignore[no-any-return]


def make_metric(name: str, ctx: MetricContext) -> Metric:
    """A fresh metric instance for ``name``, built with its entry's arguments."""
    metric = metric_class(name).from_context(ctx, **METRICS.entry(name).meta)
    if metric.name != name:  # pragma: no cover - an entry pointing at the wrong class or arguments
        raise AssertionError(f"catalog entry {name!r} builds a metric named {metric.name!r}; fix mg5bench/catalog.py")
    return metric
