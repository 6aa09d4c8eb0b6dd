"""``Record``: what ``typing.NamedTuple`` makes (immutable tuples with named fields), made
without its cost at import.

Why: a start imports about fifty record classes, and ``typing.NamedTuple`` spent ~4 ms of a
warm start building them (``collections.namedtuple`` compiles each class's ``__new__`` with
``eval``; typing checks every annotation), plus ~2 ms importing ``typing`` itself. Here a class
is built from its annotations' names alone, its ``__new__`` is one shared closure, and nothing
is compiled. For mypy, ``Record`` *is* ``typing.NamedTuple`` (the ``TYPE_CHECKING`` branch), so
the classes are checked exactly as before.

The behaviour kept (``tests/unit/test_records.py`` compares it with typing's): positional and
keyword construction with defaults and typing's ``TypeError``s, field properties, tuple
equality, hashing and unpacking, ``_fields``, ``_field_defaults``, ``_replace``, ``_asdict``,
``_make``, ``__match_args__``, ``repr``, no instance ``__dict__``, pickling and copying.
A class body may hold methods, properties and docstrings, as with typing's.

``TYPE_CHECKING`` is exported for the modules on the start path, so they need not import
``typing`` (mypy recognises an ``if TYPE_CHECKING:`` by the name).
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    from _collections import _tuplegetter  # the C descriptor collections.namedtuple uses

    class _RecordMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not namespace.get("_fields_base") and _Base in bases:
                _record_namespace(name, namespace)
            return super().__new__(mcls, name, bases, namespace)

    def _record_namespace(name, namespace):
        """Turn a record class's body into a tuple class's namespace: fields from the
        annotations (in order), their defaults, a descriptor per field, ``__new__``."""
        fields = tuple(namespace.get("__annotations__", {}))
        defaults = {}
        for field in fields:
            if field.startswith("_"):
                raise ValueError(f"Record field names cannot start with an underscore: {field!r}")
            if field in namespace:
                defaults[field] = namespace.pop(field)
            elif defaults:
                raise TypeError(f"Non-default namedtuple field {field} cannot follow default field"
                                f"{'s' if len(defaults) > 1 else ''} {', '.join(defaults)}")
        for index, field in enumerate(fields):
            namespace[field] = _tuplegetter(index, f"Alias for field number {index}")
        namespace.update(__slots__=(), _fields=fields, _field_defaults=defaults, __match_args__=fields,
                         __new__=_constructor(len(fields)))
        namespace.setdefault("__doc__", f"{name}({', '.join(fields)})")

    def _constructor(count):
        def __new__(cls, *args, **kwargs):
            if kwargs or len(args) != count:
                args = _bind(cls, args, kwargs)
            return tuple.__new__(cls, args)
        return __new__

    def _bind(cls, args, kwargs):
        """The values of a call with keywords or defaults, in field order; typing's errors."""
        fields = cls._fields
        if len(args) > len(fields):
            least = len(fields) - len(cls._field_defaults) + 1
            takes = f"from {least} to {len(fields) + 1}" if least <= len(fields) else str(least)
            raise TypeError(f"{cls.__name__}.__new__() takes {takes} positional arguments "
                            f"but {len(args) + 1} were given")
        values = list(args)
        missing = []
        for field in fields[len(args):]:
            if field in kwargs:
                values.append(kwargs.pop(field))
            elif field in cls._field_defaults:
                values.append(cls._field_defaults[field])
            else:
                missing.append(field)
        if kwargs:
            extra = next(iter(kwargs))
            word = "multiple values for argument" if extra in fields else "an unexpected keyword argument"
            raise TypeError(f"{cls.__name__}.__new__() got {word} '{extra}'")
        if missing:
            raise TypeError(f"{cls.__name__}.__new__() missing {len(missing)} required positional "
                            f"argument{'s' if len(missing) > 1 else ''}: "
                            + ", ".join(f"'{m}'" for m in missing))
        return values

    class _Base(tuple, metaclass=_RecordMeta):
        _fields_base = True
        __slots__ = ()

        @classmethod
        def _make(cls, iterable):
            values = tuple(iterable)
            if len(values) != len(cls._fields):
                raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(values)}")
            return tuple.__new__(cls, values)

        def _replace(self, **changes):
            values = [changes.pop(field, value) for field, value in zip(self._fields, self, strict=True)]
            if changes:
                raise ValueError(f"Got unexpected field names: {list(changes)!r}")
            return tuple.__new__(type(self), values)

        def _asdict(self):
            return dict(zip(self._fields, self, strict=True))

        def __repr__(self):
            return f"{type(self).__name__}({', '.join(f'{f}={v!r}' for f, v in zip(self._fields, self, strict=True))})"

        def __getnewargs__(self):
            return tuple(self)

    Record = _Base

__all__ = ["TYPE_CHECKING", "Record"]
