"""Restorers: reference image + semantics -> reconstruction."""
