"""Profiles: TOML files choosing one plugin per role, with its options.

Lookup order for a name: a path to a ``.toml`` file, then each directory in
``SEDIC_PROFILE_PATH`` (``os.pathsep``-separated), then ``~/.config/sedic-kit/profiles``, then
the shipped ``profiles/``. ``extends = "other"`` inherits another profile; a role table that
names a different ``plugin`` replaces the inherited table instead of merging with it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ProfileError, SedicError
from .plugins import Registry, get_registry
from .rate import RatePolicy
from .plugin_options import instantiate, option_messages
from .roles import Plugin, Role

PROFILE_ENV = "SEDIC_PROFILE_PATH"
TOP_LEVEL_KEYS = ("description", "extends")
RATE_KEY = "rate"
"""The ``[rate]`` table: the policy ``--target-bpp`` sets J, l_d and l_all by (:class:`RatePolicy`)."""


class Problems:
    """Where loading a profile reports what is wrong: raised at once as a :class:`ProfileError`
    (``collect=False``, what every command but ``profiles check`` wants), or collected in
    ``found`` while the rest is still read."""

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.found: list[str] = []

    def add(self, message: str) -> None:
        if not self.collect:
            raise ProfileError(message)
        self.found.append(message)


@dataclass
class RoleChoice:
    """The plugin chosen for one role, its raw options and where each key was set."""

    plugin: str
    options: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)


@dataclass
class Profile:
    name: str
    path: Path | None
    description: str
    roles: dict[Role, RoleChoice]
    rate: dict[str, Any] = field(default_factory=dict)
    """Raw ``[rate]`` options (validated by :meth:`rate_policy`)."""
    rate_origin: dict[str, str] = field(default_factory=dict)

    def rate_policy(self) -> RatePolicy:
        """The validated ``[rate]`` policy; a bad key is one line naming where it was set."""
        try:
            return RatePolicy(**self.rate)
        except ValidationError as exc:
            raise ProfileError(self.rate_messages(exc)[0]) from None

    def rate_messages(self, exc: ValidationError) -> list[str]:
        """One line per bad ``[rate]`` key, naming where it was set."""
        messages = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            where = self.rate_origin.get(key, str(self.path or self.name))
            if err["type"] == "extra_forbidden":
                msg = f"unknown key (valid: {', '.join(RatePolicy.model_fields)})"
            else:
                msg = f"{err['msg']} (got {err.get('input')!r})"
            messages.append(f"{where}: rate.{key}: {msg}")
        return messages

    def build(self, registry: Registry | None = None) -> dict[Role, Plugin]:
        """Instantiate every role's plugin; one-line errors name file, key and valid choices."""
        registry = registry or get_registry()
        return {role: self.build_role(role, registry) for role in Role}

    def build_role(self, role: Role, registry: Registry | None = None, extra: dict[str, Any] | None = None) -> Plugin:
        cls = self.plugin_class(role, registry)
        self.check_available(role, cls)
        choice = self.roles[role]
        return instantiate(cls, {**choice.options, **(extra or {})}, choice.origin, self.chosen_in(role))

    def chosen_in(self, role: Role) -> str:
        """The file (or ``--set``) that chose the role's plugin."""
        return self.roles[role].origin.get("plugin", str(self.path or self.name))

    def plugin_class(self, role: Role, registry: Registry | None = None) -> type[Plugin]:
        try:
            return (registry or get_registry()).get(role, self.roles[role].plugin)
        except ProfileError as exc:
            raise ProfileError(f"{self.chosen_in(role)}: {role.value}.plugin: {exc}") from None

    def check_available(self, role: Role, cls: type[Plugin]) -> None:
        """One line naming what to install when the plugin's libraries do not import here."""
        try:
            cls.check_available()
        except SedicError as exc:
            raise ProfileError(f"{self.chosen_in(role)}: {role.value}.plugin: {exc}") from None

    def problems(self, registry: Registry | None = None) -> list[str]:
        """Every problem of the ``[rate]`` table and of every role's plugin and options, not only
        the first (``profiles check``)."""
        found = []
        try:
            RatePolicy(**self.rate)
        except ValidationError as exc:
            found += self.rate_messages(exc)
        for role, choice in self.roles.items():
            try:
                cls = self.plugin_class(role, registry)
            except ProfileError as exc:
                found.append(str(exc))
                continue
            try:
                self.check_available(role, cls)
            except ProfileError as exc:
                found.append(str(exc))
            try:
                cls(cls.Options(**choice.options))
            except ValidationError as exc:
                found += option_messages(cls, exc, choice.origin, self.chosen_in(role))
            except SedicError as exc:
                found.append(f"{self.chosen_in(role)}: {role.value}: {exc}")
        return found

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        for role, choice in self.roles.items():
            out[role.value] = {"plugin": choice.plugin, **choice.options}
        if self.rate:
            out[RATE_KEY] = dict(self.rate)
        return out


def search_path() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(PROFILE_ENV, "").split(os.pathsep) if p]
    dirs.append(Path.home() / ".config" / "sedic-kit" / "profiles")
    return dirs


def builtin_dir() -> Path:
    return Path(str(resources.files("sedic_profiles")))


