"""Segmenters: object boxes -> full-size object masks."""
