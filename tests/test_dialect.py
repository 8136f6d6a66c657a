"""PostgreSQL/SQLite differences live in newsletter/models/dialect.py: no other module branches on a dialect.

Every module under newsletter/ is parsed with `ast`; nothing is imported. A branch shows as a read
of some bind's `.dialect`, or as a dialect's name in the code ("postgresql", "sqlite", ...).
Allowed elsewhere, as declarations of the one schema rather than branches: a column type's
`with_variant(Type, "sqlite")`, and the partial-index options `postgresql_where=` /
`sqlite_where=` (keyword names, which never show as a name in the code).
Run against another tree with `NEWSLETTER_ROOT=/path/to/checkout pytest tests/test_dialect.py`.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(os.environ.get("NEWSLETTER_ROOT") or Path(__file__).resolve().parents[1])
DIALECT_MODULE = Path("newsletter/models/dialect.py")
NAMES = {"postgresql", "postgres", "sqlite", "sqlite3"}


def _branches(source: str) -> list[tuple[int, str]]:
    """(line, what) for every dialect check in `source`."""
    tree = ast.parse(source)
    declared = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute) and node.func.attr == "with_variant" for arg in node.args}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "dialect":
            found.append((node.lineno, f"{ast.unparse(node)} read"))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in NAMES
              and id(node) not in declared):
            found.append((node.lineno, f"{node.value!r} named"))
    return found


def test_the_check_sees_the_package():
    modules = list((ROOT / "newsletter").rglob("*.py"))
    assert len(modules) > 50 and (ROOT / DIALECT_MODULE).is_file()
    assert _branches((ROOT / DIALECT_MODULE).read_text(encoding="utf-8"))  # the module itself does branch


def test_the_check_catches_the_usual_spellings():
    assert len(_branches('if db.engine.dialect.name == "postgresql":\n    pass')) == 2
    assert _branches('ok = connection.dialect.name != "sqlite"')
    assert _branches('if type(conn).__module__.startswith("sqlite3"):\n    pass')
    assert not _branches('id = mapped_column(BigInteger().with_variant(Integer, "sqlite"))')
    assert not _branches('Index("ix", "status", postgresql_where=text("x"), sqlite_where=text("x"))')


def test_no_dialect_branches_outside_the_dialect_module():
    found = []
    for path in sorted((ROOT / "newsletter").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative == DIALECT_MODULE:
            continue
        found += [f"{relative}:{line}: {what}" for line, what in _branches(path.read_text(encoding="utf-8"))]
    assert not found, ("dialect checks outside newsletter/models/dialect.py (ask it for a construct or a "
                       "capability instead):\n" + "\n".join(found))
