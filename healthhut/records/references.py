"""Deterministic `urn:uuid:` references for the resources an Observation points at.

Every reference is a UUIDv5 over one fixed project namespace, so the same patient, device or gateway gets the
same urn on every run and every hut. In a transaction Bundle the sync side gives the referenced Patient/Device
entry exactly this `fullUrl` (with a conditional create on its identifier); the server then rewrites the urn to
the resource's real id.

Privacy note: a UUIDv5 is a hash, not a secret. A patient urn hides the identifier from casual readers, but
anyone who can guess identifiers (national id numbers have little entropy) can recompute it; treat it as
pseudonymous, not anonymous.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from healthhut.records.drafts import PatientRef

# uuid5(NAMESPACE_URL, "https://healthhut.example/fhir/references"), written out so it can never drift.
PROJECT_NAMESPACE = uuid.UUID("11b2964d-679a-56e1-aba3-e43b61f93a94")


# Every Observation of every reading asks for the same few urns (one gateway, a handful of devices and
# residents), and a UUIDv5 costs a SHA-1 and a UUID object: remembered, bounded, and immutable (str -> str), so
# the cache can hand the same answer to everyone. 4096 covers a hut's residents many times over.
@lru_cache(maxsize=4096)
def _urn(kind: str, *parts: str) -> str:
    # "\x1f" (unit separator) cannot occur in identifiers, so ("a|b", "c") and ("a", "b|c") never collide.
    name = "\x1f".join((kind, *parts))
    return f"urn:uuid:{uuid.uuid5(PROJECT_NAMESPACE, name)}"


def patient_reference(patient: PatientRef) -> str:
    """The urn of the Patient with this identifier (system + value)."""
    return _urn("patient", patient.system, patient.value)


def device_reference(device_key: str) -> str:
    """The urn of the PhdDevice whose `DeviceIdentity.key` is `device_key`."""
    return _urn("device", device_key)


def gateway_reference(site_id: str) -> str:
    """The urn of the PhgDevice (this hut's gateway) for `site_id`."""
    return _urn("gateway", site_id)


def observation_reference(local_key: str) -> str:
    """A stable urn for one Observation (by its local key), for a Bundle entry's fullUrl if sync wants one."""
    return _urn("observation", local_key)
