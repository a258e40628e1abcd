"""pack.yaml: semantic versions, Sous version ranges, and the manifest's own checks."""

from __future__ import annotations

import pytest

from engine.packs.manifest import PackManifest, Version, VersionRange, parse_manifest, sous_version


def test_versions_order_as_semver_says() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    parsed = [Version.parse(v) for v in order]
    assert sorted(parsed) == parsed
    assert [str(v) for v in parsed] == order
    assert Version.parse("1.2.3+build.5") == Version.parse("1.2.3")


@pytest.mark.parametrize("text", ["1.0", "01.2.3", "1.2.3-", "v1.2.3", "1.2.3.4", ""])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        Version.parse(text)


@pytest.mark.parametrize(
    ("range_", "version", "allowed"),
    [
        (">=0.1,<1", "0.1.0", True),
        (">=0.1,<1", "0.9.7", True),
        (">=0.1,<1", "1.0.0", False),
        (">=0.1,<1", "0.0.9", False),
        (">=0.1,<1", "1.0.0-rc.1", True),
        ("==0.1.0", "0.1.0", True),
        ("!=0.1.0", "0.1.0", False),
        (">1", "1.0.1", True),
        ("<=2", "2.0.0", True),
        ("0.3", "0.3.0", True),
    ],
)
def test_ranges(range_: str, version: str, allowed: bool) -> None:
    assert VersionRange.parse(range_).allows(Version.parse(version)) is allowed


@pytest.mark.parametrize("text", ["", ">=", "~>1", ">=1,,<x"])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        VersionRange.parse(text)


def test_incompatibility_names_both_versions() -> None:
    manifest = PackManifest(name="demo", version="1.0.0", sous=">=2,<3")
    assert (
        manifest.incompatibility(Version.parse("0.1.0"))
        == "demo@1.0.0 needs Sous >=2,<3; this is Sous 0.1.0"
    )
    assert manifest.incompatibility(Version.parse("2.4.0")) is None
    assert sous_version() >= Version.parse("0.1.0")


def test_manifest_errors_have_lines() -> None:
    text = "name: Demo Pack\nversion: 1.0.0\nsous: '>=x'\nlicence: MIT\n"
    manifest, errors = parse_manifest(text, "pack.yaml")
    assert manifest is None
    assert [str(e) for e in errors] == [
        "pack.yaml:1 name: string should match pattern '^[a-z0-9][a-z0-9_-]{0,63}$'",
        "pack.yaml:3 sous: '>=x' is not a comparison (use >=, >, <=, <, == or !=)",
        "pack.yaml:4 licence: unknown field (pack.yaml has name, version, description, author, "
        "license, homepage, sous, connectors)",
    ]
