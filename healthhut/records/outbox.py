"""The outbox: one row per stored record, moved held -> pending -> sending -> sent | dead by the sync worker.

A record is an Observation or (`resource_type`) another resource stored the same way, e.g. a night's
DiagnosticReport.

Functions here take a connection already inside the caller's transaction (RecordStore opens it), so a claim
is one BEGIN IMMEDIATE transaction and two workers can never claim the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.orm import aliased

from healthhut.records.tables import DeviceRow, ObservationRow, OutboxRow, PatientRow, StateRow

OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
OBSERVATIONS = ObservationRow.__table__  # type: ignore[attr-defined]
PATIENTS = PatientRow.__table__  # type: ignore[attr-defined]
DEVICES = DeviceRow.__table__  # type: ignore[attr-defined]
STATE = StateRow.__table__  # type: ignore[attr-defined]
GATEWAY_STATE_KEY = "gateway.device_id"  # state row naming the devices row of this hut's gateway (PhgDevice)


class OutboxState(StrEnum):
    HELD = "held"          # no resident yet: waits for assign_patient
    PENDING = "pending"    # deliverable once next_attempt_at has passed
    SENDING = "sending"    # claimed by a worker until lease_until
    SENT = "sent"          # the platform has it
    DEAD = "dead"          # the platform refused it; retried only by hand


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One claimed observation with everything a transaction bundle needs, as stored text."""

    outbox_id: int
    observation_id: int
    identifier: str
    attempts: int
    observation_json: str
    patient_json: str
    device_json: str
    gateway_json: str | None
    resource_type: str = "Observation"  # what `observation_json` holds: an Observation or a DiagnosticReport

    def __repr__(self) -> str:  # the identifier and the JSON bodies are personal data
        return f"OutboxItem(outbox_id={self.outbox_id}, observation_id={self.observation_id})"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    outbox_id: int
    observation_id: int
    code: str
    reason: str | None
    outcome_json: str | None
    dead_at: datetime | None
    attempts: int


_NOT_FINISHED = (OutboxState.PENDING.value, OutboxState.SENDING.value)


def claim_batch(conn: Connection, *, limit: int, now: datetime, lease: timedelta,
                worker: str) -> list[OutboxItem]:
    o = OUTBOX.c
    due = or_(and_(o.state == OutboxState.PENDING.value, o.next_attempt_at <= now),
              and_(o.state == OutboxState.SENDING.value, o.lease_until < now))
    ids = list(conn.execute(select(o.id).where(due).order_by(o.next_attempt_at, o.id).limit(limit)).scalars())
    if not ids:
        return []
    conn.execute(update(OUTBOX).where(o.id.in_(ids)).values(
        state=OutboxState.SENDING.value, lease_until=now + lease, claimed_by=worker, updated_at=now))
    obs, pat, dev = OBSERVATIONS.c, PATIENTS.c, DEVICES.c
    gateway = aliased(DEVICES)
    # observations stored before the gateway was registered still reference it: fall back to the registered one
    registered = conn.execute(select(STATE.c.value).where(STATE.c.key == GATEWAY_STATE_KEY)).scalar()
    gateway_id = obs.gateway_device_id if registered is None else func.coalesce(obs.gateway_device_id,
                                                                                 int(registered))
    query = (
        select(o.id, o.observation_id, obs.identifier, o.attempts, obs.resource_json, pat.resource_json,
               dev.resource_json, gateway.c.resource_json, obs.resource_type)
        .select_from(OUTBOX)
        .join(OBSERVATIONS, obs.id == o.observation_id)
        .join(PATIENTS, pat.id == obs.patient_id)
        .join(DEVICES, dev.key == obs.device_key)
        .outerjoin(gateway, gateway.c.id == gateway_id)
        .where(o.id.in_(ids))
        .order_by(o.next_attempt_at, o.id)
    )
    return [OutboxItem(outbox_id=r[0], observation_id=r[1], identifier=r[2] or "", attempts=r[3],
                       observation_json=r[4], patient_json=r[5] or "", device_json=r[6], gateway_json=r[7],
                       resource_type=r[8])
            for r in conn.execute(query)]