def find_profile(name: str | os.PathLike[str]) -> Path:
    """Resolve a profile name or path to a TOML file."""
    text = str(name)
    candidate = Path(text).expanduser()
    if text.endswith(".toml") or os.sep in text:
        if candidate.is_file():
            return candidate
        raise ProfileError(f"profile file not found: {text}")
    for directory in [*search_path(), builtin_dir()]:
        path = directory / f"{text}.toml"
        if path.is_file():
            return path
    names = ", ".join(sorted(p for p, _ in available_profiles().items())) or "none"
    raise ProfileError(f"unknown profile '{text}' (available: {names})")


def available_profiles() -> dict[str, Path]:
    """Profile names visible on the search path (user profiles shadow shipped ones)."""
    found: dict[str, Path] = {}
    for directory in [builtin_dir(), *reversed(search_path())]:
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                found[path.stem] = path
    return dict(sorted(found.items()))


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None


def _merge(path: Path, data: dict[str, Any], base: dict[Role, RoleChoice], problems: Problems) -> dict[Role, RoleChoice]:
    roles = {role: RoleChoice(c.plugin, dict(c.options), dict(c.origin)) for role, c in base.items()}
    valid = ", ".join([*TOP_LEVEL_KEYS, *(r.value for r in Role), RATE_KEY])
    for key, value in data.items():
        if key in (*TOP_LEVEL_KEYS, RATE_KEY):
            continue
        try:
            role = Role(key)
        except ValueError:
            problems.add(f"{path}: {key}: unknown key (valid: {valid})")
            continue
        if not isinstance(value, dict):
            problems.add(f"{path}: {key}: expected a table like [{key}] with plugin = \"...\"")
            continue
        table = dict(value)
        plugin = table.pop("plugin", None)
        previous = roles.get(role)
        if plugin is None and previous is None:
            problems.add(f"{path}: {key}.plugin: missing (every role needs a plugin)")
            continue
        if plugin is not None and not isinstance(plugin, str):
            problems.add(f"{path}: {key}.plugin: expected a string, got {plugin!r}")
            continue
        if previous is None or (plugin is not None and plugin != previous.plugin):
            choice = RoleChoice(plugin, {}, {"plugin": str(path)})  # type: ignore[arg-type]
        else:
            choice = previous
        for k, v in table.items():
            choice.options[k] = v
            choice.origin[k] = str(path)
        roles[role] = choice
    return roles


def load_profile(name: str | os.PathLike[str] = "lite", overrides: list[str] | None = None, problems: Problems | None = None) -> Profile:
    """Load a profile by name or path, following ``extends`` and applying ``--set`` overrides.

    A file that cannot be read or followed raises; what is wrong inside one (a bad key or table,
    a bad ``--set``, a missing role, the ``[rate]`` table) is raised too, or, with collecting
    ``problems``, added there and skipped: the profile returned then lacks what was wrong.
    """
    problems = problems or Problems()
    chain: list[Path] = []
    path = find_profile(name)
    while True:
        if path.resolve() in [p.resolve() for p in chain]:
            raise ProfileError(f"{path}: extends: cycle ({' -> '.join(p.stem for p in [*chain, path])})")
        chain.append(path)
        data = _read(path)
        parent = data.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str):
            raise ProfileError(f"{path}: extends: expected a profile name, got {parent!r}")
        try:
            path = find_profile(parent)
        except ProfileError as exc:
            raise ProfileError(f"{chain[-1]}: extends: {exc}") from None
    roles: dict[Role, RoleChoice] = {}
    description = ""
    rate: dict[str, Any] = {}
    rate_origin: dict[str, str] = {}
    declared: set[str] = set()
    for p in reversed(chain):
        data = _read(p)
        roles = _merge(p, data, roles, problems)
        declared.update(data)
        description = data.get("description", description)
        table = data.get(RATE_KEY, {})
        if not isinstance(table, dict):
            problems.add(f"{p}: {RATE_KEY}: expected a table like [{RATE_KEY}] with points = [...]")
            continue
        rate.update(table)
        rate_origin.update({k: str(p) for k in table})
    missing = [r.value for r in Role if r not in roles and r.value not in declared]  # a bad table is reported already
    if missing:
        problems.add(f"{chain[0]}: missing role tables: {', '.join(missing)}")
    profile = Profile(chain[0].stem, chain[0], str(description), roles, rate, rate_origin)
    for item in overrides or []:
        try:
            apply_override(profile, item)
        except ProfileError as exc:
            problems.add(str(exc))
    if not problems.collect:
        profile.rate_policy()
    return profile


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax when it parses (numbers, booleans, arrays), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(profile: Profile, item: str, value: Any = None) -> None:
    """Apply ``role.key=value`` (or ``role.key`` with ``value``) to a loaded profile."""
    if value is None:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ProfileError(f"--set {item}: expected ROLE.KEY=VALUE")
        value = parse_value(raw.strip())
    else:
        key = item
    role_name, dot, option = key.strip().partition(".")
    if role_name == RATE_KEY and dot and option:
        profile.rate[option] = value
        profile.rate_origin[option] = "--set"
        profile.rate_policy()
        return
    try:
        role = Role(role_name)
    except ValueError:
        valid = ", ".join([*(r.value for r in Role), RATE_KEY])
        raise ProfileError(f"--set {item}: unknown role '{role_name}' (valid: {valid})") from None
    if not dot or not option:
        raise ProfileError(f"--set {item}: expected ROLE.KEY=VALUE")
    choice = profile.roles[role]
    if option == "plugin":
        if value != choice.plugin:
            profile.roles[role] = RoleChoice(str(value), {}, {"plugin": "--set"})
        return
    choice.options[option] = value
    choice.origin[option] = "--set"
