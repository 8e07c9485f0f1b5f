"""HTML building blocks of the self-contained report page: escaped text, tables, figures, audio clips.

The page opens from disk in any browser: inline CSS, no script, no external resource, relative links only.
Every piece of text goes through `html.escape`; every link through `url` (percent-encoded relative path).
"""
from __future__ import annotations

import html
import re
from typing import Iterable, Sequence
from urllib.parse import quote

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1b1b1b;
       background: #fafafa; line-height: 1.4; }
header { background: #243447; color: white; padding: 14px 24px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
.banner { padding: 10px 24px; font-weight: 600; }
.banner.demo { background: #fff3cd; color: #664d03; border-bottom: 2px solid #e0b400; }
.banner.paper { background: #d1e7dd; color: #0f5132; border-bottom: 2px solid #198754; }
nav { padding: 8px 24px; background: #eef1f4; font-size: 14px; }
nav a { margin-right: 14px; }
main { padding: 0 24px 40px 24px; max-width: 1500px; }
section { margin-top: 28px; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px 0; background: white; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { color: #555; background: #f6f6f6; }
figure.plot { margin: 12px 0; }
figure.plot img { max-width: 100%; border: 1px solid #ddd; background: white; }
figcaption { font-size: 13px; color: #444; }
.example { border: 1px solid #d7dbe0; background: white; border-radius: 6px; padding: 8px 12px; margin: 14px 0; }
.example h4 { margin: 4px 0 8px 0; }
.row { display: flex; gap: 10px; align-items: flex-start; margin-bottom: 8px; }
.row .cls { flex: 0 0 110px; font-weight: 600; padding-top: 6px; overflow-wrap: anywhere; }
.clips { display: flex; flex-wrap: wrap; gap: 10px; flex: 1; }
figure.clip { margin: 0; width: 204px; font-size: 12px; }
figure.clip img { width: 200px; height: 96px; display: block; border: 1px solid #ccc; }
figure.clip audio { width: 200px; height: 32px; }
figure.clip figcaption { min-height: 3.2em; }
.note { color: #8a1c1c; }
code { background: #eef1f4; padding: 0 3px; border-radius: 3px; }
"""

_NUMBER = re.compile(r"^[+\-−]?\d+(\.\d+)?( dB)?$|^—$")


def esc(text: object) -> str:
    """Escaped text for element content and attribute values."""
    return html.escape(str(text), quote=True)


def url(relative_path: str) -> str:
    """A relative link, percent-encoded (slashes kept) and escaped for an attribute."""
    if relative_path.startswith(("/", "\\")) or ":" in relative_path.split("/")[0]:
        raise ValueError(f"report links must be relative paths; got {relative_path!r}")
    return esc(quote(relative_path, safe="/"))


def inline_markdown(text: str) -> str:
    """Escape `text`, then render `code` and **bold** spans."""
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], row_classes: Sequence[str] | None = None) -> str:
    """An HTML table of already formatted cells (escaped here); numeric-looking cells are right-aligned."""
    lines = ["<table>", "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        klass = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{esc(c)}</td>' if _NUMBER.match(str(c)) else f"<td>{inline_markdown(c)}</td>"
                        for c in row)
        lines.append(f"<tr{klass}>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def parse_markdown_table(lines: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a GitHub-style Markdown table (as `markdown_table` writes it)."""
    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    rows = [cells(line) for line in lines if line.strip()]
    if len(rows) < 2 or not all(set(cell) <= set("-: ") for cell in rows[1]):
        raise ValueError(f"not a Markdown table (header, separator, rows): {list(lines)[:2]}")
    return rows[0], rows[2:]


def markdown_to_html(text: str, heading_offset: int = 1) -> str:
    """The Markdown this project writes (headings, paragraphs, pipe tables, `code`) as HTML; headings demoted."""
    blocks, paragraph, table_lines = [], [], []

    def flush() -> None:
        if paragraph:
            blocks.append(f"<p>{inline_markdown(' '.join(paragraph))}</p>")
            paragraph.clear()
        if table_lines:
            header, rows = parse_markdown_table(table_lines)
            blocks.append(table(header, rows))
            table_lines.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if paragraph:
                flush()
            table_lines.append(stripped)
            continue
        if table_lines:
            flush()
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            level = min(6, len(stripped) - len(stripped.lstrip("#")) + heading_offset)
            blocks.append(f"<h{level}>{inline_markdown(stripped.lstrip('#').strip())}</h{level}>")
        else:
            paragraph.append(stripped)
    flush()
    return "\n".join(blocks)


def plot(src: str, caption: str) -> str:
    return (f'<figure class="plot"><img src="{url(src)}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def clip(caption: str, wav: str, png: str, note: str = "") -> str:
    """One audio clip: caption, spectrogram image and an audio player."""
    extra = f' <span class="note">{esc(note)}</span>' if note else ""
    return (f'<figure class="clip"><figcaption>{esc(caption)}{extra}</figcaption>'
            f'<img src="{url(png)}" alt="spectrogram: {esc(caption)}">'
            f'<audio controls preload="none" src="{url(wav)}"></audio></figure>')


def clip_row(name: str, clips: Sequence[str]) -> str:
    """A row of clips headed by `name` (a class, or "mixture")."""
    return f'<div class="row"><span class="cls">{esc(name)}</span><div class="clips">{"".join(clips)}</div></div>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, banner: str, profile: str, nav: Sequence[tuple[str, str]], sections: Sequence[str],
         intro: str = "") -> str:
    """The whole document; `nav` holds (anchor, label) pairs, `sections` finished HTML."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    kind = "demo" if profile == "demo" else "paper"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{esc(title)}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<header><h1>{esc(title)}</h1>{intro}</header>\n"
            f'<div class="banner {kind}">{esc(banner)}</div>\n<nav>{links}</nav>\n<main>\n'
            + "\n".join(sections) + "\n</main>\n</body>\n</html>\n")
