"""Painkiller use and the WHO-5 in the exports (issue 16): a ``choices`` CSV column, FHIR
MedicationStatements per class taken (validated by fhir.resources as they are built) and a
WHO-5 Observation in the local score CodeSystem, on the synthetic cohort of test_outcomes."""

from __future__ import annotations

import csv
import io
import json

from bot.services import export
from tests.harness import TestDatabase as Database
from tests.services.course import services
from tests.services.test_outcomes import NOW, seed


async def test_csv_and_fhir_carry_painkillers_and_who5(database: Database) -> None:
    await seed(database)
    async with services(database, NOW) as svc:
        table = io.StringIO()
        await export.write_csv(svc.ctx, table)
        bundle = io.StringIO()
        await export.write_fhir(svc.ctx, bundle)
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    a_w6 = next(
        r for r in rows if r["patient_label"] == "S-A" and r["question_id"] == "painkillers"
    )
    assert (a_w6["time_point"], a_w6["choices"], a_w6["value"]) == ("w6", "weak_opioid", "2")
    before_b = next(
        r for r in rows if r["patient_label"] == "S-B" and r["question_id"] == "painkillers_before"
    )
    assert before_b["choices"] == "paracetamol"

    resources = [entry["resource"] for entry in json.loads(bundle.getvalue())["entry"]]
    statements = [r for r in resources if r["resourceType"] == "MedicationStatement"]
    taken = [s for s in statements if s["status"] == "completed"]
    codes = {c["code"] for s in taken for c in s["medicationCodeableConcept"]["coding"]}
    assert {"weak_opioid", "strong_opioid", "paracetamol", "N02A", "N02BE01"} <= codes
    assert {s["dosage"][0]["text"] for s in taken} >= {"on 2 of the last 7 days"}
    not_taken = [s for s in statements if s["status"] == "not-taken"]
    assert not_taken and all(
        s["medicationCodeableConcept"]["coding"][0]["code"] == "none" for s in not_taken
    )
    who5 = [
        r
        for r in resources
        if r["resourceType"] == "Observation"
        and r["code"]["coding"][0]["system"] == "urn:cryo-followup:score"
    ]
    assert sorted(o["valueInteger"] for o in who5) == [40, 50, 55, 60]
    assert all(o["code"]["coding"][0]["code"] == "who5-percentage" for o in who5)
