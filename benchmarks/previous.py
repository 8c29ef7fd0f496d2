"""Run a script against another checkout of sedic-kit (e.g. the previous version) in this environment.

``sedic_kit``, ``sedic_plugins`` and ``sedic_profiles`` are imported from ``CHECKOUT`` instead of the installed
(editable) copy, so two versions can be timed side by side on the same machine:

    git worktree add ../sedic-base main       # or: mkdir ../sedic-base && git archive main | tar -x -C ../sedic-base
    python benchmarks/previous.py ../sedic-base ../sedic-base/benchmarks/side_info.py --scale 8

Entry points still come from the installed distribution; a plugin module missing from the
checkout is reported as broken, like any plugin that fails to import.
"""

from __future__ import annotations

import runpy
import sys
import tempfile
from pathlib import Path


def use_checkout(checkout: Path) -> None:
    """Make ``import sedic_kit`` / ``sedic_plugins`` / ``sedic_profiles`` load from ``checkout`` in this process."""
    if not (checkout / "sedic_kit" / "__init__.py").is_file() or not (checkout / "plugins").is_dir():
        raise SystemExit(f"previous: {checkout} is not a sedic-kit checkout (no sedic_kit/ and plugins/)")
    root = Path(tempfile.mkdtemp(prefix="sedic-previous-"))
    (root / "sedic_kit").symlink_to(checkout.resolve() / "sedic_kit")
    (root / "sedic_plugins").symlink_to(checkout.resolve() / "plugins")
    (root / "sedic_profiles").symlink_to(checkout.resolve() / "profiles")
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "") + repr(f)]
    sys.path.insert(0, str(root))
    for name in [m for m in sys.modules if m.split(".")[0] in ("sedic_kit", "sedic_plugins", "sedic_profiles")]:
        del sys.modules[name]


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python benchmarks/previous.py CHECKOUT SCRIPT [ARGS...]")
    use_checkout(Path(sys.argv[1]))
    script = sys.argv[2]
    sys.argv = [script, *sys.argv[3:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
