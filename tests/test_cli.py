"""The `aesh` command line as other tools use it (interfaces §2, §4, §5): a real process,
a real SQLite file, exit codes 0 / 1 / 2 and the JSON shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def aesh(tmp: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AESH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'cli.db'}",
        "AESH_DEPARTEMENT": "062",
        "AESH_STORAGE_DIR": str(tmp / "files"),
    }
    res = subprocess.run(
        [sys.executable, "-m", "aesh", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check is not None:
        assert res.returncode == check, res.stdout + res.stderr
    return res


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo department, generated and imported once for the module."""
    tmp = tmp_path_factory.mktemp("cli")
    aesh(
        tmp,
        "demo-data",
        "--scale",
        "departement",
        "--seed",
        "7",
        "--annee",
        "2025-2026",
        "--out",
        str(tmp / "demo"),
    )
    aesh(tmp, "demo-load", "--dir", str(tmp / "demo"))
    return tmp


def test_usage_error_exits_2(tmp_path: Path) -> None:
    assert aesh(tmp_path, "report", "nope", check=None).returncode == 2
    assert aesh(tmp_path, "report", "coverage", "--date", "31/02/2025", check=None).returncode == 2


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    aesh(tmp_path, "db", "upgrade")
    aesh(tmp_path, "db", "upgrade")
    assert (tmp_path / "cli.db").exists()


def test_refused_import_exits_1_naming_file_row_and_column(tmp_path: Path) -> None:
    f = write(
        tmp_path / "etabs.csv",
        "rne;nom;commune;code_postal;latitude;longitude;pial_rne;secteur;email\n"
        "0620001A;École A;Arras;62000;50,29;2,77;;Arras 1;\n"
        "0620002B;École B;Arras;62000;pas un nombre;2,77;;Arras 1;\n",
    )
    res = aesh(tmp_path, "import", "etablissements", str(f), check=1)
    assert "3" in res.stderr and "latitude" in res.stderr and "etabs.csv" in res.stderr
    out = aesh(tmp_path, "report", "coverage", "--json").stdout
    assert json.loads(out)["decisions"] == []


def test_import_then_reimport_changes_nothing(tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.csv",
        "\ufeffrne,nom,commune,code_postal,latitude,longitude,pial_rne,secteur,email\n"
        "0620001A,École A,Arras,62000,50.29,2.77,0620001A,Arras 1,ce@ac-lille.fr\n",
    )
    first = json.loads(aesh(tmp_path, "import", "etablissements", str(f), "--json").stdout)
    again = json.loads(aesh(tmp_path, "import", "etablissements", str(f), "--json").stdout)
    assert first["created"] == 1 and (again["created"], again["updated"]) == (0, 0)


def test_coverage_json_contract(demo: Path) -> None:
    data = json.loads(
        aesh(
            demo, "report", "coverage", "--annee", "2025-2026", "--date", "2025-10-01", "--json"
        ).stdout
    )
    assert data["date"] == "2025-10-01"
    rows = data["decisions"]
    assert rows
    keys = {
        "decision_id",
        "eleve_id",
        "type",
        "heures",
        "debut",
        "fin",
        "couverture",
        "priorite",
        "depassement",
        "etat",
        "accompagnement_ids",
    }
    assert all(keys <= set(r) for r in rows)
    prio = [(-r["priorite"], r["debut"], r["decision_id"]) for r in rows]
    assert prio == sorted(prio)
    assert {r["etat"] for r in rows} <= {
        "aucune",
        "partielle",
        "complete",
        "depassement",
        "sans_scolarite",
        "hors_periode",
    }
    assert all(0 <= r["couverture"] <= 1 for r in rows)


def test_secteur_and_pial_filters(demo: Path) -> None:
    whole = json.loads(aesh(demo, "report", "coverage", "--annee", "2025-2026", "--json").stdout)
    secteur = json.loads(
        aesh(demo, "report", "indicateurs", "--annee", "2025-2026", "--json").stdout
    )
    assert secteur["total"] == len(whole["decisions"])
    import sqlite3

    con = sqlite3.connect(demo / "cli.db")
    sect = con.execute("SELECT secteur FROM eleves LIMIT 1").fetchone()[0]
    pial = con.execute("SELECT rne FROM pials LIMIT 1").fetchone()[0]
    con.close()
    part = json.loads(
        aesh(demo, "report", "coverage", "--annee", "2025-2026", "--secteur", sect, "--json").stdout
    )
    ids = {r["decision_id"] for r in part["decisions"]}
    assert part["decisions"] == [r for r in whole["decisions"] if r["decision_id"] in ids]
    by_pial = json.loads(
        aesh(demo, "report", "coverage", "--annee", "2025-2026", "--pial", pial, "--json").stdout
    )
    assert 0 < len(by_pial["decisions"]) < len(whole["decisions"])


