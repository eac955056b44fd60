"""Stored Observation JSON + its Patient/Device -> a transaction or batch Bundle, assembled as text.

Nothing here re-validates: the store validated each resource once when it was written. Stored texts are
spliced into the Bundle verbatim; the small dicts parsed here only find identifiers and references.

Transaction mode (default): one Bundle holds the Observations plus each distinct Patient/Device they
reference, every entry a conditional create (`ifNoneExist` on its identifier). Patient/Device entries carry
as `fullUrl` the `urn:uuid:` the stored Observations already reference, so the server resolves them. Once a
transaction has told the worker the server id of a Patient/Device (its response `location`), later bundles
reference that id directly (the urn in the Observation text is replaced) and leave the entry out: servers
that cap entries per transaction (Medplum: 8 conditional entries) then carry Observations, not repeats. If
such a bundle is refused, the worker forgets every resolved id and resends with the entries before bisecting.

Batch mode: a batch cannot resolve `urn:uuid` references between its entries, so the Patient/Device entries go
first in a batch of their own (`prerequisite_bundle`); the server's `location` for each gives a real
`Type/id`, and the Observation texts are then rewritten (plain string replacement of the urn) before their
batch is built. Resolved references are cached by the worker for the life of the process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

BundleType = Literal["transaction", "batch"]


class OutboxRecord(Protocol):
    """What a bundle needs from an outbox item (the store's `OutboxItem` satisfies it)."""

    @property
    def outbox_id(self) -> int: ...
    @property
    def identifier(self) -> str: ...
    @property
    def observation_json(self) -> str: ...
    @property
    def patient_json(self) -> str: ...
    @property
    def device_json(self) -> str: ...
    @property
    def gateway_json(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SupportingResource:
    """A Patient or Device entry: the stored text, its urn fullUrl, and its conditional-create query."""

    full_url: str
    resource_type: str
    text: str
    if_none_exist: str | None


@dataclass(frozen=True, slots=True)
class PreparedRecord:
    """One outbox item with its references worked out (done once per item, reused across retries)."""

    outbox_id: int
    observation_text: str
    if_none_exist: str
    supporting: tuple[SupportingResource, ...]
    resource_type: str = "Observation"  # the record's type (a night's DiagnosticReport is one too): request.url


@dataclass(frozen=True, slots=True)
class AssembledBundle:
    """Bundle bytes plus where each record's Observation sits among the entries."""

    body: bytes
    outbox_ids: tuple[int, ...]
    observation_entry_index: tuple[int, ...]  # entry position of each outbox id's Observation
    supporting: tuple[SupportingResource, ...]  # in entry order, before the Observations
    entry_count: int


def identifier_query(system: str | None, value: str) -> str:
    """`identifier=system|value`, URL-encoded the way a search parameter must be."""
    token = f"{system}|{value}" if system else value
    return "identifier=" + quote(token, safe=":/|")


def _first_identifier(resource: Mapping[str, Any], preferred_value: str | None = None) -> str | None:
    identifiers = [i for i in resource.get("identifier", []) or [] if isinstance(i, dict) and i.get("value")]
    if preferred_value is not None:
        for ident in identifiers:
            if ident.get("value") == preferred_value:
                return identifier_query(ident.get("system"), str(ident["value"]))
    if not identifiers:
        return None
    return identifier_query(identifiers[0].get("system"), str(identifiers[0]["value"]))


def _reference(resource: Mapping[str, Any], field: str) -> str | None:
    value = resource.get(field)
    if isinstance(value, dict):
        ref = value.get("reference")
        return ref if isinstance(ref, str) else None
    return None


def _urns(node: Any, found: list[str]) -> list[str]:
    """Every `urn:uuid:` reference string in a parsed resource, in document order."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:") and ref not in found:
            found.append(ref)
        for child in node.values():
            _urns(child, found)
    elif isinstance(node, list):
        for child in node:
            _urns(child, found)
    return found


def _supporting(full_url: str, text: str) -> SupportingResource:
    resource = json.loads(text)
    return SupportingResource(full_url=full_url, resource_type=str(resource.get("resourceType", "")),
                              text=text, if_none_exist=_first_identifier(resource))


def prepare_record(item: OutboxRecord) -> PreparedRecord:
    """Match the record's urn references to the item's Patient, Device and gateway texts.

    The record is an Observation or another resource the store keeps the same way (a DiagnosticReport): its
    own `resourceType` names the request url, its identifier the conditional create.
    """
    observation = json.loads(item.observation_json)
    query = _first_identifier(observation, preferred_value=item.identifier)
    if query is None:
        query = identifier_query(None, item.identifier)
    urns = _urns(observation, [])
    subject = _reference(observation, "subject")
    device = _reference(observation, "device")
    supporting: list[SupportingResource] = []
    if subject and subject.startswith("urn:uuid:"):
        supporting.append(_supporting(subject, item.patient_json))
    if device and device.startswith("urn:uuid:"):
        supporting.append(_supporting(device, item.device_json))
    others = [u for u in urns if u not in (subject, device)]
    if item.gateway_json is not None and others:
        supporting.append(_supporting(others[0], item.gateway_json))
    return PreparedRecord(outbox_id=item.outbox_id, observation_text=item.observation_json,
                          if_none_exist=query, supporting=tuple(supporting),
                          resource_type=str(observation.get("resourceType") or "Observation"))


def _entry(text: str, resource_type: str, if_none_exist: str | None, full_url: str | None) -> str:
    request: dict[str, str] = {"method": "POST", "url": resource_type}
    if if_none_exist is not None:
        request["ifNoneExist"] = if_none_exist
    head = f'{{"fullUrl":{json.dumps(full_url)},' if full_url else "{"
    return f'{head}"resource":{text},"request":{json.dumps(request, separators=(",", ":"))}}}'


def _bundle(bundle_type: BundleType, entries: Sequence[str]) -> bytes:
    return (f'{{"resourceType":"Bundle","type":"{bundle_type}","entry":[' + ",".join(entries) + "]}").encode()


def transaction_bundle(records: Sequence[PreparedRecord], *, bundle_type: BundleType = "transaction",
                       resolved: Mapping[str, str] | None = None) -> AssembledBundle:
    """Supporting entries (deduplicated by fullUrl) first, then one Observation entry per record.

    With `resolved` (batch mode: urn -> "Type/id" already on the server) those urns are replaced in the
    Observation text and their Patient/Device entries are left out.
    """
    resolved = resolved or {}
    seen: dict[str, SupportingResource] = {}
    for record in records:
        for support in record.supporting:
            if support.full_url not in resolved:
                seen.setdefault(support.full_url, support)
    entries = [_entry(s.text, s.resource_type, s.if_none_exist, s.full_url) for s in seen.values()]
    positions: list[int] = []
    for record in records:
        text = record.observation_text
        for support in record.supporting:
            target = resolved.get(support.full_url)
            if target is not None:
                text = text.replace(f'"{support.full_url}"', json.dumps(target))
        positions.append(len(entries))
        entries.append(_entry(text, record.resource_type, record.if_none_exist, None))
    return AssembledBundle(body=_bundle(bundle_type, entries), outbox_ids=tuple(r.outbox_id for r in records),
                           observation_entry_index=tuple(positions), supporting=tuple(seen.values()),
                           entry_count=len(entries))


def prerequisite_bundle(records: Sequence[PreparedRecord], resolved: Mapping[str, str]) -> AssembledBundle | None:
    """Batch mode: a batch of the Patient/Device conditional creates not yet resolved, or None."""
    pending: dict[str, SupportingResource] = {}
    for record in records:
        for support in record.supporting:
            if support.full_url not in resolved:
                pending.setdefault(support.full_url, support)
    if not pending:
        return None
    entries = [_entry(s.text, s.resource_type, s.if_none_exist, s.full_url) for s in pending.values()]
    return AssembledBundle(body=_bundle("batch", entries), outbox_ids=(), observation_entry_index=(),
                           supporting=tuple(pending.values()), entry_count=len(entries))


def location_reference(location: str | None) -> str | None:
    """'Patient/abc/_history/1' or an absolute URL -> 'Patient/abc'."""
    if not location:
        return None
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def response_entries(bundle: Mapping[str, Any]) -> list[tuple[int, str | None, dict[str, Any] | None]]:
    """(status, location, outcome) per entry of a transaction-/batch-response Bundle, in entry order."""
    rows: list[tuple[int, str | None, dict[str, Any] | None]] = []
    for entry in bundle.get("entry", []) or []:
        response = entry.get("response") or {}
        status_text = str(response.get("status", "0")).strip().split(" ", 1)[0]
        status = int(status_text) if status_text.isdigit() else 0
        rows.append((status, response.get("location"), response.get("outcome")))
    return rows