def mark_sent(conn: Connection, outbox_ids: Sequence[int], *, now: datetime) -> int:
    o = OUTBOX.c
    return conn.execute(update(OUTBOX).where(o.id.in_(list(outbox_ids)), o.state.in_(_NOT_FINISHED)).values(
        state=OutboxState.SENT.value, sent_at=now, updated_at=now, lease_until=None, claimed_by=None)).rowcount


def schedule_retry(conn: Connection, outbox_ids: Sequence[int], *, now: datetime, next_attempt_at: datetime,
                   error: str) -> int:
    o = OUTBOX.c
    # only rows still in flight: one another worker already delivered or gave up on stay as they are
    return conn.execute(update(OUTBOX).where(o.id.in_(list(outbox_ids)), o.state.in_(_NOT_FINISHED)).values(
        state=OutboxState.PENDING.value, attempts=o.attempts + 1, next_attempt_at=next_attempt_at,
        last_error=error, lease_until=None, claimed_by=None, updated_at=now)).rowcount


def mark_dead(conn: Connection, outbox_id: int, *, now: datetime, reason: str, outcome_json: str | None) -> int:
    o = OUTBOX.c
    return conn.execute(update(OUTBOX).where(o.id == outbox_id, o.state.in_(_NOT_FINISHED)).values(
        state=OutboxState.DEAD.value, dead_reason=reason, outcome_json=outcome_json, dead_at=now,
        attempts=o.attempts + 1, lease_until=None, claimed_by=None, updated_at=now)).rowcount


def retry_dead(conn: Connection, outbox_ids: Sequence[int] | None, *, now: datetime) -> list[int]:
    o = OUTBOX.c
    where = [o.state == OutboxState.DEAD.value]
    if outbox_ids is not None:
        where.append(o.id.in_(list(outbox_ids)))
    ids = list(conn.execute(select(o.id).where(*where)).scalars())
    if ids:
        # attempts restart so the retry schedule starts from its first, short delay
        conn.execute(update(OUTBOX).where(o.id.in_(ids)).values(
            state=OutboxState.PENDING.value, attempts=0, next_attempt_at=now, dead_reason=None, dead_at=None,
            updated_at=now))
    return ids


def release_expired_leases(conn: Connection, *, now: datetime) -> int:
    o = OUTBOX.c
    return conn.execute(update(OUTBOX).where(o.state == OutboxState.SENDING.value, o.lease_until < now).values(
        state=OutboxState.PENDING.value, lease_until=None, claimed_by=None, updated_at=now)).rowcount


def counts(conn: Connection) -> dict[OutboxState, int]:
    o = OUTBOX.c
    found: dict[str, int] = {state: n for state, n in conn.execute(select(o.state, func.count()).group_by(o.state))}
    return {state: int(found.get(state.value, 0)) for state in OutboxState}


def oldest_pending_at(conn: Connection) -> datetime | None:
    """When the oldest undelivered (pending or sending) row was queued: the age of the backlog."""
    o = OUTBOX.c
    first: datetime | None = conn.execute(select(func.min(o.created_at)).where(o.state.in_(_NOT_FINISHED))).scalar()
    return first  # min() keeps the column's type, so this is already an aware datetime


def next_due_at(conn: Connection) -> datetime | None:
    """When `claim_batch` will next find something: the earliest retry time of a pending row, or the earliest
    lease expiry of a row left in flight (a crashed worker's). None when nothing is undelivered."""
    o = OUTBOX.c
    pending = conn.execute(select(func.min(o.next_attempt_at)).where(o.state == OutboxState.PENDING.value)).scalar()
    leased = conn.execute(select(func.min(o.lease_until)).where(o.state == OutboxState.SENDING.value)).scalar()
    found: list[datetime] = [when for when in (pending, leased) if when is not None]
    return min(found) if found else None


def dead_letters(conn: Connection) -> list[DeadLetter]:
    o, obs = OUTBOX.c, OBSERVATIONS.c
    query = (select(o.id, o.observation_id, obs.code, o.dead_reason, o.outcome_json, o.dead_at, o.attempts)
             .join(OBSERVATIONS, obs.id == o.observation_id)
             .where(o.state == OutboxState.DEAD.value).order_by(o.dead_at, o.id))
    return [DeadLetter(*row) for row in conn.execute(query)]
