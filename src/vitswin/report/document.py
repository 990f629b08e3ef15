"""A report as a list of blocks, rendered to Markdown (images linked) and to self-contained HTML
(images embedded), so both files always say the same thing."""

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vitswin.artifacts import write_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    path: Path  # a PNG file
    caption: str


@dataclass(frozen=True)
class Plot:
    """A figure a section made, not yet written: `save_plots` writes it as `<name>.png` and makes it an Image."""

    name: str
    figure: "Figure"
    caption: str


Block = Heading | Paragraph | Bullets | Table | Image | Plot

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1em 0; }
figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
nav.contents { background: #f7f7f7; border: 1px solid #ddd; padding: 0.3em 1em; columns: 2; }
"""


def save_plots(blocks: list[Block], folder: Path) -> list[Block]:
    """The blocks with every Plot written to `folder` as a PNG and replaced by an Image of that file."""
    saved: list[Block] = []
    for block in blocks:
        if isinstance(block, Plot):
            path = folder / f"{block.name}.png"
            write_png(block.figure, path)
            block = Image(path, block.caption)
        saved.append(block)
    return saved


def anchor(text: str) -> str:
    """A heading's anchor, as GitHub makes them: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(char for char in text.lower() if char.isalnum() or char in " -_")
    return kept.replace(" ", "-")


def contents(blocks: list[Block]) -> list[Heading]:
    """The sections a table of contents lists: the level-2 headings."""
    return [block for block in blocks if isinstance(block, Heading) and block.level == 2]


def _with_contents(blocks: list[Block]) -> list[Block | str]:
    """The blocks with the marker "contents" before the first section, where the table goes."""
    sections = contents(blocks)
    if len(sections) < 2:
        return list(blocks)
    first = blocks.index(sections[0])
    return [*blocks[:first], "contents", *blocks[first:]]


def to_markdown(blocks: list[Block], relative_to: Path) -> str:
    """Markdown with images linked by paths relative to the folder the .md file lives in, and a table of contents
    before the first section."""
    parts = []
    for block in _with_contents(blocks):
        if block == "contents":
            parts.append("\n".join(f"- [{heading.text}](#{anchor(heading.text)})" for heading in contents(blocks)))
        elif isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = [_markdown_row(block.header), _markdown_row(["---"] * len(block.header))]
            parts.append("\n".join(lines + [_markdown_row(row) for row in block.rows]))
        elif isinstance(block, Image):
            link = Path(os.path.relpath(block.path, relative_to)).as_posix()
            parts.append(f"![{block.caption}]({link})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def to_html(blocks: list[Block], title: str) -> str:
    """One HTML file that opens offline: images embedded as data URLs, no scripts, no external files."""
    parts = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>',
        f"<style>{_STYLE}</style>\n</head>\n<body>",
    ]
    for block in _with_contents(blocks):
        if block == "contents":
            links = "".join(
                f'<li><a href="#{anchor(heading.text)}">{html.escape(heading.text)}</a></li>' for heading in contents(blocks)
            )
            parts.append(f'<nav class="contents"><ul>{links}</ul></nav>')
        elif isinstance(block, Heading):
            parts.append(f'<h{block.level} id="{anchor(block.text)}">{html.escape(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            header = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in block.rows)
            parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)
