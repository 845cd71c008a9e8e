"""sd2-ft training text: what the fine-tuned baseline is trained on equals what it is prompted with."""

from __future__ import annotations

from pathlib import Path

from mg5bench.finetune import sd2ft_text, training_pairs
from mg5bench.types import Sample, Segment

T, I = Segment.text, Segment.image  # noqa: E741


def _vist(k: int) -> Sample:
    ctx = []
    for j in range(k):
        ctx += [T(f"caption {j} ."), I(f"/img/{j}.png")]
    return Sample(f"s_{k}", (*ctx, T(f"caption {k} .")), (I(f"/img/{k}.png"),), "s", {"caption": f"caption {k} ."})


def test_vist_pairs_use_the_step_caption_or_the_story_text() -> None:
    samples = [_vist(k) for k in range(3)]
    assert training_pairs(samples, "vist") == [(f"caption {k} .", Path(f"/img/{k}.png")) for k in range(3)]
    story = training_pairs(samples, "vist", context="text")
    assert story[2] == ("caption 0 . caption 1 . caption 2 .", Path("/img/2.png"))
    assert sd2ft_text(samples[2], "vist") == "caption 2 ."


def test_mmdialog_pairs_use_the_response_text_and_skip_text_only_responses() -> None:
    with_image = Sample("c_1", (T("show me a red circle", role="human"),),
                        (T("here it is", role="assistant"), I("/img/r.png", role="assistant")), "c")  # fmt: skip
    text_only = Sample("c_2", (T("thanks", role="human"),), (T("you are welcome", role="assistant"),), "c")
    assert training_pairs([with_image, text_only], "mmdialog") == [("here it is", Path("/img/r.png"))]
    assert sd2ft_text(with_image, "mmdialog") == "show me a red circle"  # test time: the last context text
