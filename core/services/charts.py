"""Pictures sent in the chat: a decision's timeline (domain 3.5) and the monthly indicator
bars (domain 3.6), as PNG bytes of a fixed size.

Pictures carry no student name: the caption (a chat message, deleted after its delay) says
whose decision it is. The size is fixed so that a client lays out every timeline alike and a
test can check it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from core.rules.coverage import (
    AUCUNE,
    COMPLETE,
    DEPASSEMENT,
    MAINTIEN,
    PARTIELLE,
    SANS_SCOLARITE,
    Segment,
)
from core.texts import t

TIMELINE_SIZE = (1000, 320)
BARS_SIZE = (1000, 420)

# Domain 3.5 colours.
COLOURS: dict[str, tuple[int, int, int]] = {
    AUCUNE: (214, 39, 40),
    COMPLETE: (44, 160, 44),
    PARTIELLE: (255, 127, 14),
    DEPASSEMENT: (31, 119, 180),
    SANS_SCOLARITE: (255, 255, 255),
    MAINTIEN: (148, 103, 189),
}
LEGEND_ORDER = (AUCUNE, PARTIELLE, COMPLETE, DEPASSEMENT, SANS_SCOLARITE, MAINTIEN)
INK = (40, 40, 40)
GRID = (200, 200, 200)
TODAY = (0, 0, 0)
BACKGROUND = (255, 255, 255)
BAR = (31, 119, 180)
_MONTHS = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def _font(size: int, bold: bool = False) -> Font:
    # The PDFs' font covers French accents; Pillow's own bitmap font is the last resort.
    try:
        from core.documents.fonts import find_fonts

        path = find_fonts().paths["B" if bold else ""]
        return ImageFont.truetype(str(path), size)
    except Exception:
        return ImageFont.load_default(size)


def _lighter(rgb: tuple[int, int, int], amount: float = 0.55) -> tuple[int, int, int]:
    r, g, b = rgb
    return (
        round(r + (255 - r) * amount),
        round(g + (255 - g) * amount),
        round(b + (255 - b) * amount),
    )


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    # compress_level 6 (not 9): the pictures are small and made on demand.
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _month_starts(lo: date, hi: date) -> list[date]:
    out: list[date] = []
    y, m = lo.year, lo.month
    while True:
        d = date(y, m, 1)
        if d > hi:
            return out
        if d >= lo:
            out.append(d)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def _hatch(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colour: tuple[int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    step = 8
    height = y1 - y0
    for start in range(x0 - height, x1, step):
        # A 45° stroke, clipped to the box by hand (ImageDraw has no clipping).
        ax, ay = start, y1
        bx, by = start + height, y0
        if ax < x0:
            ay -= x0 - ax
            ax = x0
        if bx > x1:
            by += bx - x1
            bx = x1
        if ax <= bx:
            draw.line([(ax, ay), (bx, by)], fill=colour, width=2)


def _swatch(draw: ImageDraw.ImageDraw, x: int, y: int, etat: str, previsionnel: bool) -> None:
    colour = COLOURS[etat]
    box = (x, y, x + 22, y + 14)
    if previsionnel:
        draw.rectangle(box, fill=_lighter(colour))
        _hatch(draw, box, colour)
    else:
        draw.rectangle(box, fill=colour)
    draw.rectangle(box, outline=GRID if etat == SANS_SCOLARITE else colour)


def timeline_png(
    segments: Sequence[Segment],
    debut: date,
    fin: date,
    today: date,
    title: str,
) -> bytes:
    """The segments of one decision over [debut, fin] (and its maintien after the end)."""
    w, h = TIMELINE_SIZE
    img = Image.new("RGB", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((20, 14), title, fill=INK, font=_font(20, bold=True))

    lo = min([debut, *(s.debut for s in segments)])
    hi = max([fin, *(s.fin for s in segments)])
    # Whole months on the axis: a period starting on the 1st reads at a glance.
    lo = date(lo.year, lo.month, 1)
    hi_next = date(hi.year + (hi.month == 12), hi.month % 12 + 1, 1)
    span = max(1, (hi_next - lo).days)
    left, right, top, bottom = 30, w - 30, 70, 150

    def x_of(d: date) -> int:
        return left + round((d - lo).days * (right - left) / span)

    draw.rectangle((left, top, right, bottom), fill=(245, 245, 245))
    for seg in segments:
        x0, x1 = (
            x_of(seg.debut),
            max(x_of(seg.debut) + 1, x_of(date.fromordinal(seg.fin.toordinal() + 1)) - 1),
        )
        colour = COLOURS.get(seg.etat, GRID)
        box = (x0, top, x1, bottom)
        if seg.previsionnel:
            draw.rectangle(box, fill=_lighter(colour))
            _hatch(draw, box, colour)
        else:
            draw.rectangle(box, fill=colour)
        if seg.etat == SANS_SCOLARITE:
            draw.rectangle(box, outline=GRID)
    # The decision's own period, framed, so that maintien after it stands out.
    draw.rectangle(
        (x_of(debut), top - 4, x_of(date.fromordinal(fin.toordinal() + 1)), bottom + 4),
        outline=INK,
        width=2,
    )

    small = _font(13)
    for m in _month_starts(lo, hi_next):
        x = x_of(m)
        draw.line([(x, bottom + 4), (x, bottom + 12)], fill=INK, width=1)
        label = _MONTHS[m.month - 1] + (f" {m.year}" if m.month in (1, 9) or m == lo else "")
        if x + 4 < right:
            draw.text((x + 3, bottom + 14), label, fill=INK, font=small)
    if lo <= today < hi_next:
        x = x_of(today)
        draw.line([(x, top - 14), (x, bottom + 10)], fill=TODAY, width=3)
        draw.text(
            (x + 4, top - 24), t("service_reports.graphique.aujourdhui"), fill=TODAY, font=small
        )

    # Legend: every state, then the prévisionnel mark.
    y = h - 70
    x = left
    legend_font = _font(14)
    entries: list[tuple[str, bool, str]] = [
        (e, False, t(f"service_reports.etat.{e}")) for e in LEGEND_ORDER
    ]
    entries.append((COMPLETE, True, t("service_reports.graphique.previsionnel")))
    for etat, prev, label in entries:
        width = 30 + round(draw.textlength(label, font=legend_font)) + 18
        if x + width > right:
            x, y = left, y + 26
        _swatch(draw, x, y + 2, etat, prev)
        draw.text((x + 28, y), label, fill=INK, font=legend_font)
        x += width
    return _png(img)


def monthly_bars_png(par_mois: Mapping[str, int], title: str) -> bytes:
    """Twelve bars (September → August) of `par_mois` ("YYYY-MM" → count), zeros drawn."""
    w, h = BARS_SIZE
    img = Image.new("RGB", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((20, 14), title, fill=INK, font=_font(20, bold=True))
    months = list(par_mois.items())
    left, right, top, bottom = 60, w - 30, 70, h - 60
    peak = max([v for _, v in months] + [1])
    scale = peak * 1.12  # headroom for the value printed above the tallest bar
    draw.line([(left, bottom), (right, bottom)], fill=INK, width=1)
    small = _font(13)
    for k in _nice_ticks(peak):
        y = bottom - round(k * (bottom - top) / scale)
        draw.line([(left - 4, y), (right, y)], fill=GRID, width=1)
        draw.text((10, y - 8), str(k), fill=INK, font=small)
    n = max(1, len(months))
    slot = (right - left) / n
    for i, (key, value) in enumerate(months):
        x0 = left + round(i * slot + slot * 0.15)
        x1 = left + round((i + 1) * slot - slot * 0.15)
        y = bottom - round(value * (bottom - top) / scale)
        if value:
            draw.rectangle((x0, y, x1, bottom), fill=BAR)
        label = str(value)
        tw = draw.textlength(label, font=small)
        draw.text((round((x0 + x1 - tw) / 2), y - 18), label, fill=INK, font=small)
        month = int(key[5:7]) if len(key) >= 7 and key[5:7].isdigit() else 0
        name = _MONTHS[month - 1] if 1 <= month <= 12 else key
        tw = draw.textlength(name, font=small)
        draw.text((round((x0 + x1 - tw) / 2), bottom + 8), name, fill=INK, font=small)
    return _png(img)


def _nice_ticks(peak: int) -> Iterable[int]:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if peak / step <= 6:
            return range(0, peak + 1, step)
    return range(0, peak + 1, max(1, peak // 5))