def test_other_reports_json_contracts(demo: Path) -> None:
    an = json.loads(aesh(demo, "report", "anomalies", "--annee", "2025-2026", "--json").stdout)
    assert set(an["counts"]) == {str(i) for i in range(1, 9)}
    assert sum(an["counts"].values()) == len(an["items"]) > 0  # the demo plants anomalies
    assert all(set(i) >= {"type", "accompagnement_id", "detail"} for i in an["items"])
    pial = json.loads(aesh(demo, "report", "pial", "--annee", "2025-2026", "--json").stdout)
    keys = {
        "pial_rne",
        "nb_individuelles",
        "nb_mutualisees",
        "besoin_moyen",
        "moyens_moyen",
        "couverture_moyenne",
    }
    assert pial["annee"] == "2025-2026" and pial["pials"]
    assert all(set(r) == keys for r in pial["pials"])
    assert set(pial["departement"]) == keys - {"pial_rne"}
    ind = json.loads(aesh(demo, "report", "indicateurs", "--annee", "2025-2026", "--json").stdout)
    assert ind["total"] == ind["sans_accompagnement"] + ind["avec_accompagnement"]
    assert list(ind["par_mois"]) == [f"2025-{m:02d}" for m in range(9, 13)] + [
        f"2026-{m:02d}" for m in range(1, 9)
    ]
    cas = json.loads(
        aesh(demo, "report", "cas-particuliers", "--annee", "2025-2026", "--json").stdout
    )
    assert set(cas) >= {"non_couvertes_apres_accompagnement", "echeance_non_renouvelee"}
    assert cas["echeance_non_renouvelee"]


def test_text_reports_are_french_tables(demo: Path) -> None:
    out = aesh(demo, "report", "coverage", "--annee", "2025-2026").stdout
    assert "Couverture" in out and "Priorité" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Décision"))
    assert set(lines[header + 1]) <= {"-", " "}
    out = aesh(demo, "report", "pial", "--annee", "2025-2026").stdout
    assert "Département" in out


def test_param_commands(demo: Path) -> None:
    res = aesh(demo, "param", "formule", "--annee", "2025-2026", "intdiv(cM, 5) * 30 +", check=1)
    assert "position" in res.stderr
    aesh(
        demo,
        "param",
        "formule",
        "--annee",
        "2025-2026",
        "intdiv(cM, 5) * 32 + (cM % 5 > 0 ? 24 : 0)",
    )
    aesh(demo, "param", "reference", "--annee", "2025-2026", "--heures", "41")
    assert (
        aesh(
            demo, "param", "reference", "--annee", "2025-2026", "--heures", "abc", check=None
        ).returncode
        == 2
    )
    bad = write(demo / "c.json", json.dumps({"academie": "Lille"}))
    assert "manque" in aesh(demo, "param", "cartouche", "--file", str(bad), check=1).stderr
    fields = [
        "academie",
        "direction",
        "service",
        "adresse",
        "code_postal",
        "commune",
        "telephone",
        "email",
        "signataire",
        "qualite_signataire",
    ]
    good = write(demo / "c.json", json.dumps({f: f"valeur {f}" for f in fields}))
    aesh(demo, "param", "cartouche", "--file", str(good))
    assert aesh(demo, "param", "cartouche", "--file", str(demo / "absent.json"), check=1).stderr


def test_auto_affecter(demo: Path) -> None:
    res = json.loads(aesh(demo, "pial", "auto-affecter", "--annee", "2025-2026", "--json").stdout)
    assert res["affectees"]  # the demo leaves some missions for automatic affectation
    again = json.loads(aesh(demo, "pial", "auto-affecter", "--annee", "2025-2026", "--json").stdout)
    assert again["affectees"] == []
