"""Infrastructure with no domain knowledge: settings-bound database engine and unit of work,
the error hierarchy, pagination, time helpers, and the FHIR helpers shared by domains."""
