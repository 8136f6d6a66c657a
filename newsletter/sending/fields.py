"""What a template reads from its context, and template errors worded for the people who write them.

`uses(sources)` walks the parsed templates (never renders them) for the subscriber attributes
they read (`subscriber.attributes.city`, `subscriber.attributes["city"]`,
`subscriber.attributes.get("city")`) and whether each read is guarded: passed through
`default`, tested (`is defined`, `{% if %}`, `or`), or read inside an `{% if %}` that tested
it. It also lists the names that no context will ever have (`subscriber.nmae`, `frist_name`):
in a campaign they render as nothing, silently.

`explain(message, sources, context)` turns Jinja's "'dict object' has no attribute 'x'" into
"there is no field `x`; available: id, email, name, attributes.city".
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, meta, nodes

SUBSCRIBER_FIELDS = ("id", "email", "name", "attributes")
CAMPAIGN_FIELDS = ("id", "name", "subject", "from_name", "from_email")
LINKS = ("unsubscribe_url", "preferences_url", "web_view_url")
# Jinja's own globals: always there, never a missing field.
_GLOBALS = frozenset(Environment().globals) | {"content"}
_GUARD_FILTERS = frozenset({"default", "d"})
_GUARD_TESTS = frozenset({"defined", "undefined", "none"})
_PARSER = Environment()  # parsing only: the sandbox's checks run when the template compiles


@dataclass
class Usage:
    """Attribute keys read (key -> True when every read is guarded) and names no context has."""
    attributes: dict[str, bool] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    def read(self, key: str, guarded: bool) -> None:
        self.attributes[key] = self.attributes.get(key, True) and guarded

    @property
    def unguarded(self) -> list[str]:
        return sorted(key for key, guarded in self.attributes.items() if not guarded)


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _member(node: nodes.Node) -> tuple[nodes.Node, Any] | None:
    """(owner, name) of `owner.name` or `owner["name"]`, else None."""
    if isinstance(node, nodes.Getattr):
        return node.node, node.attr
    if isinstance(node, nodes.Getitem):
        return node.node, _const(node.arg)
    return None


def _is_attributes(node: nodes.Node) -> bool:
    member = _member(node)
    return (member is not None and member[1] == "attributes" and isinstance(member[0], nodes.Name)
            and member[0].name == "subscriber")


def attribute_key(node: nodes.Node) -> str | None:
    """The key `node` reads from `subscriber.attributes`, if it is such a read."""
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and node.node.attr == "get" \
            and _is_attributes(node.node.node) and node.args:
        key = _const(node.args[0])
        return key if isinstance(key, str) else None
    member = _member(node)
    if member is not None and _is_attributes(member[0]) and isinstance(member[1], str):
        return member[1]
    return None


def _keys_in(node: nodes.Node) -> set[str]:
    reads = node.find_all((nodes.Getattr, nodes.Getitem, nodes.Call))
    found = {attribute_key(node)} | {attribute_key(n) for n in reads}
    return {key for key in found if key}


class _Walker:
    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    def walk(self, node: nodes.Node, safe: frozenset[str] = frozenset()) -> None:
        if isinstance(node, nodes.If):
            tested = _keys_in(node.test)
            self._guarded(node.test, safe)
            self.walk_all(node.body, safe | tested)
            self.walk_all(node.elif_, safe)
            self.walk_all(node.else_, safe)
        elif isinstance(node, nodes.CondExpr):
            tested = _keys_in(node.test)
            self._guarded(node.test, safe)
            self.walk(node.expr1, safe | tested)
            if node.expr2 is not None:
                self.walk(node.expr2, safe)
        elif isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS and node.node is not None:
            self._guarded(node.node, safe)
            self.walk_all([*node.args, *(kw.value for kw in node.kwargs)], safe)
        elif isinstance(node, nodes.Test) and node.name in _GUARD_TESTS:
            self._guarded(node.node, safe)
        elif isinstance(node, nodes.Or):
            self._guarded(node.left, safe)
            self.walk(node.right, safe)
        elif (key := attribute_key(node)) is not None:
            # .get("k", fallback) is guarded by its fallback; .get("k") renders "None".
            guarded = key in safe or (isinstance(node, nodes.Call) and len(node.args) > 1)
            self.usage.read(key, guarded)
        else:
            self.walk_all(node.iter_child_nodes(), safe)

    def walk_all(self, children: Iterable[nodes.Node], safe: frozenset[str]) -> None:
        for child in children:
            self.walk(child, safe)

    def _guarded(self, node: nodes.Node, safe: frozenset[str]) -> None:
        """A test or a defaulted value: its own attribute read is guarded, anything inside it is walked."""
        key = attribute_key(node)
        if key is not None:
            self.usage.read(key, True)
        else:
            self.walk(node, safe)


def _unknown_names(tree: nodes.Template, known: set[str]) -> list[str]:
    """Top-level names no context defines, and subscriber/campaign fields that do not exist."""
    names = {name for name in meta.find_undeclared_variables(tree) if name not in known}
    fields = {"subscriber": SUBSCRIBER_FIELDS, "campaign": CAMPAIGN_FIELDS}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        member = _member(node)
        if member is None or not isinstance(member[0], nodes.Name) or not isinstance(member[1], str):
            continue
        owner = member[0].name
        if owner in fields and member[1] not in fields[owner]:
            names.add(f"{owner}.{member[1]}")
    return sorted(names)


def uses(sources: Iterable[str], context_names: Iterable[str] = ("subscriber", "campaign", *LINKS)) -> Usage:
    """What the templates read; a template that does not parse adds nothing (its error is reported elsewhere)."""
    usage = Usage()
    known = set(context_names) | _GLOBALS
    unknown: set[str] = set()
    for source in sources:
        if not source or ("{{" not in source and "{%" not in source):
            continue
        try:
            tree = _PARSER.parse(source)
        except TemplateSyntaxError:
            continue
        _Walker(usage).walk(tree)
        unknown.update(_unknown_names(tree, known))
    usage.unknown = sorted(unknown)
    return usage


def default_suggestion(key: str, fallback: str = "friend") -> str:
    """The guarded form of a read, for the editor to suggest."""
    lookup = f"subscriber.attributes.{key}" if key.isidentifier() else f'subscriber.attributes["{key}"]'
    return f'{{{{ {lookup} | default("{fallback}") }}}}'


# Errors in the marketer's words -------------------------------------------------------------

_NO_ATTRIBUTE = re.compile(r"^'(\w+) object' has no (?:attribute|element) '(.+)'$")
_UNDEFINED = re.compile(r"^'(.+)' is undefined$")
_TYPE_NAMES = {"str": "a text", "int": "a number", "float": "a number", "list": "a list", "bool": "a yes/no value",
               "NoneType": "an empty value"}


def available(context: Mapping[str, Any], owner: str | None) -> list[str]:
    """What `owner` (a top-level name) offers, attributes spelled out; None: the top-level names."""
    if owner is None:
        return [name for name in context if not name.startswith("_")]
    value = context.get(owner)
    if not isinstance(value, Mapping):
        return []
    names: list[str] = []
    for name, inner in value.items():
        if name == "attributes" and isinstance(inner, Mapping):
            names += [f"attributes.{key}" for key in inner] or ["attributes (none for this subscriber)"]
        else:
            names.append(str(name) if owner == "subscriber" else f"{owner}.{name}")
    return names


def _owner_of(name: str, sources: Iterable[str]) -> tuple[str | None, bool]:
    """Which top-level dict the missing `name` was read from, and whether through `.attributes`."""
    for source in sources:
        try:
            tree = _PARSER.parse(source)
        except TemplateSyntaxError:
            continue
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            member = _member(node)
            if member is None or member[1] != name:
                continue
            if _is_attributes(member[0]):
                return "subscriber", True
            if isinstance(member[0], nodes.Name):
                return member[0].name, False
    return None, False


def explain(message: str, sources: Iterable[str], context: Mapping[str, Any]) -> str | None:
    """Jinja's undefined-value message as the marketer should read it; None when it is not one."""
    sources = list(sources)
    if match := _UNDEFINED.match(message):
        name = match.group(1)
        return f"there is no field `{name}`; available: {', '.join(available(context, None))}"
    match = _NO_ATTRIBUTE.match(message)
    if match is None:
        return None
    kind, name = match.groups()
    if kind != "dict":
        return f"`{name}` is read from {_TYPE_NAMES.get(kind, 'a ' + kind)} value, which has no fields"
    owner, through_attributes = _owner_of(name, sources)
    if owner is None:
        return f"there is no field `{name}`"
    offered = ", ".join(available(context, owner)) or "nothing"
    if through_attributes:
        return (f"there is no field `attributes.{name}` for this subscriber; available: {offered}. "
                f"Subscribers without it would break the template: write {default_suggestion(name, '…')}")
    shown = name if owner == "subscriber" else f"{owner}.{name}"
    return f"there is no field `{shown}`; available: {offered}"
