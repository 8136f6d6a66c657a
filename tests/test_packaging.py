"""pyproject.toml is the one list of what the platform needs; requirements*.txt pin exactly that.

`[project.dependencies]` (and the `dev` extra) name what the code imports; requirements.txt and
requirements-dev.txt pin every package those pull in, and nothing else. This test walks the
dependency metadata of the installed .venv from pyproject's names and fails, naming the package
and the file to change, when the two disagree: a pin nothing in pyproject needs (the app would
lack it after `pip install .`), a package pyproject pulls in but no file pins, or a pin outside
pyproject's range. Offline: it reads only the files and the installed metadata.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Pins are for Linux CPython: a pin is needed if some supported Python version pulls it in.
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
# The installer's own tools come with every venv; like pip-compile, the pins leave them out.
UNPINNED = {"pip", "setuptools"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(name: str) -> dict[NormalizedName, str]:
    """`package==version` lines of a requirements file; comments and `-r` includes skipped."""
    found: dict[NormalizedName, str] = {}
    for number, raw in enumerate((ROOT / name).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{name}:{number}: pin exactly, as name==version: {raw}"
        key = canonicalize_name(requirement.name)
        assert key not in found, f"{name}:{number}: {requirement.name} is pinned twice"
        found[key] = specs[0].version
    return found


def environments() -> list[dict[str, str]]:
    here = dict(default_environment())
    return [{**here, "python_version": v, "python_full_version": v + ".0"} for v in PYTHONS]


def wanted(requirement: Requirement, extras: Iterable[str], env: Mapping[str, str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def closure(roots: Iterable[str], envs: list[dict[str, str]]) -> dict[NormalizedName, str]:
    """Every package `roots` pull in under any of `envs`, each with the first one that needs it."""
    needed_by: dict[NormalizedName, str] = {}
    todo = [(Requirement(text), "pyproject.toml") for text in roots]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while todo:
        requirement, parent = todo.pop()
        key = canonicalize_name(requirement.name)
        needed_by.setdefault(key, parent)
        if (key, frozenset(requirement.extras)) in seen:
            continue
        seen.add((key, frozenset(requirement.extras)))
        try:
            dist = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue  # needed only elsewhere (another platform or Python): nothing to walk here
        for text in dist.requires or []:
            child = Requirement(text)
            if any(wanted(child, requirement.extras, env) for env in envs):
                todo.append((child, dist.metadata["Name"]))
    return needed_by


def needed_here(roots: Iterable[str]) -> dict[NormalizedName, str]:
    return closure(roots, [dict(default_environment())])


def disagreements(roots: list[str], pinned: dict[NormalizedName, str], pin_file: str,
                  checked: Iterable[str] = ()) -> list[str]:
    """What is wrong between the packages `roots` pull in and those `pinned`, one line each
    (leaving out the `checked` ones, which another test covers)."""
    here = {name: parent for name, parent in needed_here(roots).items() if name not in checked}
    anywhere = closure(roots, environments())
    problems = []
    for name, parent in sorted(here.items()):
        if name in UNPINNED:
            continue
        if name not in pinned:
            problems.append(f"{name} (needed by {parent}) is not pinned: add {name}==<version> to {pin_file}")
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned[name]:
            problems.append(f"{name} is {installed or 'not installed'} in this venv, pinned {pinned[name]}: "
                            "run `make install-dev` first")
    for name in sorted(set(pinned) - set(anywhere)):
        problems.append(f"{name} is pinned but nothing in pyproject.toml needs it: add it to pyproject.toml "
                        f"(if the code imports it) or remove its pin from {pin_file}")
    for text in roots:
        requirement = Requirement(text)
        version = pinned.get(canonicalize_name(requirement.name))
        if version and not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside pyproject.toml's {text!r}")
    return problems


def test_requirements_txt_pins_exactly_what_pyproject_needs():
    problems = disagreements(pyproject()["dependencies"], pins("requirements.txt"), "requirements.txt")
    assert not problems, "\n".join(problems)


def test_requirements_dev_txt_pins_exactly_what_the_dev_extra_adds():
    project = pyproject()
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not set(runtime) & set(dev), f"pinned in both files: {sorted(set(runtime) & set(dev))}"
    roots = project["dependencies"] + project["optional-dependencies"]["dev"]
    problems = disagreements(roots, runtime | dev, "requirements-dev.txt", needed_here(project["dependencies"]))
    assert not problems, "\n".join(problems)


def test_dependency_lists_stay_sorted_one_a_line():
    """Branches add dependencies side by side: sorted lists merge without conflicts or duplicates."""
    project = pyproject()
    for label, entries in (("dependencies", project["dependencies"]),
                           ("optional-dependencies.dev", project["optional-dependencies"]["dev"])):
        names = [canonicalize_name(Requirement(text).name) for text in entries]
        assert names == sorted(set(names)), f"pyproject.toml [project.{label}]: keep one entry per package, sorted"
