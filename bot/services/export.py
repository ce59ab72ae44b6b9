"""Exports for research and the hospital record: CSV (one row per answer) and FHIR R4.

Both are pseudonymous: the patient appears only as the unit's label. Both stream: the CSV reads
answers in chunks through a server-side cursor (``yield_per``), the FHIR Bundle is written one
episode at a time, so memory stays flat whether the unit has a hundred answers or a million.

FHIR resources are built and validated with ``fhir.resources``' R4B models (the closest to R4
it ships; Patient, Procedure, QuestionnaireResponse and Observation are the same in R4 and R4B
for every element used here). The Bundle envelope is the library's too; only the joining of
the streamed entries into its ``entry`` array is done by hand.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from bot.db.models import Answer, CheckIn, Episode, Patient
from bot.db.queries.views import (
    answer_rows,
    answers_of_episode,
    checkins_of_episode,
    episode_ids_with_answers,
)
from bot.domain.protocol import Protocol, Question
from bot.domain.scores import koos_jr_interval
from bot.domain.states import CheckInStatus
from bot.services.context import ServiceContext
from bot.services.export_outcomes import outcome_resources, painkiller_answer_values

#: Rows fetched per round trip: large enough to be fast, small enough to keep memory flat.
CHUNK = 1000
CSV_COLUMNS = (
    "episode_id",
    "patient_label",
    "time_point",
    "day",
    "question_id",
    "kind",
    "raw_text",
    "value",
    "score",
    "option_id",
    "flags",
    "status",
    "answered_at_utc",
    # What a multi-choice answer chose: the painkiller classes taken (value = days out of 7).
    "choices",
)
#: Flags are joined with this in one CSV cell (flag ids never contain it).
FLAG_SEPARATOR = "|"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
#: The unit's own patient label; a hospital that has an OID for its patient numbers can pass it.
LABEL_SYSTEM = "urn:cryo-followup:patient-label"
KOOS_JR_SCORE_LOINC = "82332-8"
#: A computed KOOS JR interval score stored as an answer by the scoring code, when present.
KOOS_JR_SCORE_QUESTION = "koos_jr_score"
BASELINE_QUESTION = "baseline"
_LOINC_DISPLAY = {
    "72514-3": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    KOOS_JR_SCORE_LOINC: "KOOS JR interval score",
}
_KNEE = {
    "left": [("82169009", "Structure of left knee region")],
    "right": [("6757004", "Structure of right knee region")],
}
_KNEE["both"] = _KNEE["left"] + _KNEE["right"]
_QR_STATUS = {
    CheckInStatus.ANSWERED: "completed",
    CheckInStatus.PARTIAL: "stopped",
    CheckInStatus.MISSED: "stopped",
    CheckInStatus.AWAITING: "in-progress",
    CheckInStatus.SENDING: "in-progress",
}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cryo-followup")


# --- CSV -------------------------------------------------------------------------------------


async def csv_rows(
    ctx: ServiceContext, *, since: datetime | None = None
) -> AsyncIterator[list[str]]:
    """Every answer as a CSV row (strings, in :data:`CSV_COLUMNS` order), fetched in chunks."""
    async with ctx.sessions() as session:
        async for row in answer_rows(session, since=since, chunk=CHUNK):
            (episode_id, label, time_point, day, question_id, kind, raw, value, score, option,
             flags, status, created_at, choices) = row  # fmt: skip
            yield [
                str(episode_id),
                label,
                time_point or "",
                str(day),
                question_id or "",
                kind,
                raw or "",
                "" if value is None else str(value),
                "" if score is None else repr(score),
                option or "",
                FLAG_SEPARATOR.join(flags or []),
                status,
                created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                FLAG_SEPARATOR.join(choices or []),
            ]


async def write_csv(ctx: ServiceContext, out: TextIO, *, since: datetime | None = None) -> int:
    """Write the CSV export (header + one row per answer) to ``out``; returns the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for row in csv_rows(ctx, since=since):
        writer.writerow(row)
        count += 1
    return count


# --- FHIR R4 ---------------------------------------------------------------------------------


