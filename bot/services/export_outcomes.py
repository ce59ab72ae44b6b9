"""The outcome data in the FHIR export (issue 16): painkiller use and the WHO-5 score.

* Painkiller use at a check-in: one MedicationStatement per class taken (status ``completed``,
  over the 7 days before the answer, "on N of the last 7 days"), or one ``not-taken`` statement
  for "no painkiller". Classes are coded in the local CodeSystem
  ``urn:cryo-followup:painkiller-class`` (README, "Exports"), with the WHO ATC group beside it
  where one exists (paracetamol N02BE01, NSAIDs M01A, opioids N02A; weak and strong opioids
  have no ATC group of their own).
* The WHO-5 percentage score: an Observation coded in the local CodeSystem
  ``urn:cryo-followup:score`` (``who5-percentage``): no LOINC code for the WHO-5 total could be
  confirmed, so none is claimed.

Built as plain dicts and validated with ``fhir.resources``' R4B models, like the rest of the
export; the caller passes the references (patient, procedure, questionnaire response) so this
module needs nothing of the export's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation

from bot.db.models import Answer, CheckIn
from bot.domain.painkillers import CLASS_IDS

PAINKILLER_SYSTEM = "urn:cryo-followup:painkiller-class"
SCORE_SYSTEM = "urn:cryo-followup:score"
ATC = "http://www.whocc.no/atc"
WHO5_CODE = "who5-percentage"
WHO5_SCORE_QUESTION = "who5_score"
_DISPLAY = {
    "none": "No painkiller",
    "paracetamol": "Paracetamol",
    "nsaid": "Anti-inflammatory (NSAID)",
    "weak_opioid": "Weak opioid (tramadol, codeine, opium)",
    "strong_opioid": "Strong opioid",
    "other": "Other painkiller",
}
_ATC = {
    "paracetamol": ("N02BE01", "paracetamol"),
    "nsaid": ("M01A", "Antiinflammatory and antirheumatic products, non-steroids"),
    "weak_opioid": ("N02A", "Opioids"),
    "strong_opioid": ("N02A", "Opioids"),
}
_WEEK = timedelta(days=7)


def _concept(class_id: str) -> dict[str, Any]:
    coding = [{"system": PAINKILLER_SYSTEM, "code": class_id, "display": _DISPLAY[class_id]}]
    if class_id in _ATC:
        code, display = _ATC[class_id]
        coding.append({"system": ATC, "code": code, "display": display})
    return {"coding": coding, "text": _DISPLAY[class_id]}


def painkiller_answer_values(classes: Iterable[str], days: int | None) -> list[dict[str, Any]]:
    """The QuestionnaireResponse answers of a painkiller answer: one coding per class."""
    taken = [c for c in CLASS_IDS if c in set(classes)]
    values: list[dict[str, Any]] = [
        {"valueCoding": {"system": PAINKILLER_SYSTEM, "code": c, "display": _DISPLAY[c]}}
        for c in taken or ["none"]
    ]
    if taken and days is not None:
        values.append({"valueInteger": days})
    return values


def outcome_resources(
    *,
    painkiller_questions: Sequence[str],
    checkin: CheckIn,
    answers: Sequence[Answer],
    resource_id: Callable[[str, str], str],
    subject: str,
    part_of: str,
    derived_from: str | None,
) -> list[Any]:
    """MedicationStatements and the WHO-5 Observation of one check-in's answers."""
    resources: list[Any] = []
    latest: Answer | None = None
    for answer in answers:
        if answer.question_id in painkiller_questions and answer.status == "ok":
            latest = answer
    reference = [{"reference": derived_from}] if derived_from else None
    if latest is not None:
        taken = [c for c in CLASS_IDS if c in set(latest.choices or ())]
        period = {"start": latest.created_at - _WEEK, "end": latest.created_at}
        for class_id in taken or ["none"]:
            statement: dict[str, Any] = {
                "resourceType": "MedicationStatement",
                "id": resource_id("medication", f"{latest.id}:{class_id}"),
                "status": "completed" if taken else "not-taken",
                "medicationCodeableConcept": _concept(class_id if taken else "none"),
                "subject": {"reference": subject},
                "partOf": [{"reference": part_of}],
                "effectivePeriod": period,
                "dateAsserted": latest.created_at,
                "informationSource": {"reference": subject},
            }
            if taken and latest.value is not None:
                statement["dosage"] = [{"text": f"on {latest.value} of the last 7 days"}]
            if reference:
                statement["derivedFrom"] = reference
            resources.append(MedicationStatement.model_validate(statement))
    for answer in answers:
        if answer.question_id != WHO5_SCORE_QUESTION or answer.status != "ok":
            continue
        if answer.value is None:
            continue
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": resource_id("observation", f"who5:{checkin.id}"),
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": SCORE_SYSTEM,
                        "code": WHO5_CODE,
                        "display": "WHO-5 Well-Being Index, percentage score (0-100)",
                    }
                ],
                "text": "WHO-5 Well-Being Index",
            },
            "subject": {"reference": subject},
            "partOf": [{"reference": part_of}],
            "effectiveDateTime": answer.created_at,
            "valueInteger": answer.value,
        }
        if reference:
            observation["derivedFrom"] = reference
        resources.append(Observation.model_validate(observation))
    return resources
