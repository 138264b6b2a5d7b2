"""The implementation behind a pipe: it lives in a worker process, the checks in the parent.

The parent holds :class:`Remote` stand-ins for the implementation's objects (its factory, the
models it makes, their methods); calling one sends a request to the worker, which runs the call
and answers with its result as plain data.  The parent never imports the implementation and
never unpickles anything but plain data from the worker (:func:`loads` allows no class at all),
so nothing the implementation does -- an ``ndarray`` subclass whose ufuncs lie, a patched
``conformance.contract.compare``, an exception whose ``str()`` raises -- reaches a verdict: only its
numbers do.

What crosses back (:func:`encode` in the worker, :func:`decode` in the parent):

* an ``ndarray`` (a subclass too) of a bool, integer, float or complex dtype: its bytes, decoded
  as a new base-class ``np.ndarray`` (``type(x) is np.ndarray``) of the same dtype and shape;
* ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, numpy scalars, and tuples, lists
  and dicts of these: the same values (a named tuple such as ``PackedSequence`` as a tuple);
* anything else (a model, a bound method, a generator, a tensor): a :class:`Remote`, which
  knows only its type's name, so a check can say "returned generator";
* an exception: raised again in the parent as a class of the same name (deriving from the
  nearest builtin exception type, so ``except RuntimeError`` still works; a ``BaseException``
  that is not an ``Exception`` -- ``KeyboardInterrupt``, ``SystemExit`` -- derives from
  ``Exception``: it is the implementation's failure, not the run's), with its message as far as
  ``str()`` could give one.
"""

from __future__ import annotations

import builtins
import io
import pickle
import re
from collections.abc import Callable
from typing import Any

import numpy as np

FACTORY, CELL = 1, 2  # the permanent handles of the worker's factory and cell
_DTYPE = re.compile(r"^[<>|=][biufc][0-9]{1,2}$")


class WorkerLost(BaseException):
    """The worker running a request died, hung past its deadline, or the run was interrupted:
    ``what`` says which ("the worker process exited with code 0 ...")."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class ProtocolError(Exception):
    """The worker answered with something that is not plain data."""


# -- the worker's side ---------------------------------------------------------------------


def safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException as inner:
        return f"<str() raised {_type_name(inner)}>"


def _type_name(obj: object) -> str:
    try:
        return str(type(obj).__name__)
    except BaseException:
        return "<unnamed type>"


def _builtin_base(exc: BaseException) -> str:
    """The nearest builtin exception class of ``exc`` (``RuntimeError`` for a subclass of it)."""
    for cls in type(exc).__mro__:
        if getattr(cls, "__module__", None) == "builtins" and isinstance(
            getattr(builtins, getattr(cls, "__name__", ""), None), type
        ):
            return str(cls.__name__)
    return "BaseException"


def raised(exc: BaseException) -> tuple[str, str, str, str]:
    """An exception of the implementation, as a reply: its type name, nearest builtin base, message."""
    return ("raise", _type_name(exc), _builtin_base(exc), safe_str(exc))


class Objects:
    """The worker's table of objects the parent holds a :class:`Remote` for."""

    def __init__(self) -> None:
        self.by_handle: dict[int, Any] = {}
        self.handle_of: dict[int, int] = {}  # id(obj) -> handle
        self.next = 3  # 1 and 2 are the factory and the cell

    def add(self, obj: Any, handle: int | None = None) -> int:
        if handle is None:
            known = self.handle_of.get(id(obj))
            if known is not None and self.by_handle.get(known) is obj:
                return known
            handle, self.next = self.next, self.next + 1
        self.by_handle[handle] = obj
        self.handle_of[id(obj)] = handle
        return handle

    def release(self) -> None:
        """Forget everything but the factory and the cell (at the end of a job)."""
        self.by_handle = {h: o for h, o in self.by_handle.items() if h in (FACTORY, CELL)}
        self.handle_of = {id(o): h for h, o in self.by_handle.items()}


def encode(value: Any, objects: Objects, depth: int = 0) -> Any:
    """``value`` as plain data (see the module docstring)."""
    if depth > 20:
        raise ValueError("the result nests more than 20 levels deep")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is complex:
        return ("c", value.real, value.imag)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc" and value.dtype.fields is None:
        base = np.ndarray.view(value, np.ndarray)  # the subclass's own methods are never asked
        return ("a", base.dtype.str, tuple(int(n) for n in base.shape), base.tobytes(order="C"))
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return ("g", value.dtype.str, np.array(value).tobytes())
    if isinstance(value, tuple):
        return ("t", _type_name(value), [encode(v, objects, depth + 1) for v in value])
    if kind is list:
        return ("l", [encode(v, objects, depth + 1) for v in value])
    if isinstance(value, dict):
        return (
            "d",
            [(encode(k, objects, depth + 1), encode(v, objects, depth + 1)) for k, v in value.items()],
        )
    name = _type_name(value)
    if isinstance(value, np.ndarray):
        name = f"numpy.ndarray of dtype {value.dtype}"
    return ("r", objects.add(value), name, callable(value))


