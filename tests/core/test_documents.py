"""PV d'affectation and per-établissement summary (domain 3.4, 3.10, privacy of domain 1).

The PDFs are read back with pypdf: what a person would see is what is checked.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.dates import SchoolYear
from core.db import make_sessionmaker
from core.documents import fonts, pdf
from core.errors import InvalidInput, NotFound
from core.models import Accompagnement, Cartouche, ServiceUser
from core.perimeter import Perimeter
from core.services import documents, parametres
from tests.core.builders import World, d

DEP = Perimeter("062")
TODAY = d("12/03/2026")
YEAR = SchoolYear(2025)

CARTOUCHE = {
    "academie": "Académie de Lille",
    "direction": "Direction des services départementaux de l’Éducation nationale",
    "service": "Service « AESH » — cœur de l’inclusion",
    "adresse": "20 boulevard de la Liberté",
    "code_postal": "62000",
    "commune": "Arras",
    "telephone": "03 21 00 00 00",
    "email": "ce.aesh62@ac-lille.fr",
    "signataire": "Jean Dupont",
    "qualite_signataire": "L’inspecteur d’académie – DASEN",
}

ISSUER = ServiceUser(
    nom="Dupont",
    prenom="Claire",
    email="gestion.aesh62@ac-lille.fr",
    telephone="03 21 11 22 33",
    adresse="DSDEN 62, bureau 214",
)


def world(w: World) -> None:
    w.pial("0620001A")
    w.etab("0620001A", pial="0620001A", nom="Collège Jean Jaurès", commune="Lens")
    w.etab("0620002B", pial="0620001A", nom="École Œuvre de l’Enfance", commune="Liévin")
    w.etab("0620009K", nom="École hors PIAL", commune="Arras")
    w.etab("0590001A", nom="Collège du Nord", commune="Lille")
    w.eleve("EL0042", nom="Durand", prenom="Émilie", date_naissance=d("05/04/2015"))
    w.eleve("EL0043", nom="Lefèvre", prenom="Jean-Pierre", date_naissance=d("12/11/2014"))
    w.eleve("EL0050", nom="Nguyễn", prenom="Anh", secteur="Lens 2", date_naissance=d("01/02/2016"))
    w.scol("EL0042", "0620002B", "01/09/2024", None)
    w.scol("EL0043", "0620002B", "01/09/2024", None)
    w.scol("EL0050", "0620002B", "01/09/2024", None)
    w.decision("D1", "EL0042", "01/09/2025", "31/08/2027", heures=18)
    w.decision("M1", "EL0043", "01/09/2025", "31/08/2026")
    w.decision("M2", "EL0042", "01/09/2025", "31/08/2026")
    w.decision("D9", "EL0050", "01/09/2025", "31/08/2026", heures=12)
    w.decision("OLD", "EL0043", "01/09/2022", "31/08/2023", heures=6)  # not this year
    w.aesh("AE1")
    w.mission(
        "MI1", "AE1", "01/09/2025", "31/08/2026", heures=24, employeur_rne="0620001A", quotite=62.5
    )
    w.acc("AC1", "MI1", "D1", "0620002B", "01/09/2025", "31/08/2026", 18, previsionnel=True)
    w.acc("AC2", "MI1", ["M1", "M2"], "0620002B", "01/09/2025", "30/06/2026", 6)
    w.acc("AC9", "MI1", "D9", "0620002B", "01/09/2025", "31/08/2026", 12)


async def session_with_world(
    engine: AsyncEngine, cartouche: bool = True, more: Callable[[World], None] | None = None
) -> AsyncSession:
    s = make_sessionmaker(engine)()
    w = World(s)
    world(w)
    if more is not None:
        more(w)
    await w.flush()
    await s.execute(update(Accompagnement).where(Accompagnement.id == "AC1").values(repas=True))
    if cartouche:
        await parametres.set_cartouche(s, "062", dict(CARTOUCHE))
    await s.commit()
    return s


def text_of(data: bytes) -> str:
    """The PDF's text with whitespace collapsed, as a reader's search would see it."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(p.extract_text() for p in reader.pages).split())


