"""CSV imports (interfaces §4): happy paths, every refusal, idempotence, snapshots, journal."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Affectation,
    Candidat,
    Candidature,
    Decision,
    Eleve,
    Etablissement,
    JournalEntry,
    Mission,
    ParametreAnnee,
    Pial,
    Scolarisation,
    Secteur,
)
from core.services.imports import KINDS, ImportRefused, ImportReport, import_file
from core.services.imports.importer import HANDLERS

Maker = async_sessionmaker[AsyncSession]

ETABLISSEMENTS = """\
rne;nom;commune;code_postal;latitude;longitude;pial_rne;secteur;email
0620001A;École A;Arras;62000;50.29;2.78;0620001A;S1;ce.0620001a@ac-lille.fr
0620002B;Collège B;Lens;62300;;;0620001A;S2;
0590001C;Lycée C;Lille;59000;;;;S9;
"""
ELEVES = """\
id;nom;prenom;date_naissance;secteur;dossier_etat;erseh_email
E1;Martin;Léa;2015-03-02;S1;actif;erseh1@ac-lille.fr
E2;Durand;Tom;2012-05-12;S2;actif;
"""
SCOLARISATIONS = """\
eleve_id;rne;debut;fin;classe;id
E1;0620001A;2025-09-01;2026-07-04;CE2;SC1
E2;0620002B;2025-09-01;;6e;
"""
DECISIONS = """\
id;eleve_id;type;heures;origine;nature;debut;fin
D1;E1;individuelle;12;première demande;projet cible;2025-09-01;2026-08-31
D2;E2;mutualisee;;réexamen;;2025-09-01;2027-08-31
D3;E2;mutualisee;;;;2025-09-01;2026-08-31
"""
AESH = """\
id;source;nom;prenom;date_naissance;commune;code_postal;latitude;longitude;email;telephone;transport;rqth
A1;EPP;Leroy;Marie;1980-01-02;Arras;62000;;;m@example.org;0600000000;voiture;non
A2;ASSED;Roux;Paul;;Lille;59000;;;;;;
"""
MISSIONS = """\
id;aesh_id;contrat;nature;debut;fin;quotite;heures;employeur_rne;pial_rne
M1;A1;T2-CDI;HP1D;2025-09-01;;100;24;0620001A;0620001A
M2;A2;HT2-CDD;EI1D;2025-09-01;2026-08-31;50;;0590001C;
"""
AFFECTATIONS = """\
mission_id;pial_rne;annee;heures
M1;0620001A;2025-2026;24
"""
ACCOMPAGNEMENTS = """\
id;mission_id;decision_ids;rne;debut;fin;heures;maintien;previsionnel
AC1;M1;D1;0620001A;2025-09-01;2026-07-04;12;0;0
AC2;M2;D2|D3;0620002B;2025-09-01;2026-07-04;6;1;0
"""
CANDIDATS = """\
id;nom;prenom;email;telephone;type;zones;statut;depose_le;valide_jusqu_au
C1;Petit;Anne;Anne.Petit@Example.org;0600000001;AESH;Arras|Lens;complete;2025-03-01;2025-09-01
C2;Petit;Anne;anne.petit@example.org;;M2_1D_PDC;Arras;en_examen;2025-04-01;2025-10-01
C3;;;;;AESH;Lille;retiree;2024-01-01;2024-07-01
"""

ORDER: list[tuple[str, str]] = [
    ("etablissements", ETABLISSEMENTS),
    ("eleves", ELEVES),
    ("scolarisations", SCOLARISATIONS),
    ("decisions", DECISIONS),
    ("aesh", AESH),
    ("missions", MISSIONS),
    ("affectations", AFFECTATIONS),
    ("accompagnements", ACCOMPAGNEMENTS),
    ("candidats", CANDIDATS),
]

TABLES = (
    Etablissement,
    Pial,
    Secteur,
    Eleve,
    Scolarisation,
    Decision,
    Aesh,
    Mission,
    Affectation,
    Accompagnement,
    AccompagnementDecision,
    Candidat,
    Candidature,
    JournalEntry,
)


# --- helpers --------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(text.encode(encoding))
    return path


async def run(maker: Maker, tmp_path: Path, kind: str, text: str, **kw: Any) -> ImportReport:
    path = write(tmp_path, kind, text)
    async with maker() as session:
        report = await import_file(session, kind, path, **kw)
        await session.commit()
    return report


async def load_all(maker: Maker, tmp_path: Path, upto: str = "candidats") -> None:
    for kind, text in ORDER:
        await run(maker, tmp_path, kind, text)
        if kind == upto:
            return


async def counts(session: AsyncSession) -> dict[str, int]:
    out = {}
    for model in TABLES:
        out[model.__tablename__] = (
            await session.execute(select(func.count()).select_from(model))
        ).scalar_one()
    return out


async def refuse(maker: Maker, tmp_path: Path, kind: str, text: str | bytes) -> ImportRefused:
    """Import a bad file; assert it was refused and that it wrote nothing."""
    path = tmp_path / f"bad-{kind}.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    async with maker() as session:
        before = await counts(session)
        with pytest.raises(ImportRefused) as caught:
            await import_file(session, kind, path)
        # Refused before any write: even without a rollback, the session holds nothing new.
        assert await counts(session) == before
        await session.rollback()
    async with maker() as session:
        assert await counts(session) == before
    refused = caught.value
    assert refused.kind == kind and refused.path == str(path)
    return refused


def where(refused: ImportRefused, row: int, column: str | None) -> str:
    """The French line that names this row and column; fails when there is none."""
    start = f"fichier {refused.path}, ligne {row}"
    if column is not None:
        start += f", colonne {column} : "
    lines = [line for line in str(refused).splitlines() if line.startswith(start)]
    assert lines, str(refused)
    return lines[0]


async def one(maker: Maker, model: Any, key: Any) -> Any:
    async with maker() as session:
        return await session.get(model, key)


async def journal(maker: Maker) -> list[JournalEntry]:
    async with maker() as session:
        return list((await session.scalars(select(JournalEntry).order_by(JournalEntry.id))).all())


# --- happy paths ----------------------------------------------------------------------------


def test_kinds_are_the_contract() -> None:
    assert KINDS == (
        "etablissements",
        "eleves",
        "scolarisations",
        "decisions",
        "aesh",
        "missions",
        "affectations",
        "accompagnements",
        "candidats",
    )
    assert tuple(HANDLERS) == KINDS


async def test_every_kind_in_import_order(sessionmaker: Maker, tmp_path: Path) -> None:
    reports = {}
    for kind, text in ORDER:
        reports[kind] = await run(sessionmaker, tmp_path, kind, text)
    assert {k: (r.rows, r.created, r.updated) for k, r in reports.items()} == {
        "etablissements": (3, 3, 0),
        "eleves": (2, 2, 0),
        "scolarisations": (2, 2, 0),
        "decisions": (3, 3, 0),
        "aesh": (2, 2, 0),
        "missions": (2, 2, 0),
        "affectations": (1, 1, 0),
        "accompagnements": (2, 2, 0),
        "candidats": (3, 3, 0),
    }
    assert reports["eleves"].journal_entries == 2
    assert reports["scolarisations"].journal_entries == 2
    assert reports["decisions"].journal_entries == 3

    async with sessionmaker() as s:
        a = await s.get(Etablissement, "0620001A")
        assert a is not None
        assert (a.departement, a.latitude, a.pial_rne, a.nom) == (
            "062",
            50.29,
            "0620001A",
            "École A",
        )
        assert set((await s.scalars(select(Pial.rne))).all()) == {"0620001A"}
        secteurs = {tuple(r) for r in await s.execute(select(Secteur.departement, Secteur.code))}
        assert secteurs == {("062", "S1"), ("062", "S2"), ("059", "S9")}

        e1, e2 = await s.get(Eleve, "E1"), await s.get(Eleve, "E2")
        assert e1 is not None and e2 is not None
        assert (e1.departement, e1.date_naissance, e1.prenom) == ("062", date(2015, 3, 2), "Léa")
        assert e2.departement == "062"
        scol = (await s.scalars(select(Scolarisation).where(Scolarisation.eleve_id == "E2"))).one()
        assert (scol.id, scol.fin, scol.classe) == (None, None, "6e")

        d1, d2 = await s.get(Decision, "D1"), await s.get(Decision, "D2")
        assert d1 is not None and d2 is not None
        assert (d1.type, d1.heures, d1.origine, d1.fin) == (
            "individuelle",
            12.0,
            "première demande",
            date(2026, 8, 31),
        )
        assert (d2.type, d2.heures, d2.nature) == ("mutualisee", None, None)

        a1, a2 = await s.get(Aesh, "A1"), await s.get(Aesh, "A2")
        assert a1 is not None and a2 is not None
        assert (a1.source, a1.actif, a1.departement) == ("EPP", True, "062")
        assert (a2.source, a2.departement) == ("ASSED", "059")
        m1, m2 = await s.get(Mission, "M1"), await s.get(Mission, "M2")
        assert m1 is not None and m2 is not None
        assert (m1.heures_rh, m1.heures, m1.fin, m1.departement) == (24.0, 24.0, None, "062")
        # No HR hours and no work-time reference for 059: 0 (domain 3.2).
        assert (m2.heures_rh, m2.heures, m2.quotite, m2.departement) == (None, 0.0, 50.0, "059")

        aff = (await s.scalars(select(Affectation))).one()
        assert (aff.mission_id, aff.pial_rne, aff.annee, aff.heures) == (
            "M1",
            "0620001A",
            "2025-2026",
            24.0,
        )
        ac2 = await s.get(Accompagnement, "AC2")
        assert ac2 is not None and (ac2.maintien, ac2.previsionnel, ac2.heures) == (
            True,
            False,
            6.0,
        )
        links = {tuple(r) for r in await s.execute(select(AccompagnementDecision.__table__))}
        assert links == {("AC1", "D1"), ("AC2", "D2"), ("AC2", "D3")}

        person = (await s.scalars(select(Candidat))).one()
        assert (person.email, person.nom, person.telephone, person.departement) == (
            "anne.petit@example.org",
            "Petit",
            "0600000001",
            None,
        )
        cands = {c.source_id: c for c in (await s.scalars(select(Candidature))).all()}
        assert cands["C1"].candidat_id == person.id == cands["C2"].candidat_id
        assert cands["C1"].zones == ["Arras", "Lens"]
        assert (cands["C3"].candidat_id, cands["C3"].statut) == (None, "retiree")
        assert cands["C2"].valide_jusqu_au == date(2025, 10, 1)


async def test_reimport_changes_nothing(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path)
    async with sessionmaker() as s:
        before = await counts(s)
    for kind, text in ORDER:
        report = await run(sessionmaker, tmp_path, kind, text)
        assert (report.created, report.updated, report.deactivated, report.journal_entries) == (
            0,
            0,
            0,
            0,
        ), kind
        assert report.unchanged == report.rows
    async with sessionmaker() as s:
        assert await counts(s) == before


async def test_bom_comma_separator_french_dates_decimal_comma(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    etabs = (
        "\ufeffRNE , Nom,Latitude,longitude,PIAL_RNE,commentaire\n"
        '0620001A,École A,"50,29","2,5",0620001A,ignoré\n'
    )
    report = await run(sessionmaker, tmp_path, "etablissements", etabs)
    assert (report.rows, report.created) == (1, 1)
    eleves = "id,nom,prenom,date_naissance\nE1,Martin,Léa,02/03/2015\n"
    await run(sessionmaker, tmp_path, "eleves", eleves)
    decisions = (
        "id,eleve_id,type,heures,debut,fin\r\n"
        'D1,E1,individuelle,"12,5",01/09/2025,31/08/2026\r\n'
        "\r\n"
    )
    await run(sessionmaker, tmp_path, "decisions", decisions)
    async with sessionmaker() as s:
        etab = await s.get(Etablissement, "0620001A")
        assert etab is not None and (etab.latitude, etab.longitude) == (50.29, 2.5)
        eleve = await s.get(Eleve, "E1")
        assert eleve is not None and eleve.date_naissance == date(2015, 3, 2)
        assert eleve.dossier_etat == "actif"
        decision = await s.get(Decision, "D1")
        assert decision is not None
        assert (decision.heures, decision.debut, decision.fin) == (
            12.5,
            date(2025, 9, 1),
            date(2026, 8, 31),
        )


async def test_empty_file_and_header_only(sessionmaker: Maker, tmp_path: Path) -> None:
    assert (await run(sessionmaker, tmp_path, "eleves", "")).rows == 0
    report = await run(sessionmaker, tmp_path, "eleves", "id;nom;prenom\n\n")
    assert (report.rows, report.created) == (0, 0)


async def test_absent_optional_column_keeps_stored_values(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await run(sessionmaker, tmp_path, "etablissements", ETABLISSEMENTS)
    report = await run(sessionmaker, tmp_path, "etablissements", "rne;nom\n0620001A;École A2\n")
    assert (report.updated, report.created) == (1, 0)
    etab = await one(sessionmaker, Etablissement, "0620001A")
    assert (etab.nom, etab.email, etab.pial_rne) == (
        "École A2",
        "ce.0620001a@ac-lille.fr",
        "0620001A",
    )


async def test_enumerations_accept_accents_and_case(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="decisions")
    eleves = ELEVES.replace("S1;actif;", "S1;Gelé;").replace("S2;actif;", "S2;clôturé;")
    report = await run(sessionmaker, tmp_path, "eleves", eleves)
    assert report.updated == 2
    assert (await one(sessionmaker, Eleve, "E1")).dossier_etat == "gele"
    assert (await one(sessionmaker, Eleve, "E2")).dossier_etat == "cloture"
    entries = [e for e in await journal(sessionmaker) if e.kind == "eleve.dossier_modifie"]
    assert [(e.eleve_id, e.changes, e.departement, e.pial_rne) for e in entries] == [
        ("E1", {"dossier_etat": ["actif", "gele"]}, "062", "0620001A"),
        ("E2", {"dossier_etat": ["actif", "cloture"]}, "062", "0620001A"),
    ]
    decisions = DECISIONS.replace("D2;E2;mutualisee", "D2;E2;Mutualisée")
    assert (await run(sessionmaker, tmp_path, "decisions", decisions)).updated == 0


async def test_progress_for_big_files(sessionmaker: Maker, tmp_path: Path) -> None:
    lines = ["rne;nom"] + [f"062{i:05d}X;École {i}" for i in range(10_500)]
    calls: list[tuple[int, int]] = []
    report = await run(
        sessionmaker,
        tmp_path,
        "etablissements",
        "\n".join(lines) + "\n",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert report.created == 10_500
    # Checking, then writing, each about every 2,000 rows; the bar only moves forward.
    assert len(calls) >= 10 and calls[-1] == (10_500, 10_500)
    assert {total for _, total in calls} == {10_500}
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) == len(done)
    small: list[tuple[int, int]] = []
    await run(sessionmaker, tmp_path, "eleves", ELEVES, progress=lambda d, t: small.append((d, t)))
    assert small == []


async def test_unknown_kind_is_a_usage_error(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        with pytest.raises(ValueError, match="inconnu"):
            await import_file(s, "profs", write(tmp_path, "x", "id\n"))


# --- refusals -------------------------------------------------------------------------------


async def test_missing_column(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="eleves")
    text = "id;eleve_id;type;heures;fin\nD1;E1;individuelle;12;2026-08-31\n"
    refused = await refuse(sessionmaker, tmp_path, "decisions", text)
    assert "colonne obligatoire absente" in where(refused, 1, "debut")
    assert len(refused.errors) == 1


async def test_non_utf8_file(sessionmaker: Maker, tmp_path: Path) -> None:
    text = "id;nom;prenom\nE1;Martin;Lea\nE2;Durand;Léa\n"
    refused = await refuse(sessionmaker, tmp_path, "eleves", text.encode("latin-1"))
    line = where(refused, 3, None)
    assert "UTF-8" in line


# (kind, rows to append to the seed file or a whole file, row, column, fragment of the reason)
BAD_CELLS = [
    ("eleves", "E3;X;Y;2015-13-01;S1;actif;", 4, "date_naissance", "date invalide « 2015-13-01 »"),
    ("decisions", "D4;E1;individuelle;12;;;31/02/2025;2026-08-31", 5, "debut", "31/02/2025"),
    ("decisions", "D4;E1;individuelle;douze;;;2025-09-01;2026-08-31", 5, "heures", "douze"),
    ("decisions", "D4;E1;individuelle;-2;;;2025-09-01;2026-08-31", 5, "heures", "-2"),
    ("decisions", "D4;E1;collective;12;;;2025-09-01;2026-08-31", 5, "type", "collective"),
    ("decisions", "D4;;individuelle;12;;;2025-09-01;2026-08-31", 5, "eleve_id", "obligatoire"),
    ("decisions", "D4;E1;mutualisee;;;;2025-09-01;", 5, "fin", "obligatoire"),
    ("decisions", "D4;E1;individuelle;;;;2025-09-01;2026-08-31", 5, "heures", "individuelle"),
    ("decisions", "D4;E1;individuelle;0;;;2025-09-01;2026-08-31", 5, "heures", "plus de 0"),
    ("decisions", "D4;E1;mutualisee;;;;2026-09-01;2026-08-31", 5, "fin", "précède"),
    ("decisions", "D4;E9;mutualisee;;;;2025-09-01;2026-08-31", 5, "eleve_id", "« E9 » inconnu"),
    ("decisions", "D1;E1;individuelle;6;;;2025-09-01;2026-08-31", 5, "id", "ligne 2"),
    ("eleves", "E3;X;Y;;S1;ferme;", 4, "dossier_etat", "ferme"),
    ("eleves", "E3;X;" + "Y" * 121 + ";;S1;;", 4, "prenom", "trop longue"),
    ("etablissements", "0620003C;École D;;;;;0620009Z;;", 5, "pial_rne", "0620009Z"),
    ("etablissements", "0620003C;École D;;;abc;;;;", 5, "latitude", "abc"),
    ("scolarisations", "E9;0620001A;2025-09-01;;;", 4, "eleve_id", "E9"),
    ("scolarisations", "E1;0629999Z;2025-09-01;;;", 4, "rne", "0629999Z"),
    ("scolarisations", "E1;0620001A;2025-09-01;;CM1;", 4, "eleve_id, rne, debut", "ligne 2"),
    ("scolarisations", "E1;0620002B;2025-09-01;2025-01-01;;", 4, "fin", "précède"),
    ("aesh", "A3;RH;X;Y;;;;;;;;;", 4, "source", "RH"),
    ("missions", "M3;A9;T2-CDD;HI1D;2025-09-01;;;;;", 4, "aesh_id", "A9"),
    ("missions", "M3;A1;CDD;HI1D;2025-09-01;;;;;", 4, "contrat", "CDD"),
    ("missions", "M3;A1;T2-CDD;XX1D;2025-09-01;;;;;", 4, "nature", "XX1D"),
    ("missions", "M3;A1;T2-CDD;HI1D;2025-09-01;;cent;;;", 4, "quotite", "cent"),
    ("affectations", "M9;0620001A;2025-2026;", 3, "mission_id", "M9"),
    ("affectations", "M2;0620002B;2025-2026;", 3, "pial_rne", "0620002B"),
    ("affectations", "M2;0620001A;2025-2027;", 3, "annee", "2025-2027"),
    ("affectations", "M1;0620001A;2025;", 3, "mission_id, pial_rne, annee", "ligne 2"),
    ("accompagnements", "AC3;M9;D1;0620001A;2025-09-01;2026-07-04;1;0;0", 4, "mission_id", "M9"),
    ("accompagnements", "AC3;M1;D1;0629999Z;2025-09-01;2026-07-04;1;0;0", 4, "rne", "0629999Z"),
    (
        "accompagnements",
        "AC3;M1;D1|D8;0620001A;2025-09-01;2026-07-04;1;0;0",
        4,
        "decision_ids",
        "D8",
    ),
    (
        "accompagnements",
        "AC3;M1;;0620001A;2025-09-01;2026-07-04;1;0;0",
        4,
        "decision_ids",
        "obligatoire",
    ),
    (
        "accompagnements",
        "AC3;M1;D1;0620001A;2025-09-01;2026-07-04;;0;0",
        4,
        "heures",
        "obligatoire",
    ),
    ("accompagnements", "AC3;M1;D1;0620001A;2025-09-01;2026-07-04;1;2;0", 4, "maintien", "0 ou 1"),
    ("candidats", "C4;A;B;a@example.org;;AESH;;validee;;", 5, "statut", "validee"),
    ("candidats", "C4;A;B;;;AESH;;complete;;", 5, "email", "obligatoire"),
    ("candidats", "C4;A;B;pas-une-adresse;;AESH;;complete;;", 5, "email", "pas-une-adresse"),
    ("candidats", "C4;A;B;a@example.org;;PROF;;complete;;", 5, "type", "PROF"),
]


@pytest.mark.parametrize(("kind", "line", "row", "column", "fragment"), BAD_CELLS)
async def test_bad_row_refuses_the_file(
    sessionmaker: Maker,
    tmp_path: Path,
    kind: str,
    line: str,
    row: int,
    column: str,
    fragment: str,
) -> None:
    await load_all(sessionmaker, tmp_path)
    seed = dict(ORDER)[kind]
    refused = await refuse(sessionmaker, tmp_path, kind, seed + line + "\n")
    assert fragment in where(refused, row, column)


async def test_refused_file_leaves_valid_rows_unwritten(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await load_all(sessionmaker, tmp_path, upto="decisions")
    text = DECISIONS.replace("D1;E1;individuelle;12;", "D1;E1;individuelle;20;")
    await refuse(sessionmaker, tmp_path, "decisions", text + "D9;E1;individuelle;x;;;;\n")
    assert (await one(sessionmaker, Decision, "D1")).heures == 12.0


async def test_errors_are_capped_and_listed_in_row_order(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    text = "id;nom;prenom;date_naissance\n" + "".join(f"E{i};N;P;bad\n" for i in range(150))
    refused = await refuse(sessionmaker, tmp_path, "eleves", text)
    assert len(refused.errors) == 100
    assert [e.row for e in refused.errors] == list(range(2, 102))
    assert str(refused).splitlines()[-1].startswith("… arrêt après 100 erreurs")


# --- updates, journal, derived values -------------------------------------------------------


async def test_decision_update_writes_one_journal_entry(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await load_all(sessionmaker, tmp_path, upto="decisions")
    before = await journal(sessionmaker)
    assert {e.kind for e in before} >= {"decision.creee", "scolarisation.creee", "eleve.cree"}
    changed = DECISIONS.replace(
        "D1;E1;individuelle;12;première demande;projet cible;2025-09-01;2026-08-31",
        "D1;E1;individuelle;15;première demande;projet cible;2025-09-01;2026-07-04",
    )
    report = await run(sessionmaker, tmp_path, "decisions", changed)
    assert (report.updated, report.unchanged, report.journal_entries) == (1, 2, 1)
    new = (await journal(sessionmaker))[len(before) :]
    assert len(new) == 1
    entry = new[0]
    assert (entry.kind, entry.entity, entry.entity_id, entry.eleve_id) == (
        "decision.modifiee",
        "decision",
        "D1",
        "E1",
    )
    assert (entry.departement, entry.secteur, entry.pial_rne) == ("062", "S1", "0620001A")
    assert entry.changes == {"heures": [12.0, 15.0], "fin": ["2026-08-31", "2026-07-04"]}


async def test_scolarisation_matched_by_student_rne_and_start(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await load_all(sessionmaker, tmp_path, upto="scolarisations")
    before = await journal(sessionmaker)
    changed = SCOLARISATIONS.replace("E2;0620002B;2025-09-01;;6e;", "E2;0620002B;01/09/2025;;5e;")
    report = await run(sessionmaker, tmp_path, "scolarisations", changed)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    async with sessionmaker() as s:
        scol = (await s.scalars(select(Scolarisation).where(Scolarisation.eleve_id == "E2"))).one()
    new = (await journal(sessionmaker))[len(before) :]
    assert [(e.kind, e.entity_id, e.changes, e.pial_rne) for e in new] == [
        ("scolarisation.modifiee", str(scol.pk), {"classe": ["6e", "5e"]}, "0620001A")
    ]
    # An id given later names the same scolarisation rather than creating another one.
    with_id = changed.replace("E2;0620002B;01/09/2025;;5e;", "E2;0620002B;2025-09-01;;5e;SC2")
    report = await run(sessionmaker, tmp_path, "scolarisations", with_id)
    assert (report.created, report.updated) == (0, 1)


async def test_eleve_departement_follows_latest_scolarisation(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await load_all(sessionmaker, tmp_path, upto="scolarisations")
    moved = "eleve_id;rne;debut;fin\nE1;0590001C;2026-09-01;\n"
    await run(sessionmaker, tmp_path, "scolarisations", moved)
    assert (await one(sessionmaker, Eleve, "E1")).departement == "059"
    async with sessionmaker() as s:
        secteurs = {tuple(r) for r in await s.execute(select(Secteur.departement, Secteur.code))}
    assert ("059", "S1") in secteurs
    # An earlier scolarisation does not move the student back.
    earlier = "eleve_id;rne;debut;fin\nE1;0620002B;2024-09-01;2025-07-04\n"
    await run(sessionmaker, tmp_path, "scolarisations", earlier)
    assert (await one(sessionmaker, Eleve, "E1")).departement == "059"
    # An eleves import keeps the derived department.
    await run(sessionmaker, tmp_path, "eleves", ELEVES.replace("Martin", "Martin-Roy"))
    eleve = await one(sessionmaker, Eleve, "E1")
    assert (eleve.nom, eleve.departement) == ("Martin-Roy", "059")
    entries = [e for e in await journal(sessionmaker) if e.kind == "eleve.modifie"]
    assert [(e.eleve_id, e.changes, e.departement) for e in entries] == [
        ("E1", {"nom": ["Martin", "Martin-Roy"]}, "059")
    ]


AESH_SNAPSHOT = """\
id;source;nom;prenom
A1;EPP;Leroy;Marie
A2;ASSED;Roux;Paul
A3;EPP;Blanc;Jean
"""
MISSIONS_SNAPSHOT = """\
id;aesh_id;contrat;nature;debut;fin;quotite;heures;employeur_rne;pial_rne
M1;A1;T2-CDI;HP1D;2025-09-01;;100;24;0620001A;0620001A
M2;A2;HT2-CDD;EI1D;2025-09-01;2026-08-31;50;;0590001C;
M3;A3;T2-CDD;HI1D;2025-09-01;2026-08-31;60;;0620002B;
"""


async def test_hr_snapshots_deactivate_the_absent(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="eleves")
    await run(sessionmaker, tmp_path, "aesh", AESH_SNAPSHOT)
    await run(sessionmaker, tmp_path, "missions", MISSIONS_SNAPSHOT)
    async with sessionmaker() as s:
        s.add(Aesh(id="P1", source="PREV", nom="Prev", prenom="Ue", previsionnel=True))
        s.add(
            Mission(
                id="MP1",
                aesh_id="P1",
                contrat="T2-CDD",
                nature="HI1D",
                debut=date(2025, 9, 1),
                previsionnel=True,
            )
        )
        await s.commit()

    epp_only = "id;source;nom;prenom\nA1;EPP;Leroy;Marie\n"
    report = await run(sessionmaker, tmp_path, "aesh", epp_only)
    assert (report.unchanged, report.deactivated) == (1, 1)
    assert (await one(sessionmaker, Aesh, "A3")).actif is False
    assert (await one(sessionmaker, Aesh, "A2")).actif is True
    assert (await one(sessionmaker, Aesh, "P1")).actif is True

    without_m3 = "".join(MISSIONS_SNAPSHOT.splitlines(keepends=True)[:3])
    report = await run(sessionmaker, tmp_path, "missions", without_m3)
    assert (report.rows, report.deactivated) == (2, 1)
    assert (await one(sessionmaker, Mission, "M3")).actif is False
    assert (await one(sessionmaker, Mission, "M2")).actif is True
    assert (await one(sessionmaker, Mission, "MP1")).actif is True

    # Back in the next snapshots: active again, counted as updated.
    report = await run(sessionmaker, tmp_path, "aesh", AESH_SNAPSHOT)
    assert (report.updated, report.deactivated) == (1, 0)
    assert (await one(sessionmaker, Aesh, "A3")).actif is True
    report = await run(sessionmaker, tmp_path, "missions", MISSIONS_SNAPSHOT)
    assert (report.updated, report.deactivated) == (1, 0)
    assert (await one(sessionmaker, Mission, "M3")).actif is True
    # An ASSED snapshot leaves EPP alone.
    report = await run(sessionmaker, tmp_path, "aesh", "id;source;nom;prenom\nA2;ASSED;Roux;Paul\n")
    assert report.deactivated == 0
    assert (await one(sessionmaker, Aesh, "A1")).actif is True


async def test_affectation_key_upsert(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="affectations")
    report = await run(
        sessionmaker,
        tmp_path,
        "affectations",
        "mission_id;pial_rne;annee;heures\nM1;0620001A;2025;12\n",
    )
    assert (report.created, report.updated) == (0, 1)
    report = await run(
        sessionmaker,
        tmp_path,
        "affectations",
        "mission_id;pial_rne;annee;heures\nM1;0620001A;2026-2027;\n",
    )
    assert (report.created, report.updated) == (1, 0)
    async with sessionmaker() as s:
        rows = [tuple(r) for r in await s.execute(select(Affectation.annee, Affectation.heures))]
    assert sorted(rows) == [("2025-2026", 12.0), ("2026-2027", None)]


async def test_mission_hours_from_reference(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="aesh")
    async with sessionmaker() as s:
        s.add(ParametreAnnee(departement="062", annee="2025-2026", reference_heures=24.0))
        await s.commit()
    missions = """\