class Ref:
    """A :class:`Remote` inside a request's arguments: the worker's object of that handle."""

    def __init__(self, handle: int) -> None:
        self.handle = handle


class SentArray:
    """An array argument as the worker must see it: its values, its memory layout (C order,
    Fortran order, or strided) and whether it is writeable (the ``edge_layout`` row)."""

    def __init__(self, array: np.ndarray) -> None:
        self.data = np.ascontiguousarray(array)
        self.writeable = bool(array.flags.writeable)
        self.strides: tuple[int, ...] | None = None
        self.order = "C" if array.flags.c_contiguous else "F" if array.flags.f_contiguous else "strided"
        if self.order == "strided" and all(s >= 0 for s in array.strides):
            self.strides = tuple(array.strides)

    def rebuild(self) -> np.ndarray:
        data = np.array(self.data, order="F" if self.order == "F" else "C")  # its own, writeable memory
        if self.strides is not None and data.size:
            span = sum((n - 1) * s for n, s in zip(data.shape, self.strides, strict=True)) + data.itemsize
            strided = np.ndarray(data.shape, data.dtype, np.zeros(span, np.uint8), 0, self.strides)
            strided[...] = data
            data = strided
        data.flags.writeable = self.writeable
        return data


def _rebuilt(value: Any, items: list[Any]) -> Any:
    if hasattr(value, "_fields"):  # a named tuple (PackedSequence): its fields, as they are
        return type(value)._make(items)
    return type(value)(items)


def resolve(value: Any, objects: Objects, arrays: list[np.ndarray]) -> Any:
    """Arguments from the parent with every :class:`Ref` replaced by its object and every
    :class:`SentArray` by its array (also listed in ``arrays``, in order)."""
    if isinstance(value, Ref):
        return objects.by_handle[value.handle]
    if isinstance(value, SentArray):
        arrays.append(value.rebuild())
        return arrays[-1]
    if isinstance(value, (tuple, list)):
        return _rebuilt(value, [resolve(v, objects, arrays) for v in value])
    if type(value) is dict:
        return {k: resolve(v, objects, arrays) for k, v in value.items()}
    return value


def _changed(arrays: list[np.ndarray], before: list[np.ndarray], objects: Objects) -> list[Any]:
    """The argument arrays the call wrote into, by position, as plain data."""
    changed = []
    for index, (now, then) in enumerate(zip(arrays, before, strict=True)):
        if now.shape != then.shape or not np.array_equal(now, then, equal_nan=now.dtype.kind in "fc"):
            changed.append((index, encode(now, objects)))
    return changed


def answer(request: tuple[Any, ...], objects: Objects, trace: Callable[[Any, str], Any]) -> Any:
    """Run one request in the worker; the reply (plain data), with the argument arrays the
    call modified in place (the parent's copies get the same change)."""
    op, handle = request[0], request[1]
    try:
        target = objects.by_handle[handle]
        if op == "getattr":
            try:
                value = getattr(target, request[2])
            except AttributeError:
                value = trace(target, request[2])  # lstm_ref's own trace, where asked for it
            return ("ok", encode(value, objects), [])
        arrays: list[np.ndarray] = []
        args, kwargs = resolve(request[2], objects, arrays), resolve(request[3], objects, arrays)
        before = [a.copy() for a in arrays]
        result = encode(target(*args, **kwargs), objects)
        return ("ok", result, _changed(arrays, before, objects))
    except BaseException as exc:  # whatever it raised is the implementation's answer
        return raised(exc)


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


# -- the parent's side ----------------------------------------------------------------------


