"""Lays out the documents' line markup on A4 pages with fpdf2.

The templates (`templates/pdf/*.j2`) carry every word; they render to one item per line:

    [gauche] text / [droite] text   letterhead columns (consecutive lines form one header)
    [lieu-date] text                a right-aligned line
    # text                          the document title
    [sous-titre] text               a centred line under it
    ## text                         a section heading
    label :: value                  a field; the value wraps under itself
    l :: v || l :: v                two fields side by side
    [encadre] text                  a framed notice
    [note] text                     small grey text
    [tableau] 3 2 2                 starts a table with these relative column widths
    [entete] a | b | c              its header row (repeated after a page break)
    [ligne] a | b | c               a row
    [signature] a | b               signature columns, first line bold; a box to sign follows
    [pied] text                     footer text of every page
    ---                             a rule
    (empty line)                    a small vertical space
    anything else                   a paragraph

Inside any text, `**bold**` and `__italic__` apply. Data put in a template must not carry `|`,
`::`, those markers or line breaks: `markup_safe` makes any value so.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, cast

from fpdf import FPDF
from fpdf.enums import Align
from fpdf.fonts import TTFFont

from core.documents.fonts import FAMILY, STYLES, FastFontsProducer, FontSet, font_set
from core.texts import t

try:  # fpdf2's per-page resource catalog (internal); see `_Writer.font`
    from fpdf.enums import PDFResourceType

    _FONT_RESOURCE: Any = PDFResourceType.FONT
except ImportError:  # pragma: no cover - an fpdf2 release without it
    _FONT_RESOURCE = None

Color = tuple[int, int, int]
BLACK: Color = (0, 0, 0)
BLUE: Color = (0, 0, 145)  # the French administration's blue
GREY: Color = (85, 85, 85)
LIGHT: Color = (200, 200, 200)
FILL: Color = (236, 236, 246)

TAGS = frozenset(
    {
        "gauche",
        "droite",
        "lieu-date",
        "sous-titre",
        "encadre",
        "note",
        "tableau",
        "entete",
        "ligne",
        "signature",
        "pied",
    }
)
LINE = 4.7  # mm, body line height
LABEL = 0.42  # share of half the page width given to a field's label
SIGN_SPACE = 24.0  # mm left blank to sign in

_MARKERS = re.compile(r"\*\*+|__+")


def markup_safe(value: Any) -> str:
    """A value as one markup-neutral line: no separators, no emphasis markers."""
    text = " ".join(("" if value is None else str(value)).split())
    text = text.replace("|", "/").replace("::", ":")
    return _MARKERS.sub(lambda m: m[0][0], text)


Run = tuple[str, str]  # (style, text)
Line = list[Run]

# Width of a word in font units, by style: the same labels and words recur in every document.
# Safe to share because every `FontSet` of a process holds the same faces.
_UNITS: dict[tuple[str, str], float] = {}
# Wrapped lines by (text, style, size, width): most of a document's lines (labels, headings,
# notices, the letterhead) are the same in every copy. Same sharing argument as `_UNITS`;
# callers never modify what `_Writer.wrap` returns.
_WRAPPED: dict[tuple[str, str, float, float], list[Line]] = {}
_WRAPPED_MAX = 10_000  # a few megabytes at most
_CACHE_MAX = 50_000
_EMPHASIS = re.compile(r"(\*\*|__)")
_WORDS = re.compile(r"[^ ]+| +")  # breaks at plain spaces only: no-break spaces hold


_PAINTS: dict[Color, tuple[str, str]] = {}


def _paint(color: Color) -> tuple[str, str]:
    """The filling and stroking colour operators of `color`, as fpdf2 writes them."""
    got = _PAINTS.get(color)
    if got is None:
        r, g, b = color
        gray = r == g == b
        fill = f"{r / 255:.3f} g" if gray else f"{r / 255:.3f} {g / 255:.3f} {b / 255:.3f} rg"
        _PAINTS[color] = got = (fill, fill.upper())
    return got


@dataclass
class _Table:
    weights: list[float]
    header: list[str] | None = None
    rows: list[list[str]] = field(default_factory=list)


class _Document(FPDF):
    def __init__(self, fonts: FontSet) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        if fonts.fast is None:
            for style in STYLES:
                fonts.attach(self, style)
        self.set_margins(18, 13, 18)
        # Page breaks are the writer's: it knows which blocks must stay whole.
        self.set_auto_page_break(False, margin=17)
        self.set_creator("aesh-bot")
        self.set_lang("fr-FR")

    def footer(self) -> None:
        """Nothing when a page closes: `_Writer.footers` draws them all once the number of
        pages is known (fpdf2's page-count alias would need one of its slow cells)."""


class _Writer:
    """Lays the markup out with its own line breaking, writing the page operators itself.

    fpdf2's `cell`/`multi_cell` re-measure each line character by character and would cost
    a PV most of its time; widths here come straight from the faces' tables, and the lines
    of a text wrapped once are kept (`_WRAPPED`). Text, rules and boxes are PDF operators
    gathered per page (`pages`) and handed to fpdf2 once, at the end: its `text`, `rect` and
    colour calls re-check the page, the font and the colours at every step. Each block is
    wrapped in `q … Q`, so that the graphics state fpdf2 believes in stays true.
    """

    def __init__(self, fonts: FontSet) -> None:
        self.fonts = fonts
        self.pdf = _Document(fonts)
        faces: dict[str, TTFFont] = dict(fonts.fast or {})
        if not faces:
            faces = {s: cast(TTFFont, self.pdf.fonts[FAMILY + s]) for s in STYLES}
        self.widths = {style: faces[style].cw for style in STYLES}
        self.listed: set[tuple[int, str]] = set()  # (page, style) in the page's resources
        self.pages: list[list[str]] = []  # each page's operators, in drawing order
        self.new_page()
        self.left: list[str] = []
        self.right: list[str] = []
        self.table: _Table | None = None
        self.signature: list[list[str]] = []
        self.title: str | None = None
        self.footer_text = ""  # the `[pied]` line, on every page

    # --- text ---------------------------------------------------------------------------

    def clean(self, text: str) -> str:
        """NFC text the faces can print; a letter they lack loses its accent, else becomes ?."""
        text = unicodedata.normalize("NFC", text.strip())
        ok = self.fonts.codepoints
        if text.isascii() or ok.issuperset(map(ord, text)):
            return text
        out = []
        for c in text:
            if ord(c) in ok:
                out.append(c)
                continue
            base = [b for b in unicodedata.normalize("NFKD", c) if ord(b) in ok]
            out.append("".join(b for b in base if not unicodedata.combining(b)) or "?")
        return "".join(out)

    def width(self, text: str, style: str, size: float) -> float:
        key = (style, text)
        units = _UNITS.get(key)
        if units is None:
            cw = self.widths[style]
            units = sum(cw[ord(c)] for c in text)
            if len(_UNITS) > _CACHE_MAX:
                _UNITS.clear()
            _UNITS[key] = units
        return units * size / 1000 / self.pdf.k

    @staticmethod
    def runs(text: str, base: str) -> list[Run]:
        out: list[Run] = []
        bold, italic = "B" in base, "I" in base
        for part in _EMPHASIS.split(text):
            if part == "**":
                bold = not bold
            elif part == "__":
                italic = not italic
            elif part:
                out.append(("B" if bold else "I" if italic else "", part))
        return out

    def wrap(self, text: str, base: str, size: float, width: float) -> list[Line]:
        """Greedy word wrap; a word wider than the line is cut where it must. Read-only."""
        key = (text, base, size, width)
        lines = _WRAPPED.get(key)
        if lines is None:
            lines = self._wrap(text, base, size, width)
            if len(_WRAPPED) > _WRAPPED_MAX:
                _WRAPPED.clear()
            _WRAPPED[key] = lines
        return lines

    def _wrap(self, text: str, base: str, size: float, width: float) -> list[Line]:
        lines: list[Line] = []
        line: Line = []
        used = 0.0
        for style, part in self.runs(self.clean(text), base):
            for word in _WORDS.findall(part):
                if word[0] == " ":
                    if line:
                        line.append((style, " "))
                        used += self.width(" ", style, size)
                    continue
                w = self.width(word, style, size)
                if line and used + w > width:
                    lines.append(line)
                    line, used = [], 0.0
                while w > width and len(word) > 1:
                    cut = len(word) - 1
                    while cut > 1 and self.width(word[:cut], style, size) > width:
                        cut -= 1
                    lines.append([(style, word[:cut])])
                    word = word[cut:]
                    w = self.width(word, style, size)
                line.append((style, word))
                used += w
        lines.append(line)
        return [self._merge(x) for x in lines]

    @staticmethod
    def _merge(line: Line) -> Line:
        while line and line[-1][1] == " ":
            line.pop()
        out: Line = []
        for style, text in line:
            if out and out[-1][0] == style:
                out[-1] = (style, out[-1][1] + text)
            else:
                out.append((style, text))
        return out

    def draw(
        self,
        lines: list[Line],
        x: float,
        top: float,
        h: float,
        size: float,
        color: Color = BLACK,
        width: float = 0,
        align: Align = Align.L,
    ) -> float:
        """Draw wrapped lines from `top`; returns the y under the last one.

        One `BT … Td … Tj ET` per run, as `FPDF.text` writes them, in one `q … Q` block."""
        pdf = self.pdf
        k = pdf.k
        # Same baseline as fpdf2's cells: half the line plus 0.3 of the font size.
        drop = 0.5 * h + 0.3 * size / k
        y = top
        ops = [_paint(color)[0]]
        for line in lines:
            start = x
            if align in (Align.C, Align.R):
                used = sum(self.width(text, style, size) for style, text in line)
                start += (width - used) / (2 if align == Align.C else 1)
            baseline = (pdf.h - y - drop) * k
            for style, text in line:
                font = self.font(style)
                ops.append(
                    f"BT /F{font.i} {size:.2f} Tf {start * k:.2f} {baseline:.2f} Td "
                    f"{font.encode_text(text)} ET"
                )
                start += self.width(text, style, size)
            y += h
        if len(ops) > 1:
            self.pages[pdf.page - 1].append("q " + " ".join(ops) + " Q")
        return y

    def box(
        self, x: float, y: float, w: float, h: float, stroke: Color, fill: Color | None = None
    ) -> None:
        """A rectangle (mm from the top left), outlined, and filled if `fill`."""
        pdf = self.pdf
        k = pdf.k
        paint = _paint(stroke)[1] + (f" {_paint(fill)[0]}" if fill is not None else "")
        self.pages[pdf.page - 1].append(
            f"q {paint} {0.2 * k:.2f} w {x * k:.2f} {(pdf.h - y) * k:.2f} {w * k:.2f} "
            f"{-h * k:.2f} re {'B' if fill is not None else 'S'} Q"
        )

    def rule_at(self, y: float, color: Color, width: float = 0.2) -> None:
        """A horizontal line across the page width at `y` mm."""
        pdf = self.pdf
        k = pdf.k
        at = (pdf.h - y) * k
        self.pages[pdf.page - 1].append(
            f"q {_paint(color)[1]} {width * k:.2f} w {pdf.l_margin * k:.2f} {at:.2f} m "
            f"{(pdf.w - pdf.r_margin) * k:.2f} {at:.2f} l S Q"
        )

    def font(self, style: str) -> TTFFont:
        """The document's face of `style`, listed in the current page's resources."""
        pdf = self.pdf
        key = FAMILY + style
        font = pdf.fonts.get(key)
        if font is None:
            self.fonts.attach(pdf, style)
            font = pdf.fonts[key]
        if (pdf.page, style) not in self.listed:
            catalog = getattr(pdf, "_resource_catalog", None)
            if catalog is not None and _FONT_RESOURCE is not None:
                catalog.add(_FONT_RESOURCE, font.i, pdf.page)
            else:
                # An fpdf2 whose internals moved: an empty text lists the face the public way.
                pdf.set_font(FAMILY, style, 10)
                pdf.text(0, 0, "")
            self.listed.add((pdf.page, style))
        return cast(TTFFont, font)

    def new_page(self) -> None:
        self.pdf.add_page()
        self.pages.append([])
        self.y = self.pdf.t_margin

    def keep(self, height: float) -> None:
        """Start a new page unless `height` mm still fit on this one."""
        if self.y + height > self.pdf.page_break_trigger:
            self.new_page()

    def flow(
        self,
        text: str,
        size: float,
        style: str = "",
        color: Color = BLACK,
        h: float = LINE,
        align: Align = Align.L,
    ) -> None:
        """A paragraph across the page width, broken across pages if it must."""
        pdf = self.pdf
        for line in self.wrap(text, style, size, pdf.epw):
            self.keep(h)
            self.y = self.draw([line], pdf.l_margin, self.y, h, size, color, pdf.epw, align)

    # --- blocks -------------------------------------------------------------------------

    def flush(self) -> None:
        if self.left or self.right:
            self.letterhead()
        if self.table is not None:
            self.draw_table(self.table)
            self.table = None
        if self.signature:
            self.signatures()

    def letterhead(self) -> None:
        pdf = self.pdf
        split = pdf.epw * 0.56
        bottom = self.y
        for lines, x, width in (
            (self.left, pdf.l_margin, split - 6),
            (self.right, pdf.l_margin + split, pdf.epw - split),
        ):
            y = self.y
            for i, line in enumerate(lines):
                if i == 0 and lines is self.left:
                    y = self.draw(self.wrap(line, "B", 11, width), x, y, 5.2, 11, BLUE)
                else:
                    y = self.draw(self.wrap(line, "", 8.5, width), x, y, 3.9, 8.5, GREY)
            bottom = max(bottom, y)
        self.y = bottom + 5
        self.left, self.right = [], []

    def title_line(self, text: str) -> None:
        self.title = self.title or self.clean(text).replace("**", "")
        self.flow(text, 15, "B", BLUE, 7, Align.C)
        self.y += 0.5

    def heading(self, text: str) -> None:
        self.keep(20)
        self.y += 2
        self.flow(text, 11, "B", BLUE, 5.6)
        self.rule_at(self.y, BLUE, 0.3)
        self.y += 1.2

    def fields(self, line: str) -> None:
        pdf = self.pdf
        parts = [p.partition(" :: ") for p in line.split(" || ")]
        width = pdf.epw / len(parts)
        label_w = pdf.epw / 2 * LABEL
        laid = [
            (self.wrap(label, "", 9, label_w - 1), self.wrap(value, "", 9.5, width - label_w - 2))
            for label, _, value in parts
        ]
        self.keep(max(max(len(a), len(b)) for a, b in laid) * LINE)
        bottom = self.y
        for i, (label, value) in enumerate(laid):
            x = pdf.l_margin + i * width
            bottom = max(
                bottom,
                self.draw(label, x, self.y, LINE, 9, GREY),
                self.draw(value, x + label_w, self.y, LINE, 9.5),
            )
        self.y = bottom + 0.4

    def framed(self, text: str) -> None:
        pdf = self.pdf
        pad = 2.5
        lines = self.wrap(text, "", 9.5, pdf.epw - 2 * pad)
        height = len(lines) * LINE + 2.6
        self.keep(height + 1.5)
        self.y += 0.5
        self.box(pdf.l_margin, self.y, pdf.epw, height, BLUE, FILL)
        self.draw(lines, pdf.l_margin + pad, self.y + 1.3, LINE, 9.5)
        self.y += height + 1

    def rule(self) -> None:
        self.y += 1.5
        self.rule_at(self.y, LIGHT)
        self.y += 2

    def _row(self, table: _Table, cells: list[str], header: bool) -> None:
        pdf = self.pdf
        h = 4.4
        size, style = (8.5, "B") if header else (9.0, "")
        total = sum(table.weights) or 1.0
        laid = []
        for i, weight in enumerate(table.weights):
            width = pdf.epw * weight / total
            laid.append(
                (width, self.wrap(cells[i] if i < len(cells) else "", style, size, width - 2))
            )
        height = max(len(lines) for _, lines in laid) * h + 1.6
        if self.y + height > pdf.page_break_trigger:
            self.new_page()
            if table.header is not None and not header:
                self._row(table, table.header, header=True)
        x = pdf.l_margin
        for width, lines in laid:
            self.box(x, self.y, width, height, LIGHT, FILL if header else None)
            self.draw(lines, x + 1, self.y + 0.8, h, size)
            x += width
        self.y += height

    def draw_table(self, table: _Table) -> None:
        self.keep(14)
        if table.header is not None:
            self._row(table, table.header, header=True)
        for row in table.rows:
            self._row(table, row, header=False)
        self.y += 1.5

    def signatures(self) -> None:
        pdf = self.pdf
        columns = max(len(line) for line in self.signature)
        width = pdf.epw / columns
        laid = [
            [
                self.wrap(
                    row[c] if c < len(row) else "",
                    "B" if i == 0 else "",
                    9.5 if i == 0 else 8.5,
                    width - 8,
                )
                for i, row in enumerate(self.signature)
            ]
            for c in range(columns)
        ]
        text_h = max(sum(len(x) for x in column) for column in laid) * LINE
        self.keep(text_h + SIGN_SPACE + 4)
        self.y += 2
        for c, column in enumerate(laid):
            x = pdf.l_margin + c * width
            y = self.y
            for i, lines in enumerate(column):
                size = 9.5 if i == 0 else 8.5
                y = self.draw(lines, x, y, LINE, size, BLACK if i == 0 else GREY)
            self.box(x, self.y + text_h + 1, width - 8, SIGN_SPACE, LIGHT)
        self.y += text_h + 1 + SIGN_SPACE + 3
        self.signature = []

    # --- the markup -----------------------------------------------------------------------

    def line(self, raw: str) -> None:
        line = raw.rstrip()
        tag, rest = "", line
        if line.startswith("[") and "]" in line:
            head, _, tail = line[1:].partition("]")
            if head in TAGS:
                tag, rest = head, tail.strip()
        if tag in ("gauche", "droite"):
            if self.table is not None or self.signature:
                self.flush()
            (self.left if tag == "gauche" else self.right).append(rest)
            return
        if tag in ("entete", "ligne") and self.table is not None:
            cells = [c.strip() for c in rest.split("|")]
            if tag == "entete":
                self.table.header = cells
            else:
                self.table.rows.append(cells)
            return
        if tag == "signature":
            if self.table is not None or self.left or self.right:
                self.flush()
            self.signature.append([c.strip() for c in rest.split("|")])
            return
        self.flush()
        if tag == "tableau":
            self.table = _Table([float(w) for w in rest.split()])
        elif tag == "lieu-date":
            self.flow(rest, 10, align=Align.R)
            self.y += 1
        elif tag == "sous-titre":
            self.flow(rest, 9.5, "", GREY, align=Align.C)
            self.y += 2
        elif tag == "encadre":
            self.framed(rest)
        elif tag == "note":
            self.flow(rest, 8, "", GREY, 3.8)
        elif tag == "pied":
            self.footer_text = rest
        elif line.startswith("## "):
            self.heading(line[3:])
        elif line.startswith("# "):
            self.title_line(line[2:])
        elif line.strip() == "---":
            self.rule()
        elif " :: " in line:
            self.fields(line)
        elif not line.strip():
            self.y += 1.5
        else:
            self.flow(line, 9.5)

    def footers(self) -> None:
        """Each page's footer: a rule, the `[pied]` text, "Page n / N" on the right."""
        pdf = self.pdf
        y = pdf.h - 12
        footer = self.wrap(self.footer_text, "", 7.5, pdf.epw * 0.8)[:1]
        last = pdf.page
        for n in range(1, last + 1):
            pdf.page = n
            self.rule_at(y - 1, LIGHT)
            self.draw(footer, pdf.l_margin, y, 4, 7.5, GREY)
            page = self.wrap(t("documents.page", n=n, total=last), "", 7.5, pdf.epw)
            # Right-aligned in the last fifth of the line, within a cell margin as fpdf2 would.
            right = pdf.l_margin + pdf.epw * 0.8
            self.draw(page, right, y, 4, 7.5, GREY, pdf.epw * 0.2 - pdf.c_margin, Align.R)
        pdf.page = last

    def finish(self) -> bytes:
        self.flush()
        self.footers()
        pdf = self.pdf
        last = pdf.page
        for n, ops in enumerate(self.pages, start=1):
            pdf.page = n
            pdf._out("\n".join(ops))
        pdf.page = last
        if self.title:
            self.pdf.set_title(self.title)
        if self.fonts.fast is None:
            return bytes(self.pdf.output())
        return bytes(self.pdf.output(output_producer_class=FastFontsProducer))


def _render(markup: str, fonts: FontSet) -> bytes:
    writer = _Writer(fonts)
    for line in markup.splitlines():
        writer.line(line)
    return writer.finish()


def render(markup: str) -> bytes:
    """The PDF of a markup text (see the module docstring)."""
    fonts = font_set()
    if fonts.fast is None:
        return _render(markup, fonts)
    try:
        return _render(markup, fonts)
    except Exception as err:
        # fpdf2's own path tells whether the prepared faces or the markup are at fault.
        document = _render(markup, FontSet(fonts.files, None, fonts.codepoints))
        fonts.disable_fast_path(err)
        return document
