"""Plugin discovery: entry points of group ``sedic_kit``, built-ins included.

``SEDIC_LOAD_PLUGINS`` (comma-separated distribution names) limits which third-party
distributions load; sedic-kit's own plugins always load. A plugin that fails to import or to
register is recorded with every error it raised and skipped, never fatal. A hook implementation
whose name is not a hook (``register_describer`` for ``register_describers``) fails its module.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy

from . import hookspecs
from .hookspecs import Register
from .errors import PluginError, ProfileError
from .roles import ROLE_BASES, Plugin, Role, one_line

ENTRY_POINT_GROUP = "sedic_kit"
LOAD_ENV = "SEDIC_LOAD_PLUGINS"
OWN_DISTRIBUTION = "sedic-kit"

ROLE_HOOKS: dict[str, tuple[Role, ...]] = {
    "register_describers": (Role.describer,),
    "register_grounders": (Role.grounder,),
    "register_segmenters": (Role.segmenter,),
    "register_reference_codecs": (Role.reference_codec,),
    "register_entropy_coders": (Role.text_coder, Role.mask_coder),
    "register_restorers": (Role.restorer,),
}


@dataclass
class PluginSource:
    """One loaded (or failed) plugin module and what it registered."""

    name: str
    distribution: str | None
    version: str | None
    origin: str  # "built-in", "third-party" or "manual"
    errors: list[str] = field(default_factory=list)
    registered: list[tuple[Role, str]] = field(default_factory=list)


class Registry:
    """Plugin classes by role and name, with where each came from."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("sedic_kit")
        self.pm.add_hookspecs(hookspecs)
        self.classes: dict[Role, dict[str, type[Plugin]]] = {role: {} for role in Role}
        self.owner: dict[tuple[Role, str], str] = {}
        self.sources: dict[str, PluginSource] = {}

    # -- loading ---------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        allowed = os.environ.get(LOAD_ENV)
        allow = {n.strip().lower() for n in allowed.split(",") if n.strip()} if allowed is not None else None
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else None
            own = (dist or "").lower() == OWN_DISTRIBUTION
            if allow is not None and not own and (dist or "").lower() not in allow:
                continue
            version = ep.dist.version if ep.dist else None
            origin = "built-in" if own else "third-party"
            if ep.name in self.sources:
                continue  # the same distribution seen twice on sys.path
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must not stop the CLI
                self.sources[ep.name] = PluginSource(ep.name, dist, version, origin, [one_line(exc)])
                continue
            self.add_module(module, ep.name, dist, version, origin)

    def add_module(
        self,
        module: ModuleType | object,
        name: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
        origin: str = "manual",
    ) -> PluginSource:
        """Register a plugin module (as an entry point would) and collect its classes."""
        name = name or str(getattr(module, "__name__", repr(module)))
        source = PluginSource(name, distribution, version, origin)
        self.sources[name] = source
        try:
            self.pm.register(module, name=name)
            self._check_hooks()
        except Exception as exc:
            source.errors.append(one_line(exc))
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            return source

        def register_into(roles: tuple[Role, ...]) -> Register:
            def register(cls: type) -> None:
                try:
                    self._register(cls, roles, source)
                except PluginError as exc:
                    source.errors.append(str(exc))

            return register

        for hook_name, roles in ROLE_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != name:
                    continue
                try:
                    impl.function(register=register_into(roles))
                except Exception as exc:
                    source.errors.append(one_line(exc))
        return source

    def _check_hooks(self) -> None:
        """pluggy's ``check_pending``, with a one-line error suggesting the hook meant."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            unknown = sorted(
                n for n, caller in vars(self.pm.hook).items() if not n.startswith("_") and not caller.has_spec() and caller.get_hookimpls()
            )
            hooks = [n for n in vars(hookspecs) if n.startswith("register_")]
            hints = [f"{n} (did you mean {', '.join(difflib.get_close_matches(n, hooks, 1)) or 'a register_* hook'}?)" for n in unknown]
            raise PluginError(f"unknown hook {'; '.join(hints)}") from None

    def _register(self, cls: type, roles: tuple[Role, ...], source: PluginSource) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Plugin)) or getattr(cls, "role", None) not in roles:
            expected = " or ".join(ROLE_BASES[r].__name__ for r in roles)
            raise PluginError(f"{cls!r} is not a {expected} subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{cls.__name__} has no name")
        key = (cls.role, name)
        if key in self.owner and self.owner[key] != source.name:
            raise PluginError(f"{cls.role.value} '{name}' is already registered by {self.owner[key]}")
        self.classes[cls.role][name] = cls
        self.owner[key] = source.name
        source.registered.append(key)

    # -- queries ---------------------------------------------------------------------------
    def names(self, role: Role) -> list[str]:
        return sorted(self.classes[role])

    def get(self, role: Role, name: str) -> type[Plugin]:
        """The class registered as ``name`` for ``role``; a one-line error lists the choices."""
        try:
            return self.classes[role][name]
        except KeyError:
            choices = ", ".join(self.names(role)) or "none"
            raise ProfileError(
                f"unknown {role.value} '{name}' (available: {choices}); "
                "it may come from a plugin package that is not installed"
            ) from None

    def errors(self) -> list[str]:
        """One line per load error of every plugin module."""
        return [
            f"plugin {s.name} ({s.distribution or '?'}) failed to load: {error}"
            for s in self.sources.values()
            for error in s.errors
        ]

    def register_commands(self, cli: object) -> None:
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self.sources[impl.plugin_name].errors.append(one_line(exc))


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
        _registry.load_entry_points()
    return _registry


def reset_registry() -> None:
    """Forget loaded plugins (tests, or after installing a plugin at run time)."""
    global _registry
    _registry = None
