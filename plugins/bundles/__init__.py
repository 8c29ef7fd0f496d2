"""Entry points that register backends of several roles at once.

Each backend lives in the folder of its role; these modules only gather the hooks of related
backends under the entry-point names sedic-kit has always shipped (``passthrough``,
``baseline_coders``, ``classic_coders``), so profiles, plugin versions and ``sedic-kit plugins``
stay as they were.
"""
