"""Grounders: check each described object in the image, give it a box, drop hallucinations."""
