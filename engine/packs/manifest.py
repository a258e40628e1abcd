"""``pack.yaml``: what a pack is, who made it, and which Sous and connectors it needs.

::

    name: backorders
    version: 1.2.0              # semantic versioning: MAJOR.MINOR.PATCH[-prerelease]
    description: Sold-out products go on backorder; customers and staff hear of every change
    author: Sous contributors
    license: Apache-2.0
    sous: ">=0.1,<1"            # the Sous versions it works with
    connectors: [bigcommerce, backorder, email]

A range is comma-separated comparisons that must all hold (``>=``, ``>``, ``<=``, ``<``,
``==``, ``!=``); a version in a range may leave out its minor or patch number (``1`` is
``1.0.0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.authoring.loader import parse_yaml
from engine.authoring.validation import format_loc
from engine.errors import ErrorDetail

PACK_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_PARTIAL = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$")
_COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*([0-9][0-9A-Za-z.+-]*)\s*$")


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version, ordered as semver.org says (build metadata is ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0)")
        return cls(int(match[1]), int(match[2]), int(match[3]), _pre(match[4]))

    @classmethod
    def loose(cls, text: str) -> Version:
        """A version that may leave out minor and patch: ``1`` → ``1.0.0``, ``0.1`` → ``0.1.0``."""
        match = _PARTIAL.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a version")
        return cls(int(match[1]), int(match[2] or 0), int(match[3] or 0), _pre(match[4]))

    def _key(self) -> tuple[Any, ...]:
        # a pre-release sorts before its release; numeric identifiers before alphanumeric ones
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        pre = "-" + ".".join(str(p) for p in self.pre) if self.pre else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}"


def _pre(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


@dataclass(frozen=True)
class VersionRange:
    """Comma-separated comparisons, all of which must hold: ``>=0.1,<1``."""

    text: str
    comparisons: tuple[tuple[str, Version], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise ValueError("a version range needs at least one comparison, e.g. '>=0.1,<1'")
        comparisons = []
        for part in parts:
            match = _COMPARISON.match(part)
            if not match:
                raise ValueError(
                    f"{part.strip()!r} is not a comparison (use >=, >, <=, <, == or !=)"
                )
            comparisons.append((match[1] or "==", Version.loose(match[2])))
        return cls(text, tuple(("==" if op == "=" else op, v) for op, v in comparisons))

    def allows(self, version: Version) -> bool:
        checks = {
            ">=": lambda v: version >= v,
            ">": lambda v: version > v,
            "<=": lambda v: version <= v,
            "<": lambda v: version < v,
            "==": lambda v: version == v,
            "!=": lambda v: version != v,
        }
        return all(checks[op](v) for op, v in self.comparisons)

    def __str__(self) -> str:
        return self.text


def sous_version() -> Version:
    """The running Sous's version: the installed distribution's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("sous")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        text = "0.0.0"
    return Version.loose(text)


class PackManifest(BaseModel):
    """The contents of ``pack.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PACK_NAME, description="Lowercase letters, digits, - and _")
    version: str = Field(description="Semantic version, e.g. 1.2.0")
    description: str = Field(default="", max_length=2000)
    author: str = Field(default="", max_length=200)
    license: str = Field(default="", max_length=100)
    homepage: str | None = Field(default=None, pattern=r"^https://", max_length=500)
    sous: str = Field(
        default=">=0", description="The Sous versions this pack works with, e.g. '>=0.1,<1'"
    )
    connectors: list[str] = Field(default_factory=list, description="Connectors its recipes use")

    @field_validator("version", mode="before")
    @classmethod
    def _semver(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # YAML reads `version: 1.0` as a number
        if not isinstance(value, str):
            return value
        Version.parse(value)
        return value

    @field_validator("sous")
    @classmethod
    def _range(cls, value: str) -> str:
        VersionRange.parse(value)
        return value

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def incompatibility(self, running: Version | None = None) -> str | None:
        """Why this Sous cannot use the pack, or ``None`` if it can."""
        running = running or sous_version()
        if not VersionRange.parse(self.sous).allows(running):
            return f"{self.ref} needs Sous {self.sous}; this is Sous {running}"
        return None


def parse_manifest(text: str, file: str) -> tuple[PackManifest | None, list[ErrorDetail]]:
    docs, errors = parse_yaml(text, file)
    if errors:
        return None, errors
    if len(docs) != 1 or not isinstance(docs[0][0], dict):
        return None, [ErrorDetail("", "pack.yaml must hold one mapping", file=file)]
    data, lines = docs[0]
    try:
        return PackManifest.model_validate(data), []
    except ValidationError as exc:
        details = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = lines.get(loc[:1]) if loc else None
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown field (pack.yaml has {', '.join(PackManifest.model_fields)})"
            details.append(
                ErrorDetail(
                    format_loc(loc), message[0].lower() + message[1:], file=file, line=line, loc=loc
                )
            )
        return None, details


def check_manifest_file(path: Path) -> list[ErrorDetail]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [ErrorDetail("", f"cannot read: {exc}", file=str(path))]
    manifest, errors = parse_manifest(text, str(path))
    if manifest is not None:
        reason = manifest.incompatibility()
        if reason:
            errors.append(ErrorDetail("sous", reason, file=str(path), loc=("sous",)))
    return errors
