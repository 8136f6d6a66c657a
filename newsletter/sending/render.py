"""Sandboxed Jinja2 for everything a user writes: check at save time, compile once, render with caps.

Marketers' subject, HTML and text are templates. They run in Jinja2's immutable sandbox,
are refused at save time when they do not compile, reach for Python internals (any `_name`
attribute or item) or fail on a sample subscriber, and render with a time budget and an
output-size cap so one template cannot stall a worker or fill its memory.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from markupsafe import escape

from .fields import explain
from .html_text import html_to_text
from .render_limits import MAX_OUTPUT, MAX_SECONDS, LimitExceeded, budget
from .sandbox import SandboxEnvironment as _Environment


class RenderError(ValueError):
    """A template that cannot be used: `field` names the part, `line` where it broke."""

    def __init__(self, field: str, message: str, line: int | None = None, undefined: bool = False) -> None:
        where = f" (line {line})" if line else ""
        super().__init__(f"{message}{where}")
        self.field = field
        self.line = line
        self.message = f"{message}{where}"
        self.undefined = undefined  # a strict render met a name its context does not have


HTML_ENV = _Environment(autoescape=True)
TEXT_ENV = _Environment(autoescape=False)
# Transactional templates: a name missing from the caller's `data` is an error, not "".
STRICT_HTML_ENV = _Environment(autoescape=True, undefined=StrictUndefined)
STRICT_TEXT_ENV = _Environment(autoescape=False, undefined=StrictUndefined)


def _check_no_private_access(source: str, field: str, env: _Environment) -> nodes.Template:
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise RenderError(field, f"Template error: {exc.message}", exc.lineno) from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem):  # obj["_x"]: a constant key is a name too
            name = getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise RenderError(field, f"“{name}” is not allowed: templates cannot reach Python internals",
                              node.lineno)
    return tree


def _render(template: Any, context: Mapping[str, Any], field: str, source: str = "") -> str:
    budget.start()
    size = 0
    parts: list[str] = []
    chunks: list[str] = []  # joined every 1,024: millions of tiny chunks would cost ~50 bytes each
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderError(field, f"Rendered {field} is larger than {MAX_OUTPUT // 1024} KB")
            if budget.expired():
                raise RenderError(field, f"Rendering {field} took longer than {MAX_SECONDS:g} s")
            chunks.append(chunk)
            if len(chunks) >= 1024:
                parts.append("".join(chunks))
                chunks.clear()
        parts += chunks
    except LimitExceeded as exc:  # stopped inside the template: say which cap, and where
        raise RenderError(field, f"Rendering {field} stopped: {exc}", _lineno(exc)) from None
    except RecursionError:
        raise RenderError(field, f"Rendering {field} stopped: macros or values nested too deeply") from None
    except MemoryError:  # a last resort: the limits above should stop a template long before
        raise RenderError(field, f"Rendering {field} stopped: it needed too much memory") from None
    except SecurityError as exc:
        raise RenderError(field, f"Not allowed: {exc}", _lineno(exc)) from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        if isinstance(exc, RenderError):
            raise
        undefined = isinstance(exc, UndefinedError)
        worded = explain(str(exc), [source], context) if undefined else None
        raise RenderError(field, f"Template error: {worded or exc}", _lineno(exc), undefined=undefined) from None
    finally:
        budget.stop()
    return "".join(parts)


def _lineno(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:  # Jinja maps template frames to "<template>" with the source line
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return getattr(exc, "lineno", None) or line


_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def inline_css(source: str) -> str:
    """Move <style> rules into style attributes, keeping Jinja tags byte for byte (and @media rules)."""
    if "<style" not in source.lower():
        return source
    import css_inline

    tags: list[str] = []

    def park(match: re.Match) -> str:
        tags.append(match.group(0))
        return f"JINJATAG{len(tags) - 1}X"

    # @media rules (responsive columns, dark mode) cannot be inlined: they stay in a <style>;
    # a <link>ed stylesheet is never fetched (no network call while compiling a message).
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    try:
        inlined = inliner.inline(_JINJA_TAG.sub(park, source))
    except ValueError:
        return source  # CSS the inliner cannot parse: send the HTML as written
    return re.sub(r"JINJATAG(\d+)X", lambda m: tags[int(m.group(1))], inlined)


def wrap_in_layout(layout_html: str | None, content: str) -> str:
    """The layout's `{{ content }}` replaced by the campaign body, before compiling."""
    if not layout_html:
        return content
    return re.sub(r"\{\{\s*content\s*\}\}", lambda _: content, layout_html, count=1)


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


_Lookup = tuple[str, tuple[tuple[bool, Any], ...]]  # a top-level name, then (is an item?, key) steps


