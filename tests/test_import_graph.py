"""No import circles: the modules of ``sedic_kit`` and ``sedic_plugins`` import in one direction.

Every import counts, at module level or inside a function (a lazy import is still an edge);
only ``if TYPE_CHECKING:`` blocks are left out, since they never run. Importing ``a.b`` is an
edge to ``a.b`` alone, not to the package ``a`` that Python also initialises.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"sedic_kit": ROOT / "sedic_kit", "sedic_plugins": ROOT / "plugins"}


def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for both packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    out.add(sub)
                elif target in known:
                    out.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    out.discard(name)
    return out


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_circle() -> None:
    found = cycle(graph())
    assert found is None, "import circle: " + " -> ".join(found or [])


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    g = graph()
    assert "sedic_kit.plugins" in g["sedic_kit.model_files"]  # a function-level import
    assert "sedic_plugins.reference_codecs.compressai.codecs" in g["sedic_plugins.reference_codecs.compressai.training"]
    assert "sedic_plugins.shared.hf" in g["sedic_plugins.restorers.orag.components"]  # ``from ...shared.hf import``
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_every_plugin_of_a_role_lives_in_its_role_folder() -> None:
    from sedic_kit.plugins import get_registry

    registry = get_registry()
    folders = {
        "describer": "describers", "grounder": "grounders", "segmenter": "segmenters", "reference_codec": "reference_codecs",
        "text_coder": "text_coders", "mask_coder": "mask_coders", "restorer": "restorers",
    }
    for role, classes in registry.classes.items():
        for name, cls in classes.items():
            if registry.sources[registry.owner[(role, name)]].origin != "built-in":
                continue
            assert cls.__module__.split(".")[:2] == ["sedic_plugins", folders[role.value]], (role.value, name, cls.__module__)


def test_every_package_folder_is_shipped() -> None:
    """A wheel holds only the packages pyproject.toml lists: a new role folder must be listed."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    for package, folder in PACKAGES.items():
        for init in folder.rglob("__init__.py"):
            name = ".".join([package, *init.parent.relative_to(folder).parts])
            assert name in listed, f"{name} is missing from [tool.setuptools] packages"
    data = {k: v for k, v in setup["package-data"].items()}
    for npz in (ROOT / "plugins").rglob("*.npz"):
        package = ".".join(["sedic_plugins", *npz.parent.relative_to(ROOT / "plugins").parts])
        assert npz.name in data.get(package, []), f"{npz} is not in [tool.setuptools.package-data] {package}"
