"""The Jinja2 sandbox marketers' templates run in: immutable, and held to the render limits.

How the limits reach every render (see render_limits.py for the sizing rules):
- Time: the deadline is checked in every call, filter and intercepted operator, on every
  iteration of every `{% for %}` (the code generator wraps each loop's iterable, so a loop whose
  body calls nothing still stops), and on every chunk of output.
- Size: operators that multiply (`*`, `**`, `+`, `%`), str.format, the growing str methods and
  filters are sized before they run; every call, filter result and literal container is sized
  after; output buffers (macros, `{% set %}` / `{% filter %}` blocks) count what they hold.
  Unary operators cannot grow a value, so none is intercepted.
Checking in the generated code, rather than in a tracer or a watchdog thread, keeps the
cost to a few attribute reads per operation and works the same in web and worker processes.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from . import render_limits as limits
from .render_limits import LimitExceeded, check_time, collect, refuse_if_large, size_of


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, emitting calls to the limit hooks (Jinja allows no custom nodes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hooks: dict[int, tuple[nodes.Node, str]] = {}  # id(node) -> (node, environment method)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        hooked = self._hooks.get(id(node))
        if hooked is None or hooked[0] is not node:
            return super().visit(node, *args, **kwargs)
        self.write(f"environment.{hooked[1]}(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Every iteration checks the deadline, whether or not the body calls anything.
        self._hooks[id(node.iter)] = (node.iter, "loop_items")
        super().visit_For(node, frame)

    def visit_Assign(self, node: nodes.Assign, frame: Frame) -> None:
        super().visit_Assign(node, frame)
        self._size_namespaces(node, frame)

    def visit_AssignBlock(self, node: nodes.AssignBlock, frame: Frame) -> None:
        super().visit_AssignBlock(node, frame)
        self._size_namespaces(node, frame)

    def _size_namespaces(self, node: nodes.Node, frame: Frame) -> None:
        # `{% set ns.a = x %}` adds to a namespace in place: it is sized whole, like any new value.
        for name in {ref.name for ref in node.find_all(nodes.NSRef)}:
            self.writeline(f"environment.sized({frame.symbols.ref(name)})")

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"{join}(environment.concat_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")

    def _sized_literal(self, visit: Callable[..., None], node: nodes.Expr, frame: Frame) -> None:
        if getattr(node, "ctx", "load") != "load" or _constant(node, frame):  # a target, or sized by the source
            visit(node, frame)
            return
        self.write("environment.sized(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._sized_literal(super().visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._sized_literal(super().visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._sized_literal(super().visit_Dict, node, frame)


    def _folded_binop(self, operator: str, node: nodes.BinExpr, frame: Frame) -> bool:
        """Write a constant `'%d%%' % 20` as its (sized) value, as Jinja does for operators it does not intercept."""
        # The sandbox's own operator hook (this generator serves only the sandbox); no context needed.
        environment: Any = self.environment
        try:
            value = environment.call_binop(None, operator, node.left.as_const(frame.eval_ctx),
                                           node.right.as_const(frame.eval_ctx))
        except Exception:  # noqa: BLE001  (not constant, or refused: the render says why)
            return False
        if type(value) not in (str, int, float):
            return False
        self.write(repr(value))
        return True

    def visit_Mul(self, node: nodes.BinExpr, frame: Frame) -> None:
        if not self._folded_binop("*", node, frame):
            super().visit_Mul(node, frame)

    def visit_Pow(self, node: nodes.BinExpr, frame: Frame) -> None:
        if not self._folded_binop("**", node, frame):
            super().visit_Pow(node, frame)

    def visit_Add(self, node: nodes.BinExpr, frame: Frame) -> None:
        if not self._folded_binop("+", node, frame):
            super().visit_Add(node, frame)

    def visit_Mod(self, node: nodes.BinExpr, frame: Frame) -> None:
        if not self._folded_binop("%", node, frame):
            super().visit_Mod(node, frame)


def _constant(node: nodes.Expr, frame: Frame) -> bool:
    try:
        node.as_const(frame.eval_ctx)
    except nodes.Impossible:
        return False
    return True


class _Buffer(list):
    """A macro's or block's output so far, refused once it passes the size cap.

    Every JOIN_EVERY chunks are joined into one string, so a long run of tiny chunks does not
    hold millions of small string objects (about 50 bytes each) on the way to the cap.
    """
    JOIN_EVERY = 1024
    size = 0

    def __init__(self) -> None:
        super().__init__()
        self.joined: list[str] = []

    def append(self, chunk: str) -> None:
        self.size += len(chunk)
        refuse_if_large(self.size, "the output")
        check_time()
        super().append(chunk)
        if len(self) >= self.JOIN_EVERY:
            self.joined.append("".join(self))
            self.clear()

    def extend(self, chunks: Iterable[str]) -> None:
        for chunk in chunks:
            self.append(chunk)

    def text(self) -> str:
        return "".join([*self.joined, *self])


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _lipsum

    # Hooks the generated code calls --------------------------------------------------------

    def loop_items(self, iterable: Iterable[Any]) -> Iterator[Any]:
        deadline = limits.budget.deadline  # fixed for the render under way
        for item in iterable:
            if limits.clock() > deadline:
                raise limits.too_slow()
            yield item

    def output_buffer(self) -> list[str]:
        return _Buffer()

    def concat(self, parts: Iterable[str]) -> str:
        if type(parts) is not _Buffer:  # a block's output (self.blockname()) arrives as a generator
            buffer = _Buffer()
            buffer.extend(parts)
            parts = buffer
        return parts.text()

    def concat_parts(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        total = 0
        for part in parts:
            total += len(part) if type(part) is str else size_of(part)
        refuse_if_large(total, "“~”")
        return parts

    def sized(self, value: Any) -> Any:
        refuse_if_large(size_of(value), "a list, dict or namespace")
        return value

    # Sandbox overrides ---------------------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_time()
        refuse_if_large(limits.binop_size(operator, left, right), f"“{operator}”")
        return self.binop_table[operator](left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes, int)):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args and not isinstance(owner, int):
                items = collect(iter(args[0]), f"{name}()")
                refuse_if_large(limits.join_size(owner, items), f"{name}()")
                args = (items, *args[1:])
            elif name in limits.METHOD_SIZES:
                refuse_if_large(_estimate(limits.METHOD_SIZES[name], owner, *args, **kwargs), f"{name}()")
        result = super().call(__context, __obj, *args, **kwargs)
        size = size_of(result)
        if size > limits.budget.max_size:
            refuse_if_large(size, f"{getattr(__obj, '__name__', 'a call')}()")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        def sized_format(*args: Any, **kwargs: Any) -> str:  # not functools.wraps: this runs per render
            values = args[0] if is_map and len(args) == 1 and isinstance(args[0], Mapping) else kwargs
            refuse_if_large(limits.format_size(template, () if is_map else args, values), "format()")
            return wrapper(*args, **kwargs)

        return sized_format


def _estimate(estimator: Callable[..., int], *args: Any, **kwargs: Any) -> int | None:
    try:
        return estimator(*args, **kwargs)
    except (TypeError, ValueError, AttributeError):
        return None  # arguments the real function refuses: let it say so


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    refuse_if_large(n * max * 12, "lipsum()")  # ~12 characters a word
    return generate_lorem_ipsum(n, html, min, max)


# Filters --------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _indent(s: Any, width: int | str = 4, *_: Any) -> int:
    step = len(width) if isinstance(width, str) else int(width)
    return size_of(s) + (_text(s).count("\n") + 1) * step


def _wordwrap(s: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None,
              *_: Any) -> int:
    text = _text(s)
    lines = len(text) // max(int(width), 1) + text.count(" ") + text.count("\n") + 1
    return size_of(s) + lines * len(wrapstring if wrapstring is not None else "\r\n")


def _replace(s: Any, old: Any, new: Any, count: int | None = None) -> int:
    return limits.replace_size(str(s), str(old), str(new), count if count is not None else -1)


def _join(value: Any, d: str = "", *_: Any) -> int:
    return limits.join_size(str(d), list(value))


def _escape(s: Any) -> int:
    text = _text(s)
    if len(text) < limits.MAX_OUTPUT // 5:
        return len(text) * 5
    return len(text) + 4 * sum(text.count(c) for c in "&<>\"'")


def _urlize(value: Any, trim_url_limit: Any = None, nofollow: bool = False, target: str | None = None,
            rel: str | None = None, *_: Any) -> int:
    text = _text(value)
    links = text.count(".") + text.count("@") + text.count(":")
    return 2 * len(text) + links * (80 + len(target or "") + len(rel or ""))


def _refuse_non_numbers(iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    if not isinstance(start, (int, float)):
        raise LimitExceeded("the “sum” filter only adds numbers")
    return 0


def _indented(value: Any, indent: Any = None) -> int:
    step = len(indent) if isinstance(indent, str) else int(indent or 1)
    return size_of(value) * (6 + step * limits.MAX_DEPTH)


_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80, *_: max(size_of(value), int(width)),
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "join": _join,
    "format": lambda value, *args, **kwargs: limits.percent_size(str(value), kwargs or args),
    "tojson": _indented,
    "pprint": _indented,
    "batch": lambda value, linecount, fill_with=None: size_of(value) + (
        int(linecount) * (1 + size_of(fill_with)) if fill_with is not None else 0),
    "slice": lambda value, slices, fill_with=None: size_of(value) + int(slices) * (1 + size_of(fill_with)),
    "sum": _refuse_non_numbers,
    "urlize": _urlize,
    "list": lambda value: 2 * size_of(value),  # a string becomes a list of one-character strings
    "urlencode": lambda value: 12 * size_of(value),  # a character may become 4 bytes of %XX
    "escape": _escape, "e": _escape, "forceescape": _escape,
}


_PLAIN = (str, int, float, list, tuple, dict, type(None))  # a quick answer before the slower ABC check


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with the deadline, its input collected if lazy, sized before (if it grows) and after."""
    estimator = _FILTER_SIZES.get(name)
    first = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # context/environment comes first
    what = f"the “{name}” filter"

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if len(args) > first and not isinstance(args[first], _PLAIN) and isinstance(args[first], Iterator):
            args = (*args[:first], collect(args[first], what), *args[first + 1:])
        if estimator is not None:
            refuse_if_large(_estimate(estimator, *args[first:], **kwargs), what)
        result = func(*args, **kwargs)
        if (len(result) if type(result) is str else size_of(result)) > limits.budget.max_size:
            refuse_if_large(size_of(result), what)
        return result

    return guarded
