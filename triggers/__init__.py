"""Blueprints: thin adapters between the Functions bindings and ``core``."""
