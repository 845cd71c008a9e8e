"""The self-contained HTML leaderboard: one file, no external requests. Plots are PNGs embedded as base64, images
of the gallery too (enlarged with nearest-neighbour scaling in CSS); table columns sort on click with a few lines
of inline JavaScript."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1280px;color:#222;
line-height:1.4;padding:0 16px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:4px}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}.wide{overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" \\21C5";color:#aaa}
td.num{text-align:right;white-space:nowrap}.ci{color:#777;font-size:11px}.best{background:#e6f4e6}
tr.bound td{color:#777;font-style:italic}
.note{color:#555;font-size:13px}.warn{color:#8a4b00}
img.px{image-rendering:pixelated;image-rendering:crisp-edges;width:96px;height:96px;border:1px solid #ccc}
img.ctx{image-rendering:pixelated;width:40px;height:40px;border:1px solid #ddd;margin-right:2px}
img.plot{max-width:100%;border:1px solid #eee}
.gallery td{min-width:100px}.gallery .txt{font-size:11px;color:#444;max-width:150px}
code,pre{background:#f6f6f6;font-size:12px}pre{padding:8px;overflow-x:auto}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.from(body.rows),asc=th.dataset.dir!=='asc';
    t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});th.dataset.dir=asc?'asc':'desc';
    rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
      var nx=parseFloat(x),ny=parseFloat(y);
      if(isNaN(nx)&&isNaN(ny))return asc?String(x).localeCompare(y):String(y).localeCompare(x);
      if(isNaN(nx))return 1;if(isNaN(ny))return -1;return asc?nx-ny:ny-nx;});
    rows.forEach(function(r){body.appendChild(r)});});});});
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_uri(path: str | Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    import io

    from mg5bench.data.io import open_image

    with open_image(path) as im:  # refused by its header when too large to decode
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="PNG")
    return data_uri(buf.getvalue())


def img_tag(path: str | Path | None, cls: str = "px", alt: str = "") -> str:
    uri = image_uri(path)
    return f"<img class='{cls}' src='{uri}' alt='{esc(alt)}'>" if uri else "<span class='note'>(no image)</span>"


def leaderboard_table(table: Any, df: Any) -> str:
    """A sortable table: a cell's data-v is its value (so sorting is numeric), the best per column shaded."""
    from mg5bench.leaderboard.tables import cell_text, columns_for, display

    cols = columns_for(table)
    heads = ["model", "n"]
    for k in cols:
        sub = df[df["metric"] == k]
        up = bool(sub["higher_is_better"].iloc[0]) if len(sub) else True
        heads.append(f"{display(k)} {'↑' if up else '↓'}")
    out = [
        "<div class='wide'><table class='sortable'><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in heads)
        + "</tr></thead><tbody>"
    ]
    for order in sorted(set(df["order"])):
        sub = df[df["order"] == order].set_index("metric")
        first = sub.iloc[0]
        ns = str(int(first["n_samples"]))
        cls = " class='bound'" if first["bound"] else ""
        cells = [f"<td data-v='{esc(first['label'])}' title='{esc(first['run'])}'>{esc(first['label'])}</td>",
                 f"<td class='num' data-v='{esc(ns)}'>{esc(ns)}</td>"]  # fmt: skip
        for k in cols:
            row = sub.loc[k].to_dict() | {"metric": k, "n_table": int(first["n_samples"])}
            v = "" if row["value"] is None or row["value"] != row["value"] else f"{row['value']:.6g}"
            shade = " best" if row["best"] else ""
            cells.append(f"<td class='num{shade}' data-v='{v}'>{cell_text(row, html=True)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def gallery(samples: Sequence[Any], columns: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Rows = samples; columns = the context, the ground truth, then each run's output (image and text)."""
    heads = ["sample and context", "ground truth", *[name for name, _ in columns]]
    out = [
        "<div class='wide'><table class='gallery'><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in heads)
        + "</tr></thead>"
    ]
    out.append("<tbody>")
    for s in samples:
        ctx_imgs = "".join(img_tag(seg.value, "ctx") for seg in s.context if seg.is_image)
        texts = [seg.value for seg in s.context if seg.is_text]
        last = esc(texts[-1] if texts else "")
        ctx = f"<div><b>{esc(s.id)}</b></div><div>{ctx_imgs}</div><div class='txt'>{last}</div>"
        gt_img = next((seg.value for seg in s.target if seg.is_image), None)
        gt_txt = " ".join(seg.value for seg in s.target if seg.is_text)
        cells = [
            f"<td>{ctx}</td>",
            f"<td>{img_tag(gt_img, alt='ground truth')}<div class='txt'>{esc(gt_txt)}</div></td>",
        ]
        for _, outputs in columns:
            o = outputs.get(s.id)
            if o is None:
                cells.append("<td class='note'>not stored</td>")
                continue
            cells.append(
                f"<td>{img_tag(o.get('image'), alt='output')}<div class='txt'>{esc(o.get('text', ''))}</div></td>"
            )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body>\n{body}\n<script>{SORT_JS}</script></body></html>\n"
    )


def markdown_to_html(md: str) -> str:
    """The few Markdown constructs the report's prose uses (paragraphs, '- ' lists, tables, **bold**, *italic*,
    `code` with fences of any length, backslash escapes: ``mg5bench.core.escaping`` writes untrusted values with
    them, and they show here as the literal characters, as in any CommonMark renderer)."""
    import re

    def inline(t: str, table: bool = False) -> str:
        kept: list[str] = []

        def keep(fragment: str) -> str:
            kept.append(fragment)
            return f"\x00{len(kept) - 1}\x00"

        def literal(m: re.Match[str]) -> str:
            if m.group(1) is not None:  # a backslash escape: the character itself
                return keep(esc(m.group(1)))
            body = m.group(3)  # a code span: its content verbatim
            if body.startswith(" ") and body.endswith(" ") and body.strip():
                body = body[1:-1]
            return keep(f"<code>{esc(body.replace(chr(92) + '|', '|') if table else body)}</code>")

        # one left-to-right pass, as CommonMark reads them: an escaped backtick opens no code span, and a backslash
        # inside a code span is text
        t = re.sub(r"\\([!-/:-@\[-`{-~])|(?<!`)(`+)(.+?)(?<!`)\2(?!`)", literal, t.replace("\x00", ""))
        t = esc(t)
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        t = re.sub(r"\*(.+?)\*", r"<i>\1</i>", t)
        return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], t)

    def cells(row: str) -> list[str]:
        """A table row's cells: split at the '|' that are not escaped ('\\|' is a '|' inside a cell)."""
        inner = row.strip()
        inner = inner[1:] if inner.startswith("|") else inner
        inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
        return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]

    out: list[str] = []
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            body = [r for r in rows[1:] if not all(set(c) <= {"-", ":"} for c in r)]
            out.append("<div class='wide'><table><thead><tr>" + "".join(f"<th>{inline(c, True)}</th>" for c in rows[0])
                       + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{inline(c, True)}</td>" for c in r)
                       + "</tr>" for r in body) + "</tbody></table></div>")  # fmt: skip
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(lines[i][2:])
                i += 1
            out.append("<ul>" + "".join(f"<li>{inline(t)}</li>" for t in items) + "</ul>")
            continue
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + esc("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
        i += 1
    return "\n".join(out)
