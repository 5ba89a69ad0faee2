"""Tools as typed data: :class:`ToolSpec`, and the adapters every framework needs.

A store describes each tool once — name, description, a pydantic model of its arguments (the
JSON schema is built once), an async handler ``(turn, args) -> str`` and whether it writes. The
turn binds specs to its :class:`~learning_machines.TurnContext`; adapters then give pydantic-ai
tools, plain sync or async callables (with real signatures, for frameworks that introspect),
and JSON schemas in the OpenAI or MCP shape. The model never chooses the user or the namespace:
those come from the turn, never from the arguments.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic import ValidationError as PydanticValidationError

from .._sync import run_sync
from .._turn_context import TurnContext
from .._turn_record import ToolLog
from ..exceptions import ConfigurationError, ValidationError

__all__ = ["BoundTools", "ToolSpec", "tool_from_function"]

A = TypeVar("A", bound=BaseModel)

Handler = Callable[[TurnContext, A], Awaitable[str]]


@dataclass(frozen=True, kw_only=True)
class ToolSpec(Generic[A]):
    """One tool: its name, description, arguments model, handler and whether it writes."""

    name: str
    """The tool's name as the model sees it (``update_user_profile``)."""
    description: str
    """What the tool does and when to call it, for the model."""
    args: type[A]
    """Pydantic model of the arguments (field descriptions are the argument docs)."""
    handler: Handler[A]
    """``await handler(turn, args)`` runs the tool for one turn and returns text for the model."""
    writes: bool = False
    """Whether the tool changes what is learned (read-only tools may be offered more widely)."""

    @functools.cached_property
    def parameters_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments (built once per spec)."""
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        schema.setdefault("properties", {})
        return schema

    async def acall(self, turn: TurnContext, arguments: Mapping[str, Any]) -> str:
        """Validate ``arguments`` and run the handler for ``turn``.

        Raises :class:`ValidationError` (with pydantic's account of what is wrong) for arguments
        that do not fit the schema.
        """
        try:
            args = self.args.model_validate(dict(arguments))
        except PydanticValidationError as exc:
            raise ValidationError(f"bad arguments for tool {self.name}: {exc}") from exc
        return await self.handler(turn, args)


_ARG_LINE = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description and the ``Args:`` entries of a Google-style docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    head: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1)
                params[current] = match.group(2).strip()
            elif stripped and current is not None and line.startswith(" " * 6):
                params[current] += " " + stripped
            elif stripped.endswith(":") and not line.startswith(" "):
                in_args = False
            continue
        head.append(line)
    return "\n".join(head).strip(), params


def tool_from_function(function: Callable[..., Any]) -> ToolSpec[BaseModel]:
    """A :class:`ToolSpec` for a plain typed function with a Google-style docstring.

    Custom stores return such functions from ``get_tools``; this is how they join the turn's
    typed tools. Sync functions run in a worker thread.
    """
    name = getattr(function, "__name__", None)
    if not name:
        raise ConfigurationError(f"tool {function!r} has no __name__; give it one")
    description, docs = _split_docstring(inspect.getdoc(function) or "")
    try:
        hints = get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    fields: dict[str, Any] = {}
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default, description=docs.get(param.name)))
    args: type[BaseModel] = create_model(
        f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    is_async = inspect.iscoroutinefunction(function)

    async def handler(turn: TurnContext, values: BaseModel) -> str:
        kwargs = {key: getattr(values, key) for key in type(values).model_fields}
        if is_async:
            result = await function(**kwargs)
        else:
            result = await asyncio.to_thread(function, **kwargs)
        return result if isinstance(result, str) else str(result)

    return ToolSpec(name=name, description=description or name, args=args, handler=handler)


_SIGNATURES: dict[type[BaseModel], inspect.Signature] = {}


def _signature(args: type[BaseModel]) -> inspect.Signature:
    """Parameters in field order (positional while the order allows it), typed, with defaults."""
    known = _SIGNATURES.get(args)
    if known is not None:
        return known
    params = []
    kind: inspect._ParameterKind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    seen_default = False
    for name, info in args.model_fields.items():
        default = (
            inspect.Parameter.empty
            if info.is_required()
            else info.get_default(call_default_factory=True)
        )
        if default is inspect.Parameter.empty and seen_default:
            kind = inspect.Parameter.KEYWORD_ONLY
        seen_default = seen_default or default is not inspect.Parameter.empty
        params.append(inspect.Parameter(name, kind, default=default, annotation=info.annotation))
    signature = _SIGNATURES[args] = inspect.Signature(params, return_annotation=str)
    return signature


def _arguments(
    spec: ToolSpec[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Positional and keyword arguments of a call, by parameter name."""
    if not args:
        return kwargs
    try:
        bound = _signature(spec.args).bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise ValidationError(f"bad arguments for tool {spec.name}: {exc}") from exc
    return dict(bound.arguments)


def _docstring(spec: ToolSpec[Any]) -> str:
    lines = [spec.description]
    args = [
        f"    {name}: {info.description}"
        for name, info in spec.args.model_fields.items()
        if info.description
    ]
    if args:
        lines += ["", "Args:", *args]
    return "\n".join(lines)


def _dress(function: Callable[..., Any], spec: ToolSpec[Any]) -> None:
    """Give a wrapper the tool's name, docstring and signature (frameworks introspect them)."""
    function.__name__ = spec.name
    function.__qualname__ = spec.name
    function.__doc__ = _docstring(spec)
    function.__signature__ = _signature(spec.args)  # type: ignore[attr-defined]
    function.__annotations__ = {
        **{name: info.annotation for name, info in spec.args.model_fields.items()},
        "return": str,
    }


class BoundTools(Sequence[ToolSpec[Any]]):
    """A turn's tools: specs bound to one :class:`TurnContext`, with an adapter per framework.

    Every call, through whichever adapter, is timed into :attr:`log` (the decision log reads it).
    """

    def __init__(self, specs: Sequence[ToolSpec[Any]], turn: TurnContext) -> None:
        names: dict[str, None] = {}
        for spec in specs:
            if spec.name in names:
                raise ConfigurationError(
                    f"two tools are named {spec.name!r}; tool names must be unique in a turn"
                )
            names[spec.name] = None
        self._specs = list(specs)
        self._by_name = {spec.name: spec for spec in self._specs}
        self.turn = turn
        self.log = ToolLog()
        """Every call of these tools in this turn, timed (app tools may be logged here too)."""

    async def _call(self, spec: ToolSpec[Any], arguments: Mapping[str, Any]) -> str:
        """The one path every adapter takes: validate, run for the turn, time and log."""
        return await self.log.timed(
            spec.name, arguments, lambda: spec.acall(self.turn, arguments), source="store"
        )

    def __getitem__(self, index: Any) -> Any:
        return self._specs[index]

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[ToolSpec[Any]]:
        return iter(self._specs)

    @property
    def names(self) -> list[str]:
        """Tool names, in order."""
        return [spec.name for spec in self._specs]

    async def acall(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Run tool ``name`` with ``arguments`` for this turn (what an MCP or HTTP server does)."""
        spec = self._by_name.get(name)
        if spec is None:
            raise ValidationError(f"no tool named {name!r} in this turn; tools: {self.names}")
        return await self._call(spec, arguments)

    def call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Sync :meth:`acall`."""
        return run_sync(self.acall(name, arguments))

    def async_callables(self) -> list[Callable[..., Awaitable[str]]]:
        """One ``async def`` per tool, taking the arguments as keywords."""
        out: list[Callable[..., Awaitable[str]]] = []
        for spec in self._specs:

            async def call(*args: Any, _spec: ToolSpec[Any] = spec, **kwargs: Any) -> str:
                return await self._call(_spec, _arguments(_spec, args, kwargs))

            _dress(call, spec)
            out.append(call)
        return out

    def sync_callables(self) -> list[Callable[..., str]]:
        """One plain function per tool that runs it to completion when called (sync code)."""
        out: list[Callable[..., str]] = []
        for spec in self._specs:

            def call(*args: Any, _spec: ToolSpec[Any] = spec, **kwargs: Any) -> str:
                return run_sync(self._call(_spec, _arguments(_spec, args, kwargs)))

            _dress(call, spec)
            out.append(call)
        return out

    def schemas(self, *, style: Literal["openai", "mcp"] = "openai") -> list[dict[str, Any]]:
        """JSON descriptions of the tools: OpenAI function tools, or MCP ``Tool`` objects."""
        if style == "mcp":
            return [
                {
                    "name": s.name,
                    "description": s.description,
                    "inputSchema": s.parameters_schema,
                    "annotations": {"readOnlyHint": not s.writes},
                }
                for s in self._specs
            ]
        return [
            {
                "type": "function",
                "function": {
                    "name": s.name,
                    "description": s.description,
                    "parameters": s.parameters_schema,
                },
            }
            for s in self._specs
        ]

    def pydantic_ai_tools(self) -> list[Any]:
        """The tools as pydantic-ai ``Tool`` objects (bad arguments make the model retry)."""
        from pydantic_ai import ModelRetry, Tool

        tools = []
        for spec in self._specs:

            async def call(*, _spec: ToolSpec[Any] = spec, **kwargs: Any) -> str:
                try:
                    return await self._call(_spec, kwargs)
                except ValidationError as exc:
                    raise ModelRetry(str(exc)) from exc

            tools.append(
                Tool.from_schema(
                    call,
                    name=spec.name,
                    description=spec.description,
                    json_schema=spec.parameters_schema,
                )
            )
        return tools