async def test_pv_prints_aesh_mission_students_hours_period_and_cartouche(
    engine: AsyncEngine,
) -> None:
    async with await session_with_world(engine) as s:
        data = await documents.pv_affectation(s, DEP, "AC1", issuer=ISSUER, today=TODAY)
    assert data.startswith(b"%PDF-")
    text = text_of(data)
    for expected in (
        "Procès-verbal d’affectation",
        "MARTIN",
        "Léa",
        "MI1",
        "HP1D — PIAL 1er degré",  # nature with its label
        "62,5 %",
        "24 h par semaine",
        "École Œuvre de l’Enfance",
        "0620002B",
        "Liévin",
        "Collège Jean Jaurès (0620001A)",  # PIAL and employer
        "Émilie DURAND",
        "05/04/2015",
        "EL0042",
        "individualisé (AC1)",
        "18 h",
        "du 01/09/2025 au 31/08/2026",
        "Temps du repas oui",
        "Pause méridienne non",
        "Affectation prévisionnelle",
        "Fait à Arras, le 12/03/2026",
        "L’AESH",
        # the issuing gestionnaire's professional contact
        "Affaire suivie par",
        "Claire Dupont",
        "gestion.aesh62@ac-lille.fr",
        "03 21 11 22 33",
        "DSDEN 62, bureau 214",
        "Page 1 / 1",
    ):
        assert expected in text, expected
    for value in CARTOUCHE.values():  # every field of the cartouche, é œ ’ « » – included
        assert value in text, value


