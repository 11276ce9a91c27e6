"""Scenarios: the schema (`schema`) and loading with validation (`loading`)."""