class _PlainData(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise ProtocolError(f"the worker sent an object of class {module}.{name}, not plain data")

    def persistent_load(self, pid: Any) -> Any:
        raise ProtocolError("the worker sent a persistent reference, not plain data")


def loads(blob: bytes) -> Any:
    """Unpickle builtins only: no class is ever looked up, so no code of the worker's runs here."""
    return _PlainData(io.BytesIO(blob)).load()


_classes: dict[tuple[str, str], type[BaseException]] = {}


def exception(name: str, base: str, message: str) -> BaseException:
    """The implementation's exception, as the parent raises it (see the module docstring)."""
    builtin = getattr(builtins, base, None)
    if not (isinstance(builtin, type) and issubclass(builtin, Exception)):
        builtin = Exception
    if name == base and builtin.__name__ == name:
        return builtin(message)
    cls = _classes.get((name, builtin.__name__))
    if cls is None:
        cls = _classes[(name, builtin.__name__)] = type(name, (builtin,), {"__module__": "implementation"})
    return cls(message)


class Remote:
    """An object of the implementation, in the worker; calls and attribute reads go there."""

    __slots__ = ("_cache", "_callable", "_handle", "_link", "type_name")

    def __init__(self, link: Any, handle: int, type_name: str, is_callable: bool = True) -> None:
        self._link, self._handle, self.type_name, self._callable = link, handle, type_name, is_callable
        self._cache: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._callable:
            raise TypeError(f"{self.type_name!r} object is not callable")
        sent: list[np.ndarray] = []
        message = ("call", self._handle, _refs(args, sent), _refs(kwargs, sent))
        return self._link.request(message, sent)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Remote.__slots__:
            raise AttributeError(name)
        if name in self._cache:
            return self._cache[name]
        value = self._link.request(("getattr", self._handle, name))
        if isinstance(value, Remote) and value._callable:
            self._cache[name] = value  # a method: the same object on every read
        return value

    def __repr__(self) -> str:
        return f"<{self.type_name} in the worker>"


def _refs(value: Any, sent: list[np.ndarray]) -> Any:
    """Arguments as sent: a Remote as its handle, an array as a :class:`SentArray` (also listed
    in ``sent``, in order, to receive what the call writes into it)."""
    if isinstance(value, Remote):
        return Ref(value._handle)
    if isinstance(value, np.ndarray):
        sent.append(value)
        return SentArray(value)
    if isinstance(value, (tuple, list)):
        return _rebuilt(value, [_refs(v, sent) for v in value])
    if type(value) is dict:
        return {k: _refs(v, sent) for k, v in value.items()}
    return value


def _array(dtype: Any, shape: Any, data: Any) -> np.ndarray:
    if not (isinstance(dtype, str) and _DTYPE.match(dtype)):
        raise ProtocolError(f"the worker sent an array of dtype {dtype!r}")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError(f"the worker sent an array of shape {shape!r}")
    kind = np.dtype(dtype)
    if not isinstance(data, bytes) or len(data) != int(np.prod(shape, dtype=np.int64)) * kind.itemsize:
        raise ProtocolError("the worker sent an array whose bytes do not match its shape")
    return np.frombuffer(data, dtype=kind).reshape(shape).copy()


def decode(value: Any, link: Any) -> Any:
    """Plain data from :func:`encode` as the parent's objects."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is not tuple or not value or not isinstance(value[0], str):
        raise ProtocolError(f"the worker sent {type(value).__name__}, not a tagged value")
    tag, rest = value[0], value[1:]
    if tag == "a" and len(rest) == 3:
        return _array(*rest)
    if tag == "g" and len(rest) == 2:
        return _array(rest[0], (1,), rest[1])[0]
    if tag == "c" and len(rest) == 2 and all(type(v) is float for v in rest):
        return complex(rest[0], rest[1])
    if tag == "t" and len(rest) == 2 and type(rest[1]) is list:
        return tuple(decode(v, link) for v in rest[1])
    if tag == "l" and len(rest) == 1 and type(rest[0]) is list:
        return [decode(v, link) for v in rest[0]]
    if tag == "d" and len(rest) == 1 and type(rest[0]) is list:
        return {decode(k, link): decode(v, link) for k, v in rest[0]}
    if tag == "r" and len(rest) == 3 and type(rest[0]) is int and isinstance(rest[1], str):
        return Remote(link, rest[0], rest[1], bool(rest[2]))
    raise ProtocolError(f"the worker sent an unknown value tagged {tag!r}")


def reply_value(reply: Any, link: Any, sent: list[np.ndarray] | None = None) -> Any:
    """The value of a reply, or the implementation's exception raised here. The arrays the call
    wrote into (``sent``, the request's) get what it wrote, as they would in one process."""
    if type(reply) is tuple and len(reply) == 3 and reply[0] == "ok" and type(reply[2]) is list:
        for index, encoded in reply[2]:
            if not (sent and type(index) is int and 0 <= index < len(sent)):
                raise ProtocolError("the worker reported a change to an argument it was not sent")
            written, target = decode(encoded, link), sent[index]
            if isinstance(written, np.ndarray) and written.shape == target.shape and target.flags.writeable:
                np.copyto(target, written, casting="unsafe")
        return decode(reply[1], link)
    if (
        type(reply) is tuple
        and len(reply) == 4
        and reply[0] == "raise"
        and all(isinstance(v, str) for v in reply)
    ):
        raise exception(reply[1], reply[2], reply[3])
    raise ProtocolError("the worker sent a reply that is not one")


def type_name(value: object) -> str:
    """The name of a value's type, a :class:`Remote`'s included (for messages)."""
    return value.type_name if isinstance(value, Remote) else type(value).__name__
