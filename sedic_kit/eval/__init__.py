"""Evaluation of profiles: metrics, dataset protocols, resumable batch runs, reports.

Only :mod:`sedic_kit.eval.results` is imported by the core CLI; everything else loads
``torch``/``torchmetrics``/``matplotlib`` lazily and needs ``pip install torch==2.13.0 -e '.[eval]'`` run in the
sedic-kit checkout (:func:`sedic_kit.install.install_hint` gives the form for any installation).
"""