id;aesh_id;contrat;nature;debut;fin;quotite;heures;employeur_rne;pial_rne
M1;A1;T2-CDD;HI1D;2025-09-01;2026-08-31;50;;0620001A;
M2;A1;T2-CDD;HI1D;2025-09-01;2026-08-31;50;20,5;0620001A;
M3;A1;T2-CDD;HI1D;2026-09-01;2027-08-31;50;;0620001A;
M4;A2;HT2-CDD;EI1D;2025-09-01;2026-08-31;75;;;0620001A
"""
    await run(sessionmaker, tmp_path, "missions", missions)
    got = {}
    for mission_id in ("M1", "M2", "M3", "M4"):
        m = await one(sessionmaker, Mission, mission_id)
        got[mission_id] = (m.heures_rh, m.heures, m.departement)
    assert got == {
        "M1": (None, 12.0, "062"),
        "M2": (20.5, 20.5, "062"),
        "M3": (None, 12.0, "062"),  # none for 2026-2027: the latest earlier reference applies
        "M4": (None, 18.0, "062"),  # department from the PIAL when no employer is given
    }


async def test_aesh_departement(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="etablissements")
    await run(
        sessionmaker, tmp_path, "aesh", "id;source;nom;prenom;code_postal\nA1;EPP;L;M;97400\n"
    )
    assert (await one(sessionmaker, Aesh, "A1")).departement == "974"
    missions = (
        "id;aesh_id;contrat;nature;debut;employeur_rne\n"
        "M2;A1;T2-CDI;HI1D;2026-09-01;0620001A\n"
        "M1;A1;T2-CDD;HI1D;2025-09-01;0590001C\n"
    )
    await run(sessionmaker, tmp_path, "missions", missions)
    assert (await one(sessionmaker, Aesh, "A1")).departement == "059"
    # The next HR snapshot keeps the department of the first mission's employer.
    await run(
        sessionmaker, tmp_path, "aesh", "id;source;nom;prenom;code_postal\nA1;EPP;L;M;62000\n"
    )
    assert (await one(sessionmaker, Aesh, "A1")).departement == "059"


async def test_accompagnement_links_are_replaced(sessionmaker: Maker, tmp_path: Path) -> None:
    await load_all(sessionmaker, tmp_path, upto="accompagnements")
    changed = ACCOMPAGNEMENTS.replace("AC2;M2;D2|D3;", "AC2;M2;D3;")
    report = await run(sessionmaker, tmp_path, "accompagnements", changed)
    assert (report.updated, report.unchanged) == (1, 1)
    async with sessionmaker() as s:
        links = {tuple(r) for r in await s.execute(select(AccompagnementDecision.__table__))}
    assert links == {("AC1", "D1"), ("AC2", "D3")}


async def test_candidature_withdrawn_keeps_no_personal_link(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await run(sessionmaker, tmp_path, "candidats", CANDIDATS)
    withdrawn = CANDIDATS.replace(
        "C2;Petit;Anne;anne.petit@example.org;;M2_1D_PDC;Arras;en_examen;",
        "C2;Petit;Anne;anne.petit@example.org;;M2_1D_PDC;Arras;retirée;",
    )
    report = await run(sessionmaker, tmp_path, "candidats", withdrawn)
    assert (report.updated, report.unchanged) == (1, 2)
    async with sessionmaker() as s:
        c2 = (await s.scalars(select(Candidature).where(Candidature.source_id == "C2"))).one()
        assert (c2.statut, c2.candidat_id) == ("retiree", None)
        assert len((await s.scalars(select(Candidat))).all()) == 1
