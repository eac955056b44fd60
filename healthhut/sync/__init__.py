"""Outbox -> FHIR transaction Bundles -> the district server: auth, retry, dead letters."""
