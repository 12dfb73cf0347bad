"""Pydantic contracts shared by the API, workflows and activities."""
