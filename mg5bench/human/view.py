"""Small helpers the Streamlit app renders with, kept here so the app stays a thin view and they are testable
without a browser: where the app's settings come from, image loading through the study's folder guard, and
text escaping."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg5bench.core.errors import Mg5Error
from mg5bench.human.ratings import AccessError, resolve_inside_roots

ENV_DB = "MG5BENCH_HUMAN_DB"
ENV_STUDY = "MG5BENCH_HUMAN_STUDY"
DISPLAY_SIDE = 256  # small images (the synthetic world's are 48 px) are enlarged to this, pixel-exact
_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


@dataclass(frozen=True)
class AppConfig:
    """What the rating app serves: the rating database and the study (None: the latest)."""

    db: Path
    study: int | None


def app_config(environ: Mapping[str, str] | None = None) -> AppConfig | None:
    """The app's settings, passed by ``mg5bench annotate`` through the environment (Streamlit's own command line
    owns argv); None when the app was started some other way."""
    env = os.environ if environ is None else environ
    db = env.get(ENV_DB)
    if not db:
        return None
    study = env.get(ENV_STUDY)
    return AppConfig(Path(db), int(study) if study else None)


def escape_markdown(text: str) -> str:
    """Show model and data text literally (no markdown, links or HTML from a generated string)."""
    return _MD.sub(r"\\\1", text)


def load_image(roots: Mapping[str, str], segment: Mapping[str, Any], side: int = DISPLAY_SIDE) -> Any:
    """A PIL image for a segment: a blank (white) one for ``{"blank": size}``, else the file, only from inside
    the study's folders (``resolve_inside_roots`` raises AccessError otherwise). Small images are enlarged with
    nearest-neighbour so raters see the pixels the model made."""
    from PIL import Image

    if "blank" in segment:
        n = int(segment["blank"])
        im = Image.new("RGB", (n, n), (255, 255, 255))
    else:
        from mg5bench.data.io import open_image

        path = resolve_inside_roots(roots, segment)
        try:
            with open_image(path) as f:  # refused by its header when too large to decode
                im = f.convert("RGB")
        except (Mg5Error, OSError) as e:  # PIL's UnidentifiedImageError is an OSError
            raise AccessError(f"image {segment.get('image')!r} cannot be shown: {str(e)[:160]}") from None
    if max(im.size) < side:
        scale = side / max(im.size)
        im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.NEAREST)
    return im
