"""Helpers shared by plugins of more than one role."""
