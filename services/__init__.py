"""Use cases, one module per domain: keyword-only functions that take the caller (principal) and a unit of work.

Services never import FastAPI and never commit (the request or the activity boundary does); they scope every read and
write by the caller (services/scope.py) and raise services.errors.DomainError subclasses that carry their HTTP status.
"""
