"""Reading -> FHIR R4 resources, the SQLite record store with its outbox, review queries, sleep analysis."""
