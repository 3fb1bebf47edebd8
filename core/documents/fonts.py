"""The documents' Unicode font: found on disk, never fetched, prepared once per process.

Source Sans Pro comes from the `font-source-sans-pro` package (a project dependency); Debian's
DejaVu Sans (`fonts-dejavu-core`) is the fallback. Either covers é, œ, ’, « » and the Latin
letters of the names the service meets.

Speed: fpdf2 parses a TTF on every `add_font` and re-subsets it with fontTools on every
`output()`, which caps a PV at about ten per second. Here each style is cut once to a fixed
repertoire and every glyph of it is given its code up front, so every document embeds the
very same font program, widths, ToUnicode and CIDToGIDMap: they are built once, and a new
document only receives a light copy of the prepared font (`PreparedFont.clone`), and the
font's PDF objects, serialized once, are only renumbered in each document (`Frozen`). The few
fpdf2 internals this touches are checked when the fonts are prepared; if they have moved,
`FontSet.fast` is None and documents take fpdf2's own (slower) path.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import logging
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from fontTools import subset as ftsubset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import CIDSystemInfo, OutputProducer, PDFFont
from fpdf.syntax import Name, PDFArray, PDFContentStream, PDFObject
from fpdf.util import escape_parens

from core.errors import DomainError

log = logging.getLogger(__name__)

FAMILY = "aesh"
STYLES = ("", "B", "I")

PACKAGE = "font_source_sans_pro"
PACKAGE_FILES = {
    "": "SourceSansPro-Regular.ttf",
    "B": "SourceSansPro-Bold.ttf",
    "I": "SourceSansPro-It.ttf",
}
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEJAVU_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}

# What a French administrative document prints: Latin letters with their diacritics (French
# civil registers keep to far fewer), typographic punctuation and spaces, €, an arrow, boxes.
# Anything else is transliterated by the writer; a wider range only makes every PDF heavier.
REPERTOIRE: tuple[tuple[int, int], ...] = (
    (0x0020, 0x017F),
    (0x0218, 0x021B),  # Romanian ș ț
    (0x02BC, 0x02BC),
    (0x02C6, 0x02C7),
    (0x02D8, 0x02DD),
    (0x2000, 0x206F),
    (0x20AC, 0x20AC),
    (0x2116, 0x2116),
    (0x2192, 0x2192),
    (0x2610, 0x2612),
    (0x2713, 0x2713),
)


class FontsMissing(DomainError):
    pass


@dataclass(frozen=True)
class FontFiles:
    source: str
    paths: Mapping[str, Path]  # style → TTF; a missing italic reuses the regular face


def _complete(folder: Path, names: Mapping[str, str], source: str) -> FontFiles | None:
    paths = {style: folder / name for style, name in names.items()}
    if not (paths[""].is_file() and paths["B"].is_file()):
        return None
    if not paths["I"].is_file():
        paths["I"] = paths[""]
    return FontFiles(source, paths)


def _package_folder() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "files"


@cache
def find_fonts() -> FontFiles:
    folder = _package_folder()
    found = folder and _complete(folder, PACKAGE_FILES, PACKAGE)
    found = found or _complete(DEJAVU_DIR, DEJAVU_FILES, str(DEJAVU_DIR))
    if not found:
        raise FontsMissing(
            "documents.police_introuvable", paquet=PACKAGE.replace("_", "-"), dossier=DEJAVU_DIR
        )
    return found


def _codepoints(cmap: Iterable[int]) -> list[int]:
    return sorted(c for c in cmap if any(lo <= c <= hi for lo, hi in REPERTOIRE))


def _cut(path: Path) -> bytes:
    """The face reduced to the repertoire, without hinting or layout tables (never used here)."""
    font = TTFont(str(path), recalcTimestamp=False)
    for tag in ("GSUB", "GPOS", "GDEF", "kern", "hdmx", "VDMX", "LTSH", "DSIG", "FFTM", "meta"):
        if tag in font:
            del font[tag]
    options = ftsubset.Options()
    options.hinting = False
    options.layout_features = []
    options.notdef_outline = True
    options.recommended_glyphs = True
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=_codepoints(font.getBestCmap()))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class Embedding:
    """The PDF objects of one prepared face, identical in every document."""

    fontname: str
    widths: str
    to_unicode: bytes  # deflated
    cid_to_gid: bytes  # deflated
    font_file: bytes  # deflated
    length1: int


class PreparedFont(TTFFont):
    __slots__ = ("codes", "embedded", "embedding", "frozen", "program")

    codes: dict[int, str]  # codepoint → its fixed code in the embedded font ("" if none)
    embedded: dict[str, str]  # text → its `Tj` operator, shared by every copy of the face
    embedding: Embedding
    frozen: tuple[Frozen, ...]  # its PDF objects, serialized once (see `_freeze`)
    program: bytes

    def encode_text(self, text: str) -> str:
        # Codes never change (see `_prepare`): one table lookup instead of a pick per char,
        # and a text met before (labels, headings) is not even looked up again.
        op = self.embedded.get(text)
        if op is None:
            raw = text.translate(self.codes).encode("utf-16-be").decode("latin-1")
            op = f"({escape_parens(raw)}) Tj"
            if len(self.embedded) > 20_000:
                self.embedded.clear()
            self.embedded[text] = op
        return op

    def clone(self, index: int) -> PreparedFont:
        """A copy for one document: shared read-only tables, its own subset map and index."""
        c = PreparedFont.__new__(PreparedFont)
        for slot in TTFFont.__slots__:
            if hasattr(self, slot):
                setattr(c, slot, getattr(self, slot))
        c.codes, c.embedding, c.program = self.codes, self.embedding, self.program
        c.frozen, c.embedded = self.frozen, self.embedded
        c.i = index
        c.missing_glyphs = []
        c.biggest_size_pt = 0
        c._hbfont = None
        proto = self.subset
        sm = SubsetMap.__new__(SubsetMap)
        sm.font = c
        sm._next = proto._next
        sm._reserved = list(proto._reserved)
        sm._char_id_per_glyph = dict(proto._char_id_per_glyph)
        c.subset = sm
        return c


def _cmap_blocks(lines: list[str], kind: str) -> str:
    return "".join(
        f"{len(lines[i : i + 100])} begin{kind}\n"
        + "\n".join(lines[i : i + 100])
        + f"\nend{kind}\n"
        for i in range(0, len(lines), 100)
    )


def _to_unicode(font: TTFFont) -> bytes:
    pairs = []
    for glyph, code in font.subset.items():
        if glyph is None or not isinstance(glyph.unicode, tuple) or not glyph.unicode:
            continue
        target = "".join(chr(u).encode("utf-16-be").hex().upper() for u in glyph.unicode)
        pairs.append(f"<{code:04X}> <{target}>")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo\n<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{_cmap_blocks(pairs, 'bfchar')}"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    ).encode("latin-1")


def _widths(font: TTFFont) -> str:
    from fpdf.output import _tt_font_widths

    return _tt_font_widths(font)


def _prepare(style: str, path: Path) -> PreparedFont:
    program = _cut(path)
    proto = PreparedFont.__new__(PreparedFont)
    TTFFont.__init__(proto, FPDF(), cast(Path, io.BytesIO(program)), FAMILY + style, style)
    # Every glyph gets its code now, so that no document adds one and the embedding is fixed.
    for cp in sorted(proto.cmap):
        proto.subset.pick(cp)
    cid_to_gid = bytearray(256 * 256 * 2)
    for glyph, code in proto.subset.items():
        if glyph is not None:
            gid = proto.ttfont.getGlyphID(glyph.glyph_name)
            cid_to_gid[code * 2] = gid >> 8
            cid_to_gid[code * 2 + 1] = gid & 0xFF
    proto.program = program
    proto.embedded = {}
    proto.codes = {cp: chr(c) for cp in proto.cmap if (c := proto.subset.pick(cp)) is not None}
    proto.embedding = Embedding(
        fontname=f"MPDFAA+{proto.name}",
        widths=_widths(proto),
        to_unicode=zlib.compress(_to_unicode(proto)),
        cid_to_gid=zlib.compress(bytes(cid_to_gid)),
        font_file=zlib.compress(program),
        length1=len(program),
    )
    proto.frozen = _freeze(_font_objects(proto))
    SubsetMap.pick.cache_clear()
    SubsetMap.get_glyph.cache_clear()
    return proto


class _Deflated(PDFContentStream):
    def __init__(self, deflated: bytes, length1: int | None = None) -> None:
        super().__init__(deflated, compress=False)
        self.filter = Name("FlateDecode")
        if length1 is not None:
            self.length1 = length1


def _font_objects(font: PreparedFont) -> list[PDFObject]:
    """The linked PDF objects that embed a prepared face, the Type0 font first."""
    e = font.embedding
    composite = PDFFont(subtype="Type0", base_font=e.fontname, encoding="Identity-H")
    cid_font = PDFFont(
        subtype="CIDFontType2",
        base_font=e.fontname,
        d_w=font.desc.missing_width,
        w=e.widths,
    )
    composite.descendant_fonts = PDFArray([cid_font])
    to_unicode = _Deflated(e.to_unicode)
    composite.to_unicode = to_unicode
    info = CIDSystemInfo()
    cid_font.c_i_d_system_info = info
    descriptor = copy.copy(font.desc)
    descriptor.font_name = Name(e.fontname)
    cid_font.font_descriptor = descriptor
    cid_to_gid = _Deflated(e.cid_to_gid)
    cid_font.c_i_d_to_g_i_d_map = cid_to_gid
    program = _Deflated(e.font_file, e.length1)
    descriptor.font_file2 = program  # type: ignore[attr-defined]
    return [composite, cid_font, to_unicode, info, descriptor, cid_to_gid, program]


_MARK = 987_650  # object numbers the templates are serialized with (never a real one)
_MARKED = re.compile(rb"\b98765(\d) 0 (obj|R)\b")


class Frozen(PDFObject):
    """One object of a prepared face as serialized text around the numbers of its siblings.

    A face's objects are identical in every document but for their numbers: fpdf2 would
    rebuild and re-serialize them (the font program is tens of kilobytes) for each one. They
    are added consecutively, so the group's first number is this one's minus its `index`."""

    def __init__(self, index: int, parts: tuple[bytes | int, ...]) -> None:
        super().__init__()
        self.index = index
        self.parts = parts

    def serialize(self, obj_dict: Any = None, _security_handler: Any = None) -> Any:
        if obj_dict is not None or _security_handler is not None:
            # Documents here are never encrypted nor their fonts edited after preparation.
            raise ValueError("frozen font objects are neither edited nor encrypted")
        first = self.id - self.index
        return b"".join(p if isinstance(p, bytes) else str(first + p).encode() for p in self.parts)


def _freeze(objects: list[PDFObject]) -> tuple[Frozen, ...]:
    if len(objects) > 10:
        raise ValueError("a face's objects are numbered by one digit in the templates")
    for j, obj in enumerate(objects):
        obj.id = _MARK + j
    frozen = []
    for j, obj in enumerate(objects):
        text = obj.serialize()
        raw = text if isinstance(text, bytes) else text.encode("latin-1")
        head, stream, body = raw.partition(b"\nstream\n")  # numbers only in the dictionary
        parts: list[bytes | int] = []
        pos = 0
        for m in _MARKED.finditer(head):
            parts += [head[pos : m.start()], int(m[1]), b" 0 " + m[2]]
            pos = m.end()
        parts.append(head[pos:] + stream + body)
        frozen.append(Frozen(j, tuple(parts)))
    return tuple(frozen)


class FastFontsProducer(OutputProducer):
    """fpdf2's producer, except that prepared faces are embedded from their frozen objects."""

    def _add_fonts(self, *args: Any, **kwargs: Any) -> dict[int, Any]:
        fonts = list(self.fpdf.fonts.values())
        if not all(isinstance(f, PreparedFont) for f in fonts) or self.fpdf._security_handler:
            # A face added by other means: fpdf2 embeds everything, and cuts the prepared
            # faces' programs in place, so they get their own copy first.
            for f in fonts:
                if isinstance(f, PreparedFont):
                    f.ttfont = TTFont(io.BytesIO(f.program), recalcTimestamp=False, lazy=True)
            return cast(dict[int, Any], super()._add_fonts(*args, **kwargs))
        out: dict[int, Any] = {}
        for font in sorted(cast(list[PreparedFont], fonts), key=lambda f: f.i):
            # Fresh objects: one document's numbers must not leak into another's.
            group = [Frozen(x.index, x.parts) for x in font.frozen]
            for obj in group:
                self._add_pdf_obj(obj, "fonts")
            out[font.i] = group[0]
        # fpdf2 memoises glyph picks per map in a class-wide cache; left alone it would keep
        # every document's font alive.
        SubsetMap.pick.cache_clear()
        SubsetMap.get_glyph.cache_clear()
        return out