class _Plain:
    """A template that is only text and `{{ name.attr["key"] }}` outputs, rendered without Jinja's machinery.

    Most campaigns are this: a per-recipient render through Jinja builds a context and a
    generator and checks the deadline at every chunk (about a third of a message's build).
    Here each output is looked up with the same sandboxed `getattr`/`getitem` and printed
    with the same `escape`/`str` the compiled code uses, so the result is the same string; any
    exception, or an output past the size cap, sends the render to Jinja, which raises exactly
    as before (`_render`). Nothing here loops or calls template code: it needs no deadline.
    """

    def __init__(self, pieces: list[str | _Lookup], env: _Environment, template: Any) -> None:
        self.pieces = pieces
        self.getattr, self.getitem = env.getattr, env.getitem
        self.undefined = env.undefined
        self.globals = template.globals
        self.output: Callable[[Any], str] = escape if env.autoescape else str

    @classmethod
    def of(cls, tree: nodes.Template, env: _Environment, template: Any) -> _Plain | None:
        if env.finalize is not None or (env.autoescape not in (True, False)):
            return None
        pieces: list[str | _Lookup] = []
        for node in tree.body:
            if not isinstance(node, nodes.Output):
                return None
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    pieces.append(child.data)
                    continue
                lookup = _lookup(child)
                if lookup is None:
                    return None
                pieces.append(lookup)
        return cls(pieces, env, template)

    def render(self, context: Mapping[str, Any]) -> str | None:
        """The rendered text, or None when Jinja must render it (an error to raise, a cap to apply)."""
        out = []
        try:
            for piece in self.pieces:
                if isinstance(piece, str):
                    out.append(piece)
                    continue
                name, steps = piece
                if name in context:
                    value = context[name]
                elif name in self.globals:
                    value = self.globals[name]
                else:
                    value = self.undefined(name=name)
                for item, key in steps:
                    # A plain dict's key (not shadowed by a dict method, for `.key`) is what the
                    # sandbox's getattr/getitem return for it, without their try/except.
                    if type(value) is dict and key in value and (item or key not in _DICT_NAMES):
                        value = value[key]
                    else:
                        value = self.getitem(value, key) if item else self.getattr(value, key)
                out.append(self.output(value))
        except Exception:  # noqa: BLE001  (Jinja renders it again and raises as it always did)
            return None
        text = "".join(out)
        return text if len(text) <= MAX_OUTPUT else None


_DICT_NAMES = frozenset(dir(dict))  # what getattr finds on a dict before its keys


def _lookup(node: nodes.Node) -> _Lookup | None:
    """`name`, `name.attr`, `name["key"]`... as (name, steps), else None."""
    steps: list[tuple[bool, Any]] = []
    while True:
        if isinstance(node, nodes.Name) and node.ctx == "load":
            return node.name, tuple(reversed(steps))
        if isinstance(node, nodes.Getattr):
            steps.append((False, node.attr))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and type(node.arg.value) in (str, int):
            steps.append((True, node.arg.value))
        else:
            return None
        node = node.node


class _Part:
    """One compiled part: Jinja's template, and the plain renderer when the template allows one."""

    def __init__(self, source: str, field: str, env: _Environment) -> None:
        tree = _check_no_private_access(source, field, env)
        self.source, self.field = source, field
        self.template = _from_string(source, field, env)
        self.plain = _Plain.of(tree, env, self.template)

    def render(self, context: Mapping[str, Any]) -> str:
        if self.plain is not None:
            text = self.plain.render(context)
            if text is not None:
                return text
        return _render(self.template, context, self.field, self.source)


class CompiledMessage:
    """Subject, HTML and text compiled once; `render(context)` per recipient."""

    def __init__(self, subject: str, html: str, text: str = "", layout_html: str | None = None,
                 strict: bool = False, html_transform: Callable[[str], str] | None = None) -> None:
        html_source = inline_css(wrap_in_layout(layout_html, html))
        text_source = text if text.strip() else html_to_text(html_source)
        if html_transform is not None:  # after the text part is made: it stays as written (tracking)
            html_source = html_transform(html_source)
        html_env, text_env = (STRICT_HTML_ENV, STRICT_TEXT_ENV) if strict else (HTML_ENV, TEXT_ENV)
        self.sources = {"subject": subject, "html": html_source, "text": text_source}
        self.parts = (_Part(subject, "subject", text_env), _Part(html_source, "html", html_env),
                      _Part(text_source, "text", text_env))
        self.subject, self.html, self.text = (part.template for part in self.parts)

    def render(self, context: Mapping[str, Any]) -> Rendered:
        subject, html, text = (part.render(context) for part in self.parts)
        return Rendered(" ".join(subject.split()), html, text)  # the subject: no CR/LF

    def render_with_jinja(self, context: Mapping[str, Any]) -> Rendered:
        """`render` through Jinja alone: the reference the plain renderer is tested against."""
        subject, html, text = (_render(p.template, context, p.field, p.source) for p in self.parts)
        return Rendered(" ".join(subject.split()), html, text)


def _compile(source: str, field: str, env: _Environment) -> Any:
    _check_no_private_access(source, field, env)
    return _from_string(source, field, env)


def _from_string(source: str, field: str, env: _Environment) -> Any:
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderError(field, f"Template error: {exc.message}", exc.lineno) from None


def compile_each(parts: Iterable[tuple[str, str]]) -> None:
    """Compile each part on its own, so an error's line is counted in that part (not in its layout)."""
    for field, source in parts:
        _compile(source or "", field, TEXT_ENV if field != "html" else HTML_ENV)


def check(parts: Iterable[tuple[str, str]], sample: Mapping[str, Any], layout_html: str | None = None) -> None:
    """Raise RenderError for the first part that would fail: compile, then render on `sample`."""
    sources = dict(parts)
    compile_each(sources.items())
    compiled = CompiledMessage(sources.get("subject", ""), sources.get("html", ""), sources.get("text", ""),
                               layout_html)
    compiled.render(sample)


def render_string(source: str, context: Mapping[str, Any], field: str = "template", html: bool = False) -> str:
    """One-off render (layout previews, transactional templates)."""
    return _render(_compile(source, field, HTML_ENV if html else TEXT_ENV), context, field, source)


__all__ = ["CompiledMessage", "RenderError", "Rendered", "check", "inline_css", "render_string",
           "wrap_in_layout", "UndefinedError"]
