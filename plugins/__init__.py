"""sedic-kit's shipped plugins, one module per backend.

Each module is an entry point of group ``sedic_kit`` in sedic-kit's own ``pyproject.toml``,
registered exactly as a third-party plugin package would be.
"""
