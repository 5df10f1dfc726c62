"""Immutable, typed, slotted records that cost almost nothing to define.

``dataclasses`` compiles three to six functions per class at import time; with thirty
event classes that alone would cost agent code more than 20 ms on every start. These
records declare the same way (annotations, keyword-only construction, ``field``), type
checkers see them as frozen dataclasses (PEP 681), and each class's ``__init__`` is
compiled the first time the class is instantiated.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

TYPE_CHECKING = False  # typing costs agent code milliseconds at import
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    _R = TypeVar("_R", bound="Record")
else:

    def dataclass_transform(**_: object) -> Callable[[type], type]:
        return lambda cls: cls


__all__ = ["Field", "Record", "field", "fields", "replace"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One declared field: its name, its annotation (a string) and how it gets a value."""

    __slots__ = ("annotation", "default", "factory", "init", "name")

    def __init__(
        self,
        *,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | None = None,
        init: bool = True,
    ) -> None:
        self.name = ""
        self.annotation = ""
        self.default = default
        self.factory = default_factory
        self.init = init

    @property
    def required(self) -> bool:
        return self.default is MISSING and self.factory is None

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.annotation!r})"


def field(
    *, default: Any = MISSING, default_factory: Callable[[], Any] | None = None, init: bool = True
) -> Any:
    """Declare a default factory or a field that is not an ``__init__`` argument."""
    return Field(default=default, default_factory=default_factory, init=init)


def _collect(bases: tuple[type, ...], namespace: dict[str, Any]) -> dict[str, Field]:
    collected: dict[str, Field] = {}
    for base in reversed(bases):
        for spec in getattr(base, "__record_fields__", ()):
            collected[spec.name] = spec
    for name, annotation in namespace.get("__annotations__", {}).items():
        value = namespace.pop(name, MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        spec.name, spec.annotation = name, str(annotation)
        collected[name] = spec
    return collected


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class _RecordMeta(type):
    # What every record class carries, set below when the class is made.
    __record_fields__: tuple[Field, ...]
    __record_names__: tuple[str, ...]
    __record_init__: tuple[tuple[str, Any, Callable[[], Any] | None], ...]
    __record_fixed__: tuple[tuple[str, Any], ...]

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _RecordMeta:
        inherited = {s.name for base in bases for s in getattr(base, "__record_fields__", ())}
        specs = _collect(bases, namespace)
        namespace["__slots__"] = tuple(n for n in specs if n not in inherited)
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        ordered = tuple(specs.values())
        cls.__record_fields__ = ordered
        cls.__record_names__ = tuple(s.name for s in ordered)
        cls.__record_init__ = tuple((s.name, s.default, s.factory) for s in ordered if s.init)
        cls.__record_fixed__ = tuple((s.name, s.default) for s in ordered if not s.init)
        if name != "Record":
            # Each class gets its own placeholder, so that compiling one class's __init__
            # never hands a subclass its parent's.
            cls.__init__ = _compile_on_first_use  # type: ignore[misc]
        return cls


_set = object.__setattr__


def _compile_init(cls: _RecordMeta) -> Callable[..., None]:
    """Compile ``cls.__init__`` with real keyword-only parameters.

    A generic ``**values`` loop costs microseconds per record; writers construct an event
    per message. Compiling at first use instead of at class creation keeps ``import``
    cheap: only the classes a program constructs are ever compiled.
    """
    scope: dict[str, Any] = {"_set": _set, "MISSING": MISSING}
    parameters, body = [], []
    for position, (name, default, factory) in enumerate(cls.__record_init__):
        if factory is not None:
            scope[f"_factory{position}"] = factory
            parameters.append(f"{name}=MISSING")
            body.append(
                f"_set(self, {name!r}, _factory{position}() if {name} is MISSING else {name})"
            )
        elif default is MISSING:
            parameters.append(name)
            body.append(f"_set(self, {name!r}, {name})")
        else:
            scope[f"_default{position}"] = default
            parameters.append(f"{name}=_default{position}")
            body.append(f"_set(self, {name!r}, {name})")
    for position, (name, default) in enumerate(cls.__record_fixed__):
        scope[f"_fixed{position}"] = default
        body.append(f"_set(self, {name!r}, _fixed{position})")
    source = f"def __init__(self, *, {', '.join(parameters)}):\n    " + "\n    ".join(body)
    exec(compile(source, f"<pidgin_events __init__ of {cls.__name__}>", "exec"), scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _compile_on_first_use(self: Record, **values: Any) -> None:
    cls = type(self)
    init = _compile_init(cls)
    cls.__init__ = init  # type: ignore[method-assign]
    init(self, **values)


class Record(metaclass=_RecordMeta):
    """Base of every record: keyword-only construction, immutable, compared by value."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use replace() for a copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in type(self).__record_names__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # records may hold mappings

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}"
            for name, value in zip(type(self).__record_names__, self._values(), strict=True)
            if name != "extra" or value
        )
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        names = type(self).__record_names__
        # Read-only mappings (MappingProxyType) cannot be pickled; they travel as dicts.
        values = {
            name: (dict(value), True) if isinstance(value, MappingProxyType) else (value, False)
            for name, value in zip(names, self._values(), strict=True)
        }
        return (_rebuild, (type(self), values))


def _rebuild(cls: type[_R], values: dict[str, tuple[Any, bool]]) -> _R:
    record = cls.__new__(cls)
    for name, (value, read_only) in values.items():
        _set(record, name, MappingProxyType(value) if read_only else value)
    return record


def fields(record: Record | type[Record]) -> tuple[Field, ...]:
    """The declared fields of a record or record class, in declaration order."""
    cls = record if isinstance(record, type) else type(record)
    return cls.__record_fields__


def replace(record: _R, **changes: Any) -> _R:
    """A copy of ``record`` with some fields changed."""
    values = {s.name: getattr(record, s.name) for s in fields(record) if s.init}
    values.update(changes)
    return type(record)(**values)
