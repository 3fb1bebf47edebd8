"""French terminal views of reports: rows from the services, words from the templates."""

from __future__ import annotations

from typing import Any

from aesh.tables import format_table, fr_number, fr_percent
from core.perimeter import Perimeter
from core.texts import render, t

ETATS = ("aucune", "partielle", "complete", "depassement", "sans_scolarite", "hors_periode")


def _scope(p: Perimeter) -> str:
    return t(
        "cli.perimetre",
        departement=p.departement,
        secteurs=sorted(p.secteurs or []),
        pial=p.pial_rne,
    )


def render_report(kind: str, data: dict[str, Any], p: Perimeter) -> str:
    return render(f"cli/{kind}.txt.j2", data=data, scope=_scope(p), table=_table(kind, data))


def _table(kind: str, data: dict[str, Any]) -> str:
    if kind == "coverage":
        rows = [
            [
                d["decision_id"],
                d["eleve_id"],
                t(f"cli.type_{d['type']}"),
                fr_number(d["heures"], 1) if d["heures"] is not None else "—",
                _d(d["debut"]),
                _d(d["fin"]),
                fr_percent(d["couverture"]),
                fr_number(d["priorite"], 4),
                t("cli.oui") if d["depassement"] else "",
                t(f"cli.etat_{d['etat']}"),
                len(d["accompagnement_ids"]),
            ]
            for d in data["decisions"]
        ]
        return format_table(t("cli.coverage_headers").split("|"), rows, right={3, 6, 7, 10})
    if kind == "anomalies":
        rows = [[k, t(f"anomalies.libelle_{k}"), n] for k, n in data["counts"].items()]
        summary = format_table(t("cli.anomalies_headers").split("|"), rows, right={0, 2})
        items = [[i["type"], i["accompagnement_id"], i["detail"]] for i in data["items"]]
        if not items:
            return summary
        detail = format_table(t("cli.anomalies_items_headers").split("|"), items, right={0})
        return summary + "\n\n" + detail
    if kind == "pial":

        def row(rne: str, r: dict[str, Any]) -> list[object]:
            return [
                rne,
                r["nb_individuelles"],
                r["nb_mutualisees"],
                fr_number(r["besoin_moyen"]),
                fr_number(r["moyens_moyen"]),
                fr_percent(r["couverture_moyenne"]),
            ]

        rows = [row(r["pial_rne"], r) for r in data["pials"]]
        rows.append(row(t("cli.departement_ligne"), data["departement"]))
        return format_table(t("cli.pial_headers").split("|"), rows, right={1, 2, 3, 4, 5})
    if kind == "indicateurs":
        rows = [[m, n] for m, n in data["par_mois"].items()]
        return format_table(t("cli.indicateurs_headers").split("|"), rows, right={1})
    return ""


def _d(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}/{m}/{y}"
