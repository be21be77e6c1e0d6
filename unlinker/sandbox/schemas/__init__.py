"""JSON schemas of Xero's answers, written from its OpenAPI description (a package, so that they
ship with the project)."""