@dataclass
class FontSet:
    files: FontFiles
    fast: dict[str, PreparedFont] | None
    codepoints: frozenset[int]  # what the faces can print; anything else is transliterated

    def attach(self, pdf: FPDF, style: str) -> None:
        """Make `FAMILY`/`style` usable in `pdf`."""
        key = FAMILY + style
        if key in pdf.fonts:
            return
        if self.fast is not None:
            pdf.fonts[key] = self.fast[style].clone(len(pdf.fonts) + 1)
        else:
            pdf.add_font(FAMILY, style, str(self.files.paths[style]))

    def disable_fast_path(self, reason: BaseException) -> None:
        log.warning("PDF fonts: fpdf2's standard embedding from now on (%r)", reason)
        self.fast = None


@cache
def font_set() -> FontSet:
    files = find_fonts()
    fast: dict[str, PreparedFont] | None
    try:
        fast = {style: _prepare(style, files.paths[style]) for style in STYLES}
        codepoints = frozenset(fast[""].cmap)
        for font in fast.values():
            # A letter a style lacks is dropped, as fpdf2 drops glyphs it cannot pick.
            font.codes = {cp: font.codes.get(cp, "") for cp in codepoints | set(font.codes)}
    except Exception as err:  # an fpdf2 or fontTools release whose internals moved
        log.warning("PDF fonts: preparation failed, fpdf2's standard embedding (%r)", err)
        fast = None
        regular = TTFont(str(files.paths[""]), lazy=True)
        codepoints = frozenset(regular.getBestCmap())
    return FontSet(files, fast, codepoints)
