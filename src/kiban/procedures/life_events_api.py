"""JSON routes of the life events: the counter's (arrivals, 特例転入, slots, checklists; staff
session, roles checked by the service), the resident's booking by reference, and the endpoint
another deployment's hub forwards move-out data to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kiban.platform.auth import Permission, Session
from kiban.privacy.access import PersonalRead, personal_read
from kiban.procedures.life_events import LifeEvents
from kiban.web.deps import api_session, idempotent, services

router = APIRouter(tags=["life-events"])
BASE = "/api/v1/municipalities/{lgcode}/life-events"
FIELDS = ["name", "kana", "birth_date", "sex", "relationship", "previous_address", "life_event_tasks"]
ArrivalRead = Annotated[PersonalRead, Depends(personal_read("resident_registration", FIELDS))]
TaskRead = Annotated[PersonalRead, Depends(personal_read("resident_registration", ["life_event_tasks",
                                                                                   "evidence"]))]
StaffAuth = Annotated[Session, Depends(api_session)]


def life_events(request: Request) -> LifeEvents:
    return services(request).life_events


class Address(BaseModel):
    town_code: str = Field(max_length=20)
    banchi: str = Field(max_length=100)
    katagaki: str = Field(default="", max_length=100)


class SpecialMoveInBody(BaseModel):
    occurred_on: str = Field(max_length=10, description="転入日 (YYYY-MM-DD)")
    notified_on: str | None = Field(default=None, max_length=10, description="届出日 (default today)")
    address: Address | None = None
    household_id: str | None = Field(default=None, max_length=32, description="join this household instead")
    relationships: dict[str, str] | None = Field(default=None, description="seq -> 続柄, when joining")
    late_reason: str | None = Field(default=None, max_length=500)


class SlotIn(BaseModel):
    starts_at: str = Field(max_length=40)
    capacity: int = 1


class SlotsBody(BaseModel):
    slots: list[SlotIn] = Field(max_length=200)


class BookingBody(BaseModel):
    slot_id: str = Field(max_length=32)


class ReferenceBookingBody(BaseModel):
    lgcode: str = Field(max_length=6)
    reference: str = Field(max_length=64)
    birth_date: str = Field(max_length=10)
    slot_id: str = Field(max_length=32)


class TaskStateBody(BaseModel):
    state: str = Field(max_length=20)


# --- the departure ------------------------------------------------------------------------

@router.get(f"{BASE}/moves")
def moves(request: Request, lgcode: str, read: ArrivalRead) -> dict[str, Any]:
    """Moves out sent from this municipality (転出証明書情報 through the hub) and their state."""
    found = life_events(request).moves(read.session.staff, lgcode)
    read.record([rid for m in found for rid in m["resident_ids"]], ["life_event_moves"])
    return {"items": found}


@router.post(f"{BASE}/moves/{{move_id}}/resend")
def resend(request: Request, lgcode: str, move_id: str, session: StaffAuth) -> dict[str, Any]:
    return life_events(request).resend(session.staff, lgcode, move_id)


# --- the destination ----------------------------------------------------------------------

@router.get(f"{BASE}/arrivals")
def arrivals(request: Request, lgcode: str, read: ArrivalRead) -> dict[str, Any]:
    """Moves whose 転出証明書情報 was received (for the counter)."""
    found = life_events(request).arrivals(read.session.staff, lgcode)
    if found:  # people not yet residents here are recorded as one bulk read of the arrivals
        ids = [p["resident_id"] for a in found for p in a["people"] if p["resident_id"]]
        read.record(ids or ["*"], detail={"arrivals": [a["move_id"] for a in found]})
    return {"items": found}


@router.get(f"{BASE}/arrivals/{{move_id}}")
def arrival(request: Request, lgcode: str, move_id: str, read: ArrivalRead) -> dict[str, Any]:
    found = life_events(request).arrival(read.session.staff, lgcode, move_id)
    ids = [p["resident_id"] for p in found["people"] if p["resident_id"]]
    read.record(ids or ["*"], detail={"arrivals": [move_id]})
    return found


@router.post(f"{BASE}/arrivals/{{move_id}}/special-move-in", status_code=201)
def special_move_in(request: Request, lgcode: str, move_id: str, body: SpecialMoveInBody,
                    session: StaffAuth) -> Response:
    """特例転入 at the counter from the data received (accepts an Idempotency-Key)."""
    data = body.model_dump(exclude_none=True)
    service = life_events(request)
    response = idempotent(request, lgcode, {"move_id": move_id, **data}, lambda: (
        201, service.special_move_in(session.staff, lgcode, move_id, data, tasks=False)))
    # After the COMMIT: the move-in's tasks, from the registry's change feed (their evidence is
    # fetched through the hub, outside the request's transaction).
    service.process_changes(lgcode)
    return response


@router.post(f"{BASE}/arrivals/{{move_id}}/booking", status_code=201)
def staff_booking(request: Request, lgcode: str, move_id: str, body: BookingBody,
                  session: StaffAuth) -> dict[str, Any]:
    """A clerk books the visit on the resident's behalf (by telephone, say)."""
    return life_events(request).staff_book(session.staff, lgcode, move_id, body.slot_id)