def _uuid(kind: str, key: int | str) -> str:
    """A stable id: exporting twice gives the same resource ids, so a receiver can update."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


def _url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


@dataclass
class EpisodeData:
    """One episode and its rows, as the FHIR builders need them."""

    episode: Episode
    label: str
    protocol: Protocol
    checkins: list[CheckIn]
    answers: list[Answer]


def _patient(data: EpisodeData, identifier_system: str) -> FhirPatient:
    return FhirPatient.model_validate(
        {
            "resourceType": "Patient",
            "id": _uuid("patient", data.episode.patient_id),
            "identifier": [{"system": identifier_system, "value": data.label}],
        }
    )


def _procedure(data: EpisodeData) -> Procedure:
    episode, protocol = data.episode, data.protocol
    return Procedure.model_validate(
        {
            "resourceType": "Procedure",
            "id": _uuid("procedure", episode.id),
            "status": "completed",
            "subject": {"reference": _url(_uuid("patient", episode.patient_id))},
            "code": {
                "coding": [
                    {
                        "system": f"urn:cryo-followup:protocol:{protocol.id}",
                        "code": protocol.id,
                        "display": protocol.title.get("en"),
                    }
                ],
                "text": "Knee cryoneurolysis",
            },
            "performedDateTime": episode.procedure_at,
            "bodySite": [
                {
                    "coding": [
                        {"system": SNOMED, "code": code, "display": display}
                        for code, display in _KNEE.get(episode.side, [])
                    ],
                    "text": f"{episode.side} knee",
                }
            ],
            "reasonCode": [{"text": episode.indication.replace("_", " ")}],
        }
    )


def _answer_values(protocol: Protocol, question: Question, answer: Answer) -> list[dict[str, Any]]:
    """The QuestionnaireResponse answer(s) of one saved answer; empty when nothing to say."""
    system = f"urn:cryo-followup:{protocol.id}:{question.id}"
    if question.type == "scale" and answer.value is not None:
        return [{"valueInteger": answer.value}]
    if question.type == "choice":
        option = next((o for o in question.options if o.id == answer.option_id), None)
        if option is None:
            return []
        return [
            {
                "valueCoding": {
                    "system": system,
                    "code": option.id,
                    "display": option.label.get("en"),
                }
            }
        ]
    if question.type == "yes_no" and answer.value is not None:
        return [{"valueBoolean": bool(answer.value)}]
    if question.type == "checklist":
        flags_system = f"urn:cryo-followup:{protocol.id}:red-flags"
        if not answer.flags:
            return [{"valueCoding": {"system": flags_system, "code": "none", "display": "None"}}]
        return [
            {
                "valueCoding": {
                    "system": flags_system,
                    "code": flag,
                    "display": protocol.red_flags[flag].label.get("en"),
                }
            }
            for flag in answer.flags
            if flag in protocol.red_flags
        ]
    if question.type == "text" and answer.raw_text:
        return [{"valueString": answer.raw_text}]
    if question.type == "painkillers":
        return painkiller_answer_values(answer.choices or (), answer.value)
    return []


def _questionnaire_response(
    data: EpisodeData, checkin: CheckIn, answers: list[Answer]
) -> QuestionnaireResponse | None:
    protocol, episode = data.protocol, data.episode
    latest: dict[str, Answer] = {}
    for answer in answers:
        if answer.status == "ok" and answer.question_id is not None:
            latest[answer.question_id] = answer
    items = []
    for question_id, answer in latest.items():
        try:
            question = protocol.question(question_id)
        except KeyError:
            continue
        values = _answer_values(protocol, question, answer)
        if values:
            items.append(
                {
                    "linkId": question.id,
                    "text": question.text.get(episode.language),
                    "answer": values,
                }
            )
    if not items:
        return None
    authored = checkin.closed_at or max(a.created_at for a in answers)
    return QuestionnaireResponse.model_validate(
        {
            "resourceType": "QuestionnaireResponse",
            "id": _uuid("checkin", checkin.id),
            "questionnaire": (
                f"urn:cryo-followup:questionnaire:{protocol.id}:{checkin.def_id}|{protocol.version}"
            ),
            "status": _QR_STATUS.get(checkin.status, "in-progress"),
            "subject": {"reference": _url(_uuid("patient", episode.patient_id))},
            "partOf": [{"reference": _url(_uuid("procedure", episode.id))}],
            "authored": authored,
            "item": items,
        }
    )


def _observation(
    data: EpisodeData,
    *,
    key: str,
    loinc: str,
    when: datetime,
    value: dict[str, Any],
    derived_from: str | None,
    note: str | None = None,
) -> Observation:
    episode = data.episode
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _uuid("observation", key),
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
            "coding": [{"system": LOINC, "code": loinc, "display": _LOINC_DISPLAY.get(loinc)}]
        },
        "subject": {"reference": _url(_uuid("patient", episode.patient_id))},
        "partOf": [{"reference": _url(_uuid("procedure", episode.id))}],
        "effectiveDateTime": when,
        **value,
    }
    if derived_from is not None:
        resource["derivedFrom"] = [{"reference": _url(derived_from)}]
    if note is not None:
        resource["note"] = [{"text": note}]
    return Observation.model_validate(resource)


def _koos_jr_score(protocol: Protocol, answers: list[Answer]) -> float | None:
    """The check-in's KOOS JR interval score: as stored by the conversation, else computed."""
    for answer in answers:
        if answer.question_id == KOOS_JR_SCORE_QUESTION and answer.status == "ok":
            if answer.score is not None:
                return answer.score
            return float(answer.value) if answer.value is not None else None
    items = [q.id for q in protocol.questions if q.score == "koos_jr"]
    values: dict[str, int] = {
        a.question_id: a.value
        for a in answers
        if a.question_id in items and a.status == "ok" and a.value is not None
    }
    if not items or any(item not in values for item in items):
        return None
    return koos_jr_interval([values[item] for item in items])


