"""Evaluation of profiles: metrics, dataset protocols, resumable batch runs, reports.

Only :mod:`sedic_kit.eval.results` is imported by the core CLI; everything else loads
``torch``/``torchmetrics``/``matplotlib`` lazily and needs ``pip install torch==2.13.0 'sedic-kit[eval]'``.
"""