async def test_pv_without_issuer_omits_the_contact_block(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        text = text_of(await documents.pv_affectation(s, DEP, "AC1", today=TODAY))
    assert "Affaire suivie par" not in text
    assert "MARTIN" in text


async def test_external_copy_shows_students_by_initials_only(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        data = await documents.pv_data(s, DEP, "AC2", external_copy=True, today=TODAY)
        pdf_bytes = await documents.pv_affectation(s, DEP, "AC2", external_copy=True, today=TODAY)
        internal = text_of(await documents.pv_affectation(s, DEP, "AC2", today=TODAY))
    # Not even the record holds what must not leave the service.
    assert all(e.nom is None and e.prenom is None and e.date_naissance is None for e in data.eleves)
    text = text_of(pdf_bytes)
    assert "É. D." in text and "J.-P. L." in text
    assert "EL0042" in text and "EL0043" in text
    for secret in ("Durand", "DURAND", "Émilie", "Lefèvre", "LEFÈVRE", "Jean-Pierre", "05/04/2015"):
        assert secret not in text, secret
    assert "mutualisé (AC2)" in text and "copie transmise hors du service" in text
    assert "MARTIN" in text  # the AESH is named: the PV is theirs
    assert "Émilie DURAND" in internal and "Jean-Pierre LEFÈVRE" in internal


async def test_refused_while_the_cartouche_is_incomplete_naming_the_missing_fields(
    engine: AsyncEngine,
) -> None:
    async with await session_with_world(engine, cartouche=False) as s:
        with pytest.raises(InvalidInput) as none_yet:
            await documents.pv_affectation(s, DEP, "AC1")
        partial = {k: v for k, v in CARTOUCHE.items() if k not in ("signataire", "email")}
        s.add(Cartouche(departement="062", champs=partial | {"telephone": "  "}))
        await s.flush()
        with pytest.raises(InvalidInput) as some:
            await documents.pv_affectation(s, DEP, "AC1")
    assert "cartouche" in str(none_yet.value) and "qualité du signataire" in str(none_yet.value)
    message = str(some.value)
    assert "téléphone (telephone)" in message
    assert "adresse électronique (email)" in message
    assert "signataire (signataire)" in message
    assert "académie" not in message and "062" in message


async def test_out_of_perimeter_reads_as_not_found(engine: AsyncEngine) -> None:
    async with await session_with_world(engine, cartouche=False) as s:
        # Checked before the cartouche: an outsider learns nothing, not even that it exists.
        for perimeter, acc_id in (
            (Perimeter("059"), "AC1"),
            (DEP.narrowed(frozenset({"Lens 2"})), "AC1"),
            (DEP.narrowed(frozenset({"Arras 1"})), "AC9"),
            (DEP.narrowed(pial_rne="0629999Z"), "AC1"),
            (DEP, "AC-NOPE"),
        ):
            with pytest.raises(NotFound) as err:
                await documents.pv_affectation(s, perimeter, acc_id)
            assert acc_id in str(err.value) and "introuvable" in str(err.value)
        await parametres.set_cartouche(s, "062", dict(CARTOUCHE))
        ok = await documents.pv_data(s, DEP.narrowed(pial_rne="0620001A"), "AC1")
        assert ok.accompagnement_id == "AC1"


async def test_letters_the_font_lacks_are_transliterated_not_lost(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        text = text_of(await documents.pv_affectation(s, DEP, "AC9", today=TODAY))
    assert "Anh NGUYEN" in text  # ễ is outside the embedded repertoire: its base letter stays


def test_initiales() -> None:
    assert documents.initiales("Émilie", "Durand") == "É. D."
    assert documents.initiales("Jean-Pierre", "Lefèvre") == "J.-P. L."
    assert documents.initiales("Marie Claire", "d'Argent") == "M. D."
    assert documents.initiales("", None) == ""


async def test_etablissement_summary_counts_lists_and_keeps_to_the_perimeter(
    engine: AsyncEngine,
) -> None:
    async with await session_with_world(engine) as s:
        full = await documents.etablissement_data(s, DEP, "0620002B", YEAR, today=TODAY)
        narrow = await documents.etablissement_data(
            s, DEP.narrowed(frozenset({"Arras 1"})), "0620002B", YEAR, today=TODAY
        )
        pdf_bytes = await documents.etablissement_summary(s, DEP, "0620002B", YEAR, today=TODAY)
        for perimeter, rne in (
            (DEP, "0599999Z"),
            (DEP, "0590001A"),  # another department
            (DEP.narrowed(pial_rne="0620001A"), "0620009K"),  # outside the coordonnateur's PIAL
        ):
            with pytest.raises(NotFound):
                await documents.etablissement_data(s, perimeter, rne, YEAR)

    assert (full.nb_eleves, full.nb_individuelles, full.nb_mutualisees) == (3, 2, 2)
    assert [a.id for a in full.accompagnements] == ["AC1", "AC2", "AC9"]
    ac2 = full.accompagnements[1]
    assert [(e.id, e.initiales) for e in ac2.eleves] == [
        ("EL0042", "É. D."),
        ("EL0043", "J.-P. L."),
    ]
    assert ac2.type == "mutualisee" and ac2.heures == 6
    assert [(a.id, a.nb_accompagnements, a.nb_eleves) for a in full.aesh] == [("AE1", 3, 3)]
    # Narrowed to Arras 1, the Lens 2 student and the accompaniment serving them disappear.
    assert (narrow.nb_eleves, narrow.nb_individuelles, narrow.nb_mutualisees) == (2, 1, 2)
    assert [a.id for a in narrow.accompagnements] == ["AC1", "AC2"]
    assert narrow.aesh[0].nb_accompagnements == 2

    text = text_of(pdf_bytes)
    for expected in (
        "Synthèse de l’établissement",
        "École Œuvre de l’Enfance",
        "Collège Jean Jaurès (0620001A)",
        "2025-2026",
        "Élèves concernés 3",
        "Individuelles 2",
        "Mutualisées 2",
        "AC1",
        "AC2",
        "É. D. (EL0042), J.-P. L. (EL0043)",
        "MARTIN Léa",
        "MI1",
        "Arras, le 12/03/2026",
    ):
        assert expected in text, expected
    for secret in ("Durand", "Émilie", "Lefèvre", "Nguy"):
        assert secret not in text, secret


def many_students(w: World) -> None:
    for i in range(70):
        w.eleve(f"X{i:03d}", nom=f"Nom{i}", prenom="Zoé")
        w.scol(f"X{i:03d}", "0620002B", "01/09/2024", None)
        w.decision(f"DX{i:03d}", f"X{i:03d}", "01/09/2025", "31/08/2026", heures=3)
        w.acc(f"ACX{i:03d}", "MI1", f"DX{i:03d}", "0620002B", "01/09/2025", "31/08/2026", 3)


async def test_a_long_summary_runs_over_pages_with_numbered_footers(engine: AsyncEngine) -> None:
    async with await session_with_world(engine, more=many_students) as s:
        data = await documents.etablissement_summary(s, DEP, "0620002B", YEAR, today=TODAY)
    reader = PdfReader(io.BytesIO(data))
    pages = len(reader.pages)
    assert pages >= 2
    last = reader.pages[-1].extract_text()
    assert f"Page {pages} / {pages}" in " ".join(last.split())
    assert "Accompagnement" in last  # the table header is repeated on a new page
    assert "ACX069" in text_of(data)


def test_fpdf2_standard_embedding_prints_the_same_text() -> None:
    markup = "\n".join(
        [
            "[gauche] Académie de Lille",
            "# Procès-verbal d’affectation",
            "## Élèves",
            "Nom :: **Œdipe** « é » || Heures :: 12 h",
            "[tableau] 1 1",
            "[entete] Élève | Dossier",
            "[ligne] É. D. | EL0042",
            "[signature] L’AESH | Le signataire",
        ]
    )
    found = fonts.font_set()
    assert found.fast is not None  # the prepared path is the one in use
    fast = pdf._render(markup, found)
    standard = pdf._render(markup, fonts.FontSet(found.files, None, found.codepoints))
    assert text_of(fast) == text_of(standard)
    assert "Nom Œdipe « é »" in text_of(fast)


def test_markup_safe_neutralises_separators_and_markers() -> None:
    assert pdf.markup_safe("a | b :: c\n**d** __e__ ***f") == "a / b : c *d* _e_ *f"
    assert pdf.markup_safe(None) == ""
    assert pdf.markup_safe(date(2026, 3, 12)) == "2026-03-12"


def test_missing_fonts_give_a_clear_french_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fonts, "_package_folder", lambda: None)
    monkeypatch.setattr(fonts, "DEJAVU_DIR", tmp_path)
    with pytest.raises(fonts.FontsMissing) as err:
        fonts.find_fonts.__wrapped__()
    assert "font-source-sans-pro" in str(err.value) and "fonts-dejavu-core" in str(err.value)


def test_debian_dejavu_is_the_fallback_face(monkeypatch: pytest.MonkeyPatch) -> None:
    if not (fonts.DEJAVU_DIR / "DejaVuSans.ttf").is_file():
        pytest.skip("fonts-dejavu-core is not installed")
    monkeypatch.setattr(fonts, "_package_folder", lambda: None)
    found = fonts.find_fonts.__wrapped__()
    assert found.source == str(fonts.DEJAVU_DIR)
    face = fonts._prepare("", found.paths[""])
    assert all(ord(c) in face.codes for c in "éœ’«»")


def test_prepared_faces_are_numbered_and_listed_right_in_every_document() -> None:
    """The faces' objects are serialized once and renumbered per document; each page lists
    the faces it uses. A wrong number or a missing resource would lose the text."""
    short = "# Titre\n[pied] Pied\nNom :: **Œdipe** « é » ’"
    rows = "\n".join(f"[ligne] **L{i}** | __ital__ {i} œ" for i in range(120))
    long = f"[pied] Pied\n# Titre\n[tableau] 1 2\n[entete] A | B\n{rows}"
    for markup, pages in ((short, 1), (long, 3), (short, 1)):
        reader = PdfReader(io.BytesIO(pdf.render(markup)), strict=True)
        assert len(reader.pages) == pages
        for n, page in enumerate(reader.pages, start=1):
            faces = {str(f.get_object()["/BaseFont"]) for f in page["/Resources"]["/Font"].values()}
            assert all(name.startswith("/MPDFAA+") for name in faces)
            text = " ".join(page.extract_text().split())
            assert f"Page {n} / {pages}" in text
        text = text_of(pdf.render(markup))
        assert ("Nom Œdipe « é » ’" if pages == 1 else "L119 ital 119 œ") in text


def test_faces_are_listed_through_fpdf2s_public_calls_when_its_catalog_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page resources go through an fpdf2 internal; without it, documents still work."""
    markup = "[pied] Pied\n# Titre œ\nNom :: **Œdipe** « é » ’ || Heures :: __12 h__"
    expected = text_of(pdf.render(markup))
    monkeypatch.setattr(pdf, "_FONT_RESOURCE", None)
    assert text_of(pdf.render(markup)) == expected
    assert "Nom Œdipe « é » ’ Heures 12 h" in expected