@router.get(f"{BASE}/slots")
def slots(request: Request, lgcode: str) -> dict[str, Any]:
    """Future counter slots and their free seats (public: no personal data)."""
    return {"items": life_events(request).slots(lgcode)}


@router.post(f"{BASE}/slots", status_code=201)
def create_slots(request: Request, lgcode: str, body: SlotsBody, session: StaffAuth) -> dict[str, Any]:
    return {"items": life_events(request).create_slots(session.staff, lgcode,
                                                       [s.model_dump() for s in body.slots])}


@router.post("/api/v1/life-events/bookings", status_code=201)
def book_by_reference(request: Request, body: ReferenceBookingBody) -> dict[str, Any]:
    """The resident books a visit with the reference the destination gave and a mover's birth
    date (the way in when the destination is another deployment)."""
    return life_events(request).book_by_reference(body.lgcode, body.reference, body.birth_date, body.slot_id)


# --- tasks --------------------------------------------------------------------------------

@router.get(f"{BASE}/households/{{household_id}}/checklist")
def checklist(request: Request, lgcode: str, household_id: str, read: TaskRead) -> dict[str, Any]:
    found = life_events(request).household_checklist(read.session.staff, lgcode, household_id)
    read.record(found["member_ids"] or ["*"])
    return found


@router.post(f"{BASE}/tasks/{{task_id}}/state")
def task_state(request: Request, lgcode: str, task_id: str, body: TaskStateBody,
               session: StaffAuth) -> dict[str, Any]:
    return life_events(request).set_task_state(session.staff, lgcode, task_id, body.state)


@router.post(f"{BASE}/feed/process")
def process_feed(request: Request, lgcode: str, session: StaffAuth) -> dict[str, Any]:
    """Reads the registry's change feed now (births and move-ins create tasks); also done
    whenever a checklist is read."""
    session.staff.require(Permission.REGISTRY_NOTIFY, lgcode)
    return life_events(request).process_changes(lgcode)


# --- another deployment's hub -------------------------------------------------------------

@router.post("/api/v1/life-events/exchange", include_in_schema=True)
async def peer_exchange(request: Request) -> Response:
    """kiban-linkage/1 forwarded exchange for `tennyu/moveout-certificate`: signed by the
    pinned hub, answered signed by this deployment's registry member."""
    body = await request.body()
    status, reply, signature = await run_in_threadpool(
        life_events(request).peer_exchange, body, request.headers.get("x-kiban-client"),
        request.headers.get("x-kiban-signature"))
    return Response(reply, status_code=status, media_type="application/json",
                    headers={"X-Kiban-Signature": signature})
