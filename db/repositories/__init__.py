"""Repositories: every SQL query of the application lives in this package."""