def episode_resources(data: EpisodeData) -> list[Any]:
    """Procedure, QuestionnaireResponses and Observations of one episode (Patient apart)."""
    protocol = data.protocol
    resources: list[Any] = [_procedure(data)]
    tracked_loinc = protocol.question(protocol.tracked_question).loinc
    by_checkin: dict[int, list[Answer]] = {}
    for answer in data.answers:
        if answer.checkin_id is not None:
            by_checkin.setdefault(answer.checkin_id, []).append(answer)
        elif (
            answer.question_id == BASELINE_QUESTION
            and answer.status == "ok"
            and answer.value is not None
            and tracked_loinc
        ):
            resources.append(
                _observation(
                    data,
                    key=f"answer:{answer.id}",
                    loinc=tracked_loinc,
                    when=answer.created_at,
                    value={"valueInteger": answer.value},
                    derived_from=None,
                    note="Baseline: average knee pain before the procedure",
                )
            )
    for checkin in data.checkins:
        answers = by_checkin.get(checkin.id, [])
        if not answers:
            continue
        response = _questionnaire_response(data, checkin, answers)
        derived = response.id if response is not None else None
        if response is not None:
            resources.append(response)
        for answer in answers:
            if answer.status != "ok" or answer.value is None or answer.question_id is None:
                continue
            try:
                question = protocol.question(answer.question_id)
            except KeyError:
                continue
            if question.loinc and question.type == "scale":
                resources.append(
                    _observation(
                        data,
                        key=f"answer:{answer.id}",
                        loinc=question.loinc,
                        when=answer.created_at,
                        value={"valueInteger": answer.value},
                        derived_from=derived,
                    )
                )
        score = _koos_jr_score(protocol, answers)
        if score is not None:
            resources.append(
                _observation(
                    data,
                    key=f"koos_jr:{checkin.id}",
                    loinc=KOOS_JR_SCORE_LOINC,
                    when=max(a.created_at for a in answers),
                    value={
                        "valueQuantity": {
                            "value": round(score, 3),
                            "unit": "{score}",
                            "system": UCUM,
                            "code": "{score}",
                        }
                    },
                    derived_from=derived,
                )
            )
        resources.extend(
            outcome_resources(
                painkiller_questions=[q.id for q in protocol.questions if q.type == "painkillers"],
                checkin=checkin,
                answers=answers,
                resource_id=_uuid,
                subject=_url(_uuid("patient", data.episode.patient_id)),
                part_of=_url(_uuid("procedure", data.episode.id)),
                derived_from=_url(derived) if derived else None,
            )
        )
    return resources


async def _episodes(ctx: ServiceContext, since: datetime | None) -> AsyncIterator[EpisodeData]:
    """Episodes that have answers (since ``since``), one at a time with their rows."""
    async with ctx.sessions() as session:
        episode_ids = await episode_ids_with_answers(session, since=since)
    for episode_id in episode_ids:
        async with ctx.sessions() as session:
            episode = await session.get(Episode, episode_id)
            assert episode is not None
            patient = await session.get(Patient, episode.patient_id)
            assert patient is not None
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            checkins = await checkins_of_episode(session, episode_id=episode_id)
            answers = await answers_of_episode(session, episode_id=episode_id, since=since)
        yield EpisodeData(episode, patient.label, protocol, checkins, answers)


async def write_fhir(
    ctx: ServiceContext,
    out: TextIO,
    *,
    since: datetime | None = None,
    identifier_system: str = LABEL_SYSTEM,
) -> int:
    """Write a FHIR R4 Bundle (type collection) to ``out``; returns the number of entries."""
    envelope = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "collection",
            "timestamp": ctx.clock.now(),
        }
    ).model_dump_json()
    assert envelope.endswith("}")
    count = 0
    seen_patients: set[int] = set()
    async for data in _episodes(ctx, since):
        resources = episode_resources(data)
        if data.episode.patient_id not in seen_patients:
            seen_patients.add(data.episode.patient_id)
            resources.insert(0, _patient(data, identifier_system))
        for resource in resources:
            entry = BundleEntry.model_validate({"fullUrl": _url(resource.id), "resource": resource})
            out.write(envelope[:-1] + ',"entry":[' if count == 0 else ",")
            out.write(entry.model_dump_json())
            count += 1
    out.write(envelope if count == 0 else "]}")
    return count
