"""Config files: YAML read into a checked object, or a clear error naming file and key.

Every exporter reads its file through :class:`Section`, which knows where it is
(``targets[3].timeout``) so a mistake is reported as ``file: key: what is wrong``,
and which refuses unknown keys, so a typo never silently becomes a default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

_MISSING = object()
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(Exception):
    """A config file that cannot be used. ``str()`` is the message for the operator."""

    def __init__(self, file: str | Path, where: str, message: str):
        self.file = str(file)
        self.where = where
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


def parse_duration(text: object) -> float:
    """Prometheus-style durations: ``500ms``, ``15s``, ``1m30s``, ``2h``, ``7d``; a bare number is seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        return float(text)
    if not isinstance(text, str) or not _DURATION.match(text.strip()):
        raise ValueError(f"not a duration (like 500ms, 15s, 1m, 2h): {text!r}")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text.strip()))


class Section:
    """One mapping of a config file, read key by key with its location kept for errors."""

    def __init__(self, data: object, file: str | Path, where: str = ""):
        if not isinstance(data, dict):
            raise ConfigError(file, where, f"must be a mapping, not {type(data).__name__}")
        self.data = data
        self.file = str(file)
        self.where = where
        self._read: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.file, self._key(key) if key else self.where, message)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: object) -> object:
        self._read.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default
        return self.data[key]

    def raw(self, key: str, default: object = None) -> Any:
        """A value of any type (the caller checks it)."""
        return self._get(key, default)

    def str(self, key: str, default: object = _MISSING, choices: tuple[str, ...] | None = None) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def int(self, key: str, default: object = _MISSING, minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number, not {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, not {value}")
        return value

    def bool(self, key: str, default: object = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def duration(self, key: str, default: object = _MISSING, minimum: float = 0.0) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if seconds < minimum:
            raise self.error(key, f"must be at least {minimum:g}s, not {value!r}")
        return seconds

    def path(self, key: str, default: object = _MISSING, must_exist: bool = False) -> Any:
        value = self.str(key, default)
        if value is default:
            return value
        path = Path(value)
        if must_exist and not path.exists():
            raise self.error(key, f"no such file: {value}")
        return path

    def list(self, key: str, default: object = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {type(value).__name__}")
        return value

    def section(self, key: str, default: object = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        return Section(value, self.file, self._key(key))

    def sections(self, key: str, default: object = _MISSING) -> list[Section]:
        items = self.list(key, default) or []
        return [Section(item, self.file, f"{self._key(key)}[{i}]") for i, item in enumerate(items)]

    def mapping(self, key: str, default: object = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping, not {type(value).__name__}")
        return value

    def done(self) -> None:
        """Refuse keys nobody read: they are typos or options this version does not have."""
        unknown = sorted(set(map(str, self.data)) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown key" + (f" (also: {', '.join(unknown[1:])})" if unknown[1:] else ""))

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)


def load_yaml(path: str | Path) -> Section:
    """Read a YAML mapping; syntax errors come back as ConfigError with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, where, f"not valid YAML: {problem}") from None
    if data is None:
        data = {}
    return Section(data, path)


def unique(items: list[Any], key: Callable[[Any], str], section: Section, field: str) -> None:
    """Refuse two entries of a list with the same ``key`` (names become label values)."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        name = key(item)
        if name in seen:
            raise ConfigError(
                section.file, f"{section._key(field)}[{index}]", f"duplicate name {name!r} (also at [{seen[name]}])"
            )
        seen[name] = index
