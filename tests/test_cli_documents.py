"""`aesh pv ACCOMPAGNEMENT_ID --out FILE.pdf` as other tools run it: a real process on a real
SQLite file (interfaces §2), exit 0 with a French confirmation, 1 with the French refusal."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.db import make_engine, make_sessionmaker, upgrade
from core.services import parametres
from tests.core.builders import World

CARTOUCHE = {
    "academie": "Académie de Lille",
    "direction": "Direction des services départementaux de l’Éducation nationale",
    "service": "Service « AESH »",
    "adresse": "20 boulevard de la Liberté",
    "code_postal": "62000",
    "commune": "Arras",
    "telephone": "03 21 00 00 00",
    "email": "ce.aesh62@ac-lille.fr",
    "signataire": "Jean Dupont",
    "qualite_signataire": "L’inspecteur d’académie",
}


def aesh(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AESH_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "AESH_DEPARTEMENT": "062",
        "AESH_STORAGE_DIR": str(db.parent / "files"),
    }

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=db.parent, env=env, capture_output=True, text=True, timeout=300
        )

    return run([sys.executable, "-m", "aesh", *args])


async def _fill(db: Path, cartouche: bool) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        w.pial("0620001A")
        w.etab("0620001A", pial="0620001A", nom="Collège Jean Jaurès", commune="Lens")
        w.eleve("EL0042", nom="Durand", prenom="Émilie")
        w.eleve("EL0043", nom="Lefèvre", prenom="Jean-Pierre")
        for e in ("EL0042", "EL0043"):
            w.scol(e, "0620001A", "01/09/2024", None)
        w.decision("D1", "EL0042", "01/09/2025", "31/08/2026", heures=18)
        w.decision("M1", "EL0043", "01/09/2025", "31/08/2026")
        w.aesh("AE1")
        w.mission("MI1", "AE1", "01/09/2025", None, heures=24)
        w.acc("AC1", "MI1", "D1", "0620001A", "01/09/2025", "31/08/2026", 18)
        w.acc("AC2", "MI1", "M1", "0620001A", "01/09/2025", "31/08/2026", 6)
        await w.flush()
        if cartouche:
            await parametres.set_cartouche(s, "062", dict(CARTOUCHE))
        await s.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pv") / "cli.db"
    asyncio.run(_fill(path, cartouche=True))
    return path


def pdf_text(path: Path) -> str:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return " ".join(" ".join(p.extract_text() for p in reader.pages).split())


def test_pv_writes_the_pdf_and_confirms_in_french(db: Path) -> None:
    out = db.parent / "pv AC1.pdf"
    res = aesh(db, "pv", "AC1", "--out", str(out), "--date", "12/03/2026")
    assert res.returncode == 0, res.stderr
    assert "PV d'affectation de l'accompagnement AC1 écrit dans" in res.stdout
    text = pdf_text(out)
    for expected in ("MARTIN", "Léa", "Émilie DURAND", "18 h", "du 01/09/2025 au 31/08/2026"):
        assert expected in text, expected
    assert "Fait à Arras, le 12/03/2026" in text
    assert "L’inspecteur d’académie" in text


def test_pv_externe_names_students_by_initials(db: Path) -> None:
    out = db.parent / "externe.pdf"
    res = aesh(db, "pv", "AC2", "--out", str(out), "--externe")
    assert res.returncode == 0, res.stderr
    assert "initiales" in res.stdout
    text = pdf_text(out)
    assert "J.-P. L." in text and "EL0043" in text
    assert "Lefèvre" not in text and "Jean-Pierre" not in text


def test_pv_refusals_exit_1_with_the_french_message(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.pdf"
    unknown = aesh(db, "pv", "AC-NOPE", "--out", str(out))
    assert unknown.returncode == 1
    assert "Accompagnement AC-NOPE introuvable" in unknown.stderr
    elsewhere = aesh(db, "pv", "AC1", "--out", str(out), "--departement", "059")
    assert elsewhere.returncode == 1 and "introuvable" in elsewhere.stderr

    bare = tmp_path / "bare.db"
    asyncio.run(_fill(bare, cartouche=False))
    refused = aesh(bare, "pv", "AC1", "--out", str(out))
    assert refused.returncode == 1
    assert "cartouche" in refused.stderr and "signataire (signataire)" in refused.stderr
    assert not out.exists()


def test_pv_usage_error_exits_2(db: Path) -> None:
    assert aesh(db, "pv", "AC1").returncode == 2  # --out is required
