"""Describers: image -> caption and up to three objects (name, details)."""
