"""Parameter templates: Jinja2 in a sandbox, rendered to native values.

``"{{ product.id }}"`` renders to the integer, not the string ``"123"``: a value that is a single
expression keeps its type; text around expressions makes a string. Templates run in Jinja's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with ``StrictUndefined``: reaching for
private attributes (``''.__class__``) or a name that is not in the context fails with a
:class:`~engine.errors.RenderError` naming the parameter; nothing outside the context runs.

Helpers available in every template: ``now()`` (the engine clock, UTC), ``days(n)``,
``hours(n)``, ``minutes(n)``, ``duration("2h30m")`` (timedeltas), filters ``date`` and
``datetime`` (``strftime`` formats, default ISO dates) and ``iso``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import chain, islice
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator, NativeTemplate
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import RenderError
from engine.model.durations import parse_duration


def _format_date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, date):
        raise TypeError(f"date filter expects a date or datetime, got {type(value).__name__}")
    return value.strftime(fmt)


def _iso(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"iso filter expects a date or datetime, got {type(value).__name__}")


def _concat(values: Iterable[Any]) -> Any:
    """A template that is one expression gives that expression's value, whatever its type;
    anything else gives a string. (Jinja's own native mode would also re-parse strings as
    Python literals, turning a product named "123" into a number.)"""
    head = list(islice(values, 2))
    if not head:
        return None
    if len(head) == 1:
        return head[0]
    return "".join(str(v) for v in chain(head, values))


class _NativeSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with Jinja's native-types code generation."""

    code_generator_class = NativeCodeGenerator
    concat = staticmethod(_concat)


class _Template(NativeTemplate):
    # NativeTemplate.render concatenates with its environment class.
    environment_class = _NativeSandbox  # type: ignore[assignment]


_NativeSandbox.template_class = _Template


def _make_env() -> _NativeSandbox:
    env = _NativeSandbox(undefined=StrictUndefined, autoescape=False)
    env.globals.update(
        days=lambda n: timedelta(days=n),
        hours=lambda n: timedelta(hours=n),
        minutes=lambda n: timedelta(minutes=n),
        duration=parse_duration,
    )
    env.filters.update(date=_format_date, datetime=_format_date, iso=_iso)
    return env


_ENV = _make_env()


def is_template(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=4096)
def _compile(source: str) -> NativeTemplate:
    return _ENV.from_string(source)  # type: ignore[return-value]


def check_template(source: str, path: str = "") -> None:
    """Raise :class:`RenderError` if ``source`` is not a valid template (checked at load time)."""
    try:
        _compile(source)
    except TemplateError as exc:
        raise RenderError(path, f"invalid template: {exc}") from None


def _defined(value: Any) -> Any:
    """Raise the error an undefined value stands for (the sandbox returns unsafe access as one)."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    elif isinstance(value, dict):
        for item in value.values():
            _defined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _defined(item)
    return value


class Renderer:
    """Renders a step's ``with:`` block (nested dicts and lists of templates) against a context."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    def render(self, value: Any, context: Mapping[str, Any], path: str = "") -> Any:
        if isinstance(value, str):
            return self._render_str(value, context, path) if is_template(value) else value
        if isinstance(value, dict):
            return {
                k: self.render(v, context, f"{path}.{k}" if path else str(k))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.render(v, context, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def _render_str(self, source: str, context: Mapping[str, Any], path: str) -> Any:
        try:
            template = _compile(source)
            return _defined(template.render({**context, "now": self._now}))
        except SecurityError as exc:
            raise RenderError(path, f"not allowed in a template: {exc}") from None
        except TemplateError as exc:
            raise RenderError(path, f"{exc} (in {source!r})") from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise RenderError(path, f"{type(exc).__name__}: {exc} (in {source!r})") from None
