"""What a release publishes agrees with itself: one version, the license, the changelog.

The version is written once, in pyproject.toml; `target-pendo --version` and `--about` read it
from the installed package's metadata (singer-sdk looks `package_name` up with
importlib.metadata). The classifiers name the Python versions `--about` lists; LICENSE is the
Apache License 2.0 that pyproject declares; CHANGELOG.md has an entry for the version and says
what each ledger schema version migrates. docs/releasing.md says how these move together.
"""

from __future__ import annotations

import glob
import importlib.metadata
import re
import tomllib
from pathlib import Path

from target_pendo.ledger.migrations import _MIGRATIONS, SCHEMA_VERSION
from target_pendo.target import TargetPendo

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PROJECT["project"]["version"]


def test_the_version_is_pyprojects_everywhere() -> None:
    installed = importlib.metadata.version("target-pendo")
    assert installed == VERSION, (
        f"the installed target-pendo is {installed}, pyproject says {VERSION}: reinstall it "
        "(pip install -e '.[dev]'; make does it when pyproject.toml changes)"
    )
    assert TargetPendo.plugin_version == VERSION  # --version, --about
    # and written nowhere else in the package
    for path in (ROOT / "target_pendo").rglob("*.py"):
        assert f'"{VERSION}"' not in path.read_text(encoding="utf-8"), path


def test_the_python_classifiers_are_the_versions_about_lists() -> None:
    classifiers = PROJECT["project"]["classifiers"]
    listed = [
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert listed == TargetPendo.get_supported_python_versions()
    assert "Typing :: Typed" in classifiers
    assert (ROOT / "target_pendo" / "py.typed").exists()


def test_the_license_is_apache_2() -> None:
    project = PROJECT["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    # the SPDX expression replaces the classifier: setuptools refuses both
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 target-pendo contributors" in text


def test_package_data_names_files_that_exist() -> None:
    data = PROJECT["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        for pattern in patterns:
            assert glob.glob(str(ROOT / package / pattern)), f"{package}/{pattern} matches nothing"


def test_the_changelog_has_the_version_and_every_ledger_schema() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(VERSION)}\]", text, re.M), (
        f"CHANGELOG.md has no '## [{VERSION}]' entry (docs/releasing.md)"
    )
    schema = text.split("### Ledger schema", 1)[1]
    assert sorted(_MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))
    for version in _MIGRATIONS:
        assert re.search(rf"^\| {version} \|", schema, re.M), (
            f"CHANGELOG.md's Ledger schema table has no row for schema version {version}"
        )
