"""Python binding for libadak: Mixture-of-Experts LLM inference on the CPU from GGUF files.

    import adak
    with adak.Model("model.gguf") as model, model.session(temperature=0) as session:
        for piece in session.generate("Once upon a time", max_tokens=32):
            print(piece, end="")

A :class:`Model` is immutable and may be shared by threads; a :class:`Session` is used by one
thread at a time. Every failure raises :class:`AdakError` with the library's message.

Routing (Mixture-of-Experts models): choose how many experts each token uses and how much
compute the session may spend::

    session.set_routing("top_p", p=0.6, k_max=4)
    session.set_budget(0.75)             # 75% of static Top-K's expert FLOPs
    ...
    print(session.stats.expert_fraction, session.stats.mean_k_per_layer)

    with model.identity_allocator() as alloc:   # or adak.load_allocator(model, "alloc.gguf")
        session.set_allocator(alloc)
    session.set_routing("adak")
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, TypeVar, Union

import numpy as np

from . import _lib

__all__ = ["AdakError", "InvalidArgumentError", "AdakTypeError", "AdakFileNotFoundError", "AdakIOError",
           "FormatError", "UnsupportedError", "AdakMemoryError", "ContextFullError", "CancelledError",
           "BufferTooSmallError", "Model", "Session", "Allocator", "RoutingStats", "load_allocator",
           "batch_decode", "carve", "train_allocator", "TrainProgress", "quantize", "QUANT_TYPES",
           "set_log_callback", "log_to_logging", "ROUTING_POLICIES", "LOG_ERROR", "LOG_WARN",
           "LOG_INFO", "LOG_DEBUG", "version", "version_number", "library_path"]

#: Routing policy names accepted by :meth:`Session.set_routing`.
ROUTING_POLICIES = tuple(_lib.ROUTING_POLICIES)
LOG_ERROR = _lib.LOG_ERROR
LOG_WARN = _lib.LOG_WARN
LOG_INFO = _lib.LOG_INFO
LOG_DEBUG = _lib.LOG_DEBUG

_C = _lib.load_library()

#: Path of the loaded shared library.
library_path: str = _C._name


def version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return _C.adak_version().decode()


def version_number() -> int:
    """The loaded library's version as MAJOR * 10000 + MINOR * 100 + PATCH."""
    return int(_C.adak_version_number())


__version__ = version()


class AdakError(Exception):
    """A libadak call failed. ``status`` is the negative status code, ``status_name`` its
    name ("invalid argument", "context full", ...), ``message`` the library's explanation.

    ``AdakError(status, message)`` makes the subclass for the status, each also a built-in
    exception: :class:`InvalidArgumentError` (ValueError), :class:`AdakFileNotFoundError`
    (FileNotFoundError), :class:`AdakIOError` (OSError), :class:`FormatError` (ValueError),
    :class:`UnsupportedError` (ValueError), :class:`AdakMemoryError` (MemoryError),
    :class:`ContextFullError`, :class:`CancelledError`, :class:`BufferTooSmallError`; a value
    of the wrong type raises :class:`AdakTypeError` (TypeError)."""

    def __new__(cls, status: int, message: str):
        if cls is AdakError:
            cls = _ERROR_CLASSES.get(status, AdakError)
            if status == _lib.ERR_IO and ("No such file" in message or "does not exist" in message):
                cls = AdakFileNotFoundError
        return super().__new__(cls, status, message)

    def __init__(self, status: int, message: str):
        self.status = status
        self.status_name = _C.adak_status_string(status).decode()
        self.message = message
        Exception.__init__(self, f"{message} [{self.status_name}]")

    def __str__(self) -> str:
        return f"{self.message} [{self.status_name}]"


class InvalidArgumentError(AdakError, ValueError):
    """A value out of range, an unknown key, a refused call (ADAK_ERR_INVALID_ARGUMENT)."""


class AdakTypeError(InvalidArgumentError, TypeError):
    """A value of the wrong type (a string or bool where a number belongs)."""

    def __new__(cls, message: str):
        return Exception.__new__(cls, message)

    def __init__(self, message: str):
        super().__init__(_lib.ERR_INVALID_ARGUMENT, message)


class AdakIOError(AdakError, OSError):
    """A file could not be opened, read or written (ADAK_ERR_IO)."""


class AdakFileNotFoundError(AdakIOError, FileNotFoundError):
    """The file does not exist."""


class FormatError(AdakError, ValueError):
    """A file is malformed (ADAK_ERR_FORMAT)."""


class UnsupportedError(AdakError, ValueError):
    """Well-formed but not supported: architecture, tensor type, chat template (ADAK_ERR_UNSUPPORTED)."""


class AdakMemoryError(AdakError, MemoryError):
    """An allocation failed or a size limit was exceeded (ADAK_ERR_OUT_OF_MEMORY)."""


class ContextFullError(AdakError, RuntimeError):
    """The session's context window has no room (ADAK_ERR_CONTEXT_FULL)."""


class CancelledError(AdakError, RuntimeError):
    """A callback stopped the operation (ADAK_ERR_CANCELLED)."""


class BufferTooSmallError(AdakError, RuntimeError):
    """A buffer was too small (ADAK_ERR_BUFFER_TOO_SMALL)."""


_ERROR_CLASSES = {
    _lib.ERR_INVALID_ARGUMENT: InvalidArgumentError, _lib.ERR_IO: AdakIOError,
    _lib.ERR_FORMAT: FormatError, _lib.ERR_UNSUPPORTED: UnsupportedError,
    _lib.ERR_OUT_OF_MEMORY: AdakMemoryError, _lib.ERR_CONTEXT_FULL: ContextFullError,
    _lib.ERR_CANCELLED: CancelledError, _lib.ERR_BUFFER_TOO_SMALL: BufferTooSmallError,
}


def _check(status: int) -> int:
    if status != _lib.OK:
        raise AdakError(status, _C.adak_last_error().decode("utf-8", "replace"))
    return status


def _as_double(v: float) -> float:
    """A setting the library keeps as a C float, as the shortest double that rounds to it
    (0.6, not 0.6000000238418579): what the caller set."""
    return float(str(np.float32(v)))


def _c_int(name: str, value, bits: int, unsigned: bool = False) -> int:
    """``value`` as a C integer of ``bits`` bits: a Python int (or an integral float), never a
    bool or a string, and in the C type's range (ctypes would silently wrap it). The library
    checks the meaning of the value; this only guards the conversion."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AdakTypeError(f"{name} needs an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"{name} needs an integer, got {value}")
    v = int(value)
    lo, hi = (0, 2**bits) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1))
    if not lo <= v < hi:
        raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"{name} {v} is out of range")
    return v


def _c_float(name: str, value) -> float:
    """``value`` as a C float/double: an int or a float, never a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AdakTypeError(f"{name} needs a number, got {value!r}")
    return float(value)


def _tokens_array(tokens: Sequence[int]):
    arr = (ctypes.c_int32 * len(tokens))()
    for i, t in enumerate(tokens):
        t = int(t)
        if not -(2**31) <= t < 2**31:
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"token {t} does not fit in int32")
        arr[i] = t
    return arr


def _sized(fn, handle: int, ctype) -> list:
    """Calls a sized-array getter of the C API twice: for the count, then for the values."""
    n = ctypes.c_size_t()
    status = fn(handle, None, 0, ctypes.byref(n))
    if status not in (_lib.OK, _lib.ERR_BUFFER_TOO_SMALL):
        _check(status)
    out = (ctype * max(n.value, 1))()
    _check(fn(handle, out, n.value, ctypes.byref(n)))
    return list(out[: n.value])


TextOrTokens = Union[str, bytes, Sequence[int]]


_OwnedT = TypeVar("_OwnedT", bound="_Owned")


class _Owned:
    """Owns one libadak handle: freed by :meth:`close`, on leaving a ``with`` block, or when
    the object is garbage-collected. Subclasses name the C function that frees it and what it
    is (for the error raised when it is used after close)."""

    _free_name = ""
    _what = ""
    _handle: Optional[int] = None

    def close(self) -> None:
        """Releases the handle. Idempotent."""
        if self._handle is not None:
            getattr(_C, self._free_name)(self._handle)
            self._handle = None

    def __enter__(self: _OwnedT) -> _OwnedT:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    @property
    def handle(self) -> int:
        if self._handle is None:
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"the {self._what} is closed")
        return self._handle


class Model(_Owned):
    """A GGUF model loaded by libadak. Use as a context manager or call :meth:`close`.

    :param path: the GGUF file.
    :param weight_type: "default", "f32", "q8_0" or "q4_0": the format that tensors of types
        the kernels don't compute with are converted to at load.
    :param progress: called with the fraction loaded (0 to 1, once per layer); return False
        to cancel the load (then :class:`AdakError` with status ``ERR_CANCELLED``). An
        exception raised by it also cancels the load and is re-raised.
    :param repack_q4_0: repack Q4_0, Q4_K, IQ4_NL and MXFP4 matrices into 8-row groups and
        IQ4_XS into 16-row groups for the SIMD kernels (the default; much faster); False keeps
        the file's row layout (for Q4_0, llama.cpp's non-repacked numerics; the others give the
        same results either way).
    """

    _free_name = "adak_model_free"
    _what = "model"
    _INT_KEYS = ("n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_ff", "n_expert",
                 "n_expert_used", "n_vocab", "n_ctx_train")

    def __init__(self, path: str, weight_type: str = "default",
                 progress: Optional[Callable[[float], Optional[bool]]] = None,
                 repack_q4_0: bool = True):
        self._handle: Optional[int] = None
        if weight_type not in _lib.WEIGHT_TYPES:
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown weight_type {weight_type!r}")
        params = _lib.ModelParams()
        _check(_C.adak_model_params_init(ctypes.byref(params), ctypes.sizeof(params)))
        params.weight_type = _lib.WEIGHT_TYPES[weight_type]
        params.repack_q4_0 = 1 if repack_q4_0 else 0
        raised: List[BaseException] = []
        if progress is not None:
            def on_progress(_user, fraction):
                try:
                    return 1 if progress(float(fraction)) is False else 0
                except BaseException as e:  # cancel, re-raise after the call returns
                    raised.append(e)
                    return 1
            callback = _lib.PROGRESS_CALLBACK(on_progress)  # alive for the whole call
            params.progress_callback = callback
        if not isinstance(path, (str, os.PathLike)):
            raise AdakTypeError(f"path needs a str or os.PathLike, got {path!r}")
        if not os.path.exists(path):
            raise AdakFileNotFoundError(_lib.ERR_IO, f"{path}: no such file")
        handle = ctypes.c_void_p()
        status = _C.adak_model_load(os.fsencode(path), ctypes.byref(params), ctypes.byref(handle))
        if raised:
            raise raised[0]
        _check(status)
        self._handle = handle.value
        self.path = str(path)

    # -- properties -------------------------------------------------------------------------
    def get_int(self, key: str) -> int:
        """An integer property by key (see adak_model_get_int in adak.h)."""
        value = ctypes.c_int64()
        _check(_C.adak_model_get_int(self.handle, key.encode(), ctypes.byref(value)))
        return value.value

    def get_string(self, key: str) -> Optional[str]:
        """A text property: "arch", "name" or "chat_template" (None when absent)."""
        handle = self.handle
        if key not in ("arch", "name", "chat_template"):
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown key {key!r}")
        raw = _C.adak_model_get_string(handle, key.encode())
        return None if raw is None else raw.decode("utf-8", "replace")

    @property
    def info(self) -> Dict[str, Union[int, str]]:
        """The model's architecture, name and sizes."""
        d: Dict[str, Union[int, str]] = {"arch": self.arch, "name": self.name}
        for k in self._INT_KEYS:
            d[k] = self.get_int(k)
        return d

    @property
    def arch(self) -> str:
        return self.get_string("arch") or ""

    @property
    def name(self) -> str:
        return self.get_string("name") or ""

    @property
    def chat_template(self) -> Optional[str]:
        return self.get_string("chat_template")

    @property
    def n_vocab(self) -> int:
        return self.get_int("n_vocab")

    @property
    def bos(self) -> Optional[int]:
        t = self.get_int("bos")
        return None if t < 0 else t

    @property
    def eos(self) -> Optional[int]:
        t = self.get_int("eos")
        return None if t < 0 else t

    def is_eog(self, token: int) -> bool:
        """Whether ``token`` ends generation."""
        return bool(_C.adak_model_is_eog(self.handle, int(token)))

    # -- tokenizer --------------------------------------------------------------------------
    def tokenize(self, text: Union[str, bytes], add_special: bool = True,
                 parse_special: bool = False) -> List[int]:
        """Token ids of ``text``; ``add_special`` adds BOS/EOS as the model asks,
        ``parse_special`` recognises special-token text such as "<|im_start|>"."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        flags = (_lib.TOKENIZE_ADD_SPECIAL if add_special else 0) | \
                (_lib.TOKENIZE_PARSE_SPECIAL if parse_special else 0)
        n = ctypes.c_size_t()
        status = _C.adak_model_tokenize(self.handle, data, len(data), flags, None, 0, ctypes.byref(n))
        if status not in (_lib.OK, _lib.ERR_BUFFER_TOO_SMALL):
            _check(status)
        out = (ctypes.c_int32 * max(n.value, 1))()
        _check(_C.adak_model_tokenize(self.handle, data, len(data), flags, out, n.value, ctypes.byref(n)))
        return list(out[: n.value])

    def token_to_piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (possibly an incomplete UTF-8 sequence)."""
        n = ctypes.c_size_t()
        flags = _lib.PIECE_SPECIAL if special else 0
        buf = ctypes.create_string_buffer(64)
        status = _C.adak_model_token_to_piece(self.handle, int(token), flags, buf, len(buf), ctypes.byref(n))
        if status == _lib.ERR_BUFFER_TOO_SMALL:
            buf = ctypes.create_string_buffer(n.value + 1)
            status = _C.adak_model_token_to_piece(self.handle, int(token), flags, buf, len(buf), ctypes.byref(n))
        _check(status)
        return buf.raw[: n.value]

    def detokenize(self, tokens: Sequence[int], remove_special: bool = False,
                   unparse_special: bool = False) -> str:
        """The text of ``tokens`` (invalid UTF-8 is replaced)."""
        arr = _tokens_array(tokens)
        flags = (_lib.DETOKENIZE_REMOVE_SPECIAL if remove_special else 0) | \
                (_lib.DETOKENIZE_UNPARSE_SPECIAL if unparse_special else 0)
        n = ctypes.c_size_t()
        status = _C.adak_model_detokenize(self.handle, arr, len(arr), flags, None, 0, ctypes.byref(n))
        if status not in (_lib.OK, _lib.ERR_BUFFER_TOO_SMALL):
            _check(status)
        buf = ctypes.create_string_buffer(n.value + 1)
        _check(_C.adak_model_detokenize(self.handle, arr, len(arr), flags, buf, len(buf), ctypes.byref(n)))
        return buf.raw[: n.value].decode("utf-8", "replace")

    @property
    def moe_layers(self) -> List[int]:
        """Indices of the MoE layers (empty for a dense model)."""
        return _sized(_C.adak_model_get_moe_layers, self.handle, ctypes.c_int32)

    def identity_allocator(self) -> "Allocator":
        """The allocator whose choice is the native K everywhere (see :class:`Allocator`)."""
        return Allocator.identity(self)

    def load_allocator(self, path: str) -> "Allocator":
        """Loads an allocator file made for this model (see :class:`Allocator`)."""
        return Allocator.load(self, path)

    def apply_chat_template(self, messages: Sequence[Dict[str, str]], add_assistant: bool = True) -> str:
        """Renders ``messages`` (dicts with "role" and "content"; roles system, user,
        assistant) with the model's chat template, as transformers' ``apply_chat_template``
        does, including the template's default system prompt. ``add_assistant`` ends the text
        with the opening of an assistant turn. Raises :class:`UnsupportedError` for a model
        without a template or with an unknown one."""
        arr = (_lib.ChatMessage * max(len(messages), 1))()
        keep = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise AdakTypeError(f"messages[{i}] needs str 'role' and 'content', got {m!r}")
            role, content = m["role"].encode(), m["content"].encode()
            if b"\0" in role or b"\0" in content:
                raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT, f"messages[{i}] contains a NUL character")
            keep += [role, content]
            arr[i].role, arr[i].content = role, content
        n = ctypes.c_size_t()
        status = _C.adak_model_apply_chat_template(self.handle, arr, len(messages), int(bool(add_assistant)), None, 0,
                                                   ctypes.byref(n))
        if status not in (_lib.OK, _lib.ERR_BUFFER_TOO_SMALL):
            _check(status)
        buf = ctypes.create_string_buffer(n.value + 1)
        _check(_C.adak_model_apply_chat_template(self.handle, arr, len(messages), int(bool(add_assistant)), buf,
                                                 n.value + 1, ctypes.byref(n)))
        return buf.raw[: n.value].decode("utf-8")

    def tokenize_chat(self, rendered: str) -> List[int]:
        """Tokens of a rendered chat: the template's special tokens parsed, BOS added only when
        the model wants one and the text does not already start with it."""
        ids = self.tokenize(rendered, add_special=False, parse_special=True)
        bos = self.bos
        if bos is not None and self.get_int("add_bos") and (not ids or ids[0] != bos):
            ids.insert(0, bos)
        return ids

    def session(self, **kwargs) -> "Session":
        """A new :class:`Session` on this model (same arguments as :class:`Session`)."""
        return Session(self, **kwargs)

    def __repr__(self) -> str:
        if self._handle is None:
            return "<adak.Model closed>"
        return f"<adak.Model {self.arch} {self.name!r} n_vocab={self.n_vocab}>"


class Session(_Owned):
    """A decoding session (context, logits, sampler) on a :class:`Model`.

    :param n_ctx: context window in tokens (0: min(model's, 4096)).
    :param n_threads: compute threads (0: all cores).
    :param n_batch: prompt tokens per forward pass (0: 512).
    :param seed: sampler seed.
    :param kv_type: "f32" (the default, llama.cpp-exact with an f32 cache) or "f16" (half the
        memory and attention traffic; llama.cpp's default cache type).
    :param sampling: initial sampling settings: temperature, top_k, top_p, min_p,
        repeat_penalty, repeat_last_n (see :meth:`set`).
    """

    _free_name = "adak_session_free"
    _what = "session"
    #: Sampling settings (fields of adak_sampling_params) and read-only properties.
    _SAMPLING_FLOATS = ("temperature", "top_p", "min_p", "repeat_penalty")
    _SAMPLING_INTS = ("top_k", "repeat_last_n", "seed")
    _PROPERTIES = ("position", "n_ctx", "n_threads", "n_batch", "logit_rows")

    def __init__(self, model: Model, n_ctx: int = 0, n_threads: int = 0, n_batch: int = 0,
                 seed: Optional[int] = None, kv_type: str = "f32", **sampling: Union[int, float]):
        self._handle: Optional[int] = None
        self.model = model
        if kv_type not in _lib.KV_TYPES:
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown kv_type {kv_type!r}")
        params = _lib.SessionParams()
        _check(_C.adak_session_params_init(ctypes.byref(params), ctypes.sizeof(params)))
        for name, value in (("n_ctx", n_ctx), ("n_threads", n_threads), ("n_batch", n_batch)):
            setattr(params, name, _c_int(name, value, 32))
        if seed is not None:
            params.seed = _c_int("seed", seed, 64, unsigned=True)
        params.kv_type = _lib.KV_TYPES[kv_type]
        handle = ctypes.c_void_p()
        _check(_C.adak_session_create(model.handle, ctypes.byref(params), ctypes.byref(handle)))
        self._handle = handle.value
        try:
            if sampling:
                self.set_sampling(**sampling)
        except Exception:
            self.close()
            raise

    # -- settings ---------------------------------------------------------------------------
    @property
    def sampling(self) -> Dict[str, Union[int, float]]:
        """The sampling settings: temperature, top_k, top_p, min_p, repeat_penalty,
        repeat_last_n, seed."""
        raw = _lib.SamplingParams()
        raw.size = ctypes.sizeof(raw)
        _check(_C.adak_session_get_sampling(self.handle, ctypes.byref(raw)))
        return {name: (_as_double(getattr(raw, name)) if name in self._SAMPLING_FLOATS else getattr(raw, name))
                for name, _ in raw._fields_ if name != "size"}

    def set_sampling(self, **settings: Union[int, float]) -> None:
        """Changes sampling settings (keyword names as :attr:`sampling`); the others keep their
        values. All or nothing: the library validates the whole set at once."""
        raw = _lib.SamplingParams()
        raw.size = ctypes.sizeof(raw)
        _check(_C.adak_session_get_sampling(self.handle, ctypes.byref(raw)))
        for key, value in settings.items():
            if key in self._SAMPLING_FLOATS:
                setattr(raw, key, _c_float(key, value))
            elif key in self._SAMPLING_INTS:
                setattr(raw, key, _c_int(key, value, 64 if key == "seed" else 32, unsigned=key == "seed"))
            else:
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown sampling setting {key!r}")
        _check(_C.adak_session_set_sampling(self.handle, ctypes.byref(raw)))

    _ROUTING_KEYS = ("policy", "k", "p", "beta", "tau", "price", "k_min", "k_max", "budget_mode")

    def set(self, key: str, value: Union[int, float, str, None]) -> None:
        """Changes one setting: a sampling key (see :meth:`set_sampling`), a routing key
        ("policy", "k", "p", "beta", "tau", "price", "k_min", "k_max", "budget_mode", also as "routing.k"...;
        see :meth:`set_routing`) or "flops_budget" (a fraction, or None to remove it)."""
        if not isinstance(key, str):
            raise AdakTypeError(f"key needs a str, got {key!r}")
        name = key[len("routing."):] if key.startswith("routing.") else key
        if key in ("routing",):
            name = "policy"
        if key in self._SAMPLING_FLOATS or key in self._SAMPLING_INTS:
            self.set_sampling(**{key: value})
        elif name in self._ROUTING_KEYS:
            self.set_routing(**{name: value}) if name != "policy" else self.set_routing(value)
        elif key in ("flops_budget", "budget"):
            self.set_budget(value)
        else:
            raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT, f"unknown or read-only key {key!r}")

    def get(self, key: str) -> Union[int, float, str, None]:
        """Reads any setting :meth:`set` takes, or a property (position, n_ctx, n_threads,
        n_batch, logit_rows). Floats come back as the value set (the C double of it)."""
        if not isinstance(key, str):
            raise AdakTypeError(f"key needs a str, got {key!r}")
        name = "policy" if key == "routing" else (key[len("routing."):] if key.startswith("routing.") else key)
        if key in self._SAMPLING_FLOATS or key in self._SAMPLING_INTS:
            return self.sampling[key]
        if name in self._ROUTING_KEYS:
            return self.routing[name]
        if key in ("flops_budget", "budget"):
            return self.budget
        i = ctypes.c_int64()
        _check(_C.adak_session_get_int(self.handle, key.encode(), ctypes.byref(i)))
        return i.value

    @property
    def position(self) -> int:
        """Tokens in the context."""
        p = _C.adak_session_position(self.handle)
        if p < 0:
            _check(int(p))
        return int(p)

    @property
    def n_ctx(self) -> int:
        return int(self.get("n_ctx"))

    # -- routing ----------------------------------------------------------------------------
    _ROUTING_NAMES = {v: k for k, v in _lib.ROUTING_POLICIES.items()}
    _BUDGET_MODE_NAMES = {v: k for k, v in _lib.BUDGET_MODES.items()}

    def _routing_params(self) -> "_lib.RoutingParams":
        raw = _lib.RoutingParams()
        raw.size = ctypes.sizeof(raw)
        _check(_C.adak_session_get_routing(self.handle, ctypes.byref(raw)))
        return raw

    @property
    def routing(self) -> Dict[str, Union[str, int, float]]:
        """The routing settings: ``policy``, the knobs p, beta, tau, price, k, k_min, k_max
        (k and k_max 0 mean the defaults, see :meth:`set_routing`) and ``budget_mode``."""
        raw = self._routing_params()
        d: Dict[str, Union[str, int, float]] = {"policy": self._ROUTING_NAMES[raw.policy],
                                                "budget_mode": self._BUDGET_MODE_NAMES[raw.budget_mode]}
        for name in ("p", "beta", "tau", "price"):
            d[name] = _as_double(getattr(raw, name))
        for name in ("k", "k_min", "k_max"):
            d[name] = getattr(raw, name)
        return d

    def set_routing(self, policy: Optional[str] = None, *, k: Optional[int] = None,
                    p: Optional[float] = None, beta: Optional[float] = None,
                    tau: Optional[float] = None, k_min: Optional[int] = None,
                    k_max: Optional[int] = None, price: Optional[float] = None,
                    budget_mode: Optional[str] = None) -> None:
        """Chooses how many experts each token uses at each MoE layer.

        :param policy: "topk" (static, ``k`` experts; the default), "adak" (the allocator set
            with :meth:`set_allocator` decides), "top_p" (smallest set of experts whose router
            probabilities reach ``p``), "skip" (drop experts weighing < ``beta`` x the top one),
            "entropy" (k from the router's entropy, scaled by ``tau``); None keeps the policy.
        :param k: k of "topk" (0: the model's native K).
        :param k_min: lower bound on k for every policy.
        :param k_max: upper bound on k (0: the policy's default).
        :param price: "adak" without a budget: a fixed price per expert, the same in every layer.
        :param budget_mode: how :meth:`set_budget`'s budget spreads over the MoE layers: "global"
            (one price for the whole model; the policy's per-layer shares survive; the default)
            or "per_layer" (every layer at budget x K).

        Knobs not given keep their values. All or nothing: the library validates the whole
        set at once (adak_session_set_routing); when a value is refused the session keeps its
        previous settings and :class:`AdakError` says why.
        """
        raw = self._routing_params()
        if policy is not None:
            if policy not in _lib.ROUTING_POLICIES:
                known = ", ".join(repr(n) for n in _lib.ROUTING_POLICIES)
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown routing policy {policy!r} (known: {known})")
            raw.policy = _lib.ROUTING_POLICIES[policy]
        if budget_mode is not None:
            if budget_mode not in _lib.BUDGET_MODES:
                known = ", ".join(repr(n) for n in _lib.BUDGET_MODES)
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown budget mode {budget_mode!r} (known: {known})")
            raw.budget_mode = _lib.BUDGET_MODES[budget_mode]
        for name, value in (("k", k), ("k_min", k_min), ("k_max", k_max)):
            if value is not None:
                setattr(raw, name, _c_int(name, value, 32))
        for name, value in (("p", p), ("beta", beta), ("tau", tau), ("price", price)):
            if value is not None:
                setattr(raw, name, _c_float(name, value))
        _check(_C.adak_session_set_routing(self.handle, ctypes.byref(raw)))

    @property
    def budget(self) -> Optional[float]:
        """The expert-FLOPs budget as a fraction of static Top-K, or None."""
        v = self._routing_params().flops_budget
        return _as_double(v) if v > 0 else None

    def set_budget(self, fraction: Optional[float]) -> None:
        """Limits the routed experts to ``fraction`` x the expert FLOPs of static Top-K with
        the native K (0 < fraction <= 16; 1.0 = as much as Top-K). The policy's knob follows the
        running cost, so the average over the tokens decoded meets the target; a prompt batch is
        measured first and meets it too. One knob serves the whole model unless
        ``set_routing(budget_mode="per_layer")``. None removes the budget."""
        if fraction is None:
            _check(_C.adak_session_clear_flops_budget(self.handle))
        elif isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise AdakTypeError(f"fraction needs a number or None, got {fraction!r}")
        else:
            _check(_C.adak_session_set_flops_budget(self.handle, _c_float("fraction", fraction)))

    def set_allocator(self, allocator: Optional["Allocator"]) -> None:
        """Uses ``allocator`` for the "adak" policy (the session keeps its own reference, so
        the allocator may be closed afterwards). None removes it (refused while the policy is
        "adak")."""
        _check(_C.adak_session_set_allocator(self.handle, None if allocator is None else allocator.handle))

    @property
    def stats(self) -> "RoutingStats":
        """What routing spent since the session was created or :meth:`reset_stats`."""
        raw = _lib.Stats()
        raw.size = ctypes.sizeof(raw)
        _check(_C.adak_session_get_stats(self.handle, ctypes.byref(raw)))
        return RoutingStats(
            tokens=raw.tokens, mean_k=raw.mean_k, k_native=raw.k_native, n_expert=raw.n_expert,
            expert_flops=raw.expert_flops, expert_flops_topk=raw.expert_flops_topk,
            expert_fraction=raw.expert_fraction, total_flops=raw.total_flops,
            total_flops_topk=raw.total_flops_topk, total_fraction=raw.total_fraction,
            mean_k_per_layer=_sized(_C.adak_session_get_mean_k_per_layer, self.handle, ctypes.c_double),
            k_histogram=_sized(_C.adak_session_get_k_histogram, self.handle, ctypes.c_int64),
            moe_layers=self.model.moe_layers if self.model._handle is not None else [],
        )

    def reset_stats(self) -> None:
        """Starts new routing statistics (settings and the budget controller are kept)."""
        _check(_C.adak_session_reset_stats(self.handle))

    # -- decoding ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Empties the context and restarts the sampler."""
        _check(_C.adak_session_reset(self.handle))

    def _prompt_tokens(self, prompt: Optional[TextOrTokens], special: bool = False) -> List[int]:
        if prompt is None:
            return []
        if isinstance(prompt, (str, bytes)):
            return self.model.tokenize(prompt, add_special=self.position == 0, parse_special=special)
        if isinstance(prompt, (list, tuple, np.ndarray)):
            return [_c_int("token", t, 32) for t in prompt]
        raise AdakTypeError(f"prompt needs text, bytes or token ids, got {prompt!r}")

    def evaluate(self, tokens: Sequence[int], all_logits: bool = False) -> None:
        """Appends ``tokens`` to the context and runs the model over them."""
        arr = _tokens_array(tokens)
        _check(_C.adak_session_evaluate(self.handle, arr, len(arr),
                                        _lib.EVALUATE_ALL_LOGITS if all_logits else 0))

    @property
    def logits(self) -> np.ndarray:
        """The last evaluation's logits as a read-only float32 array of shape (rows, n_vocab),
        a view of the session's memory (no copy): valid until the session next changes
        (evaluate, generate, reset, close). Copy it (``.copy()``) to keep it longer."""
        rows, vocab = ctypes.c_size_t(), ctypes.c_size_t()
        ptr = _C.adak_session_logits(self.handle, ctypes.byref(rows), ctypes.byref(vocab))
        if not ptr:
            _check(_lib.ERR_INVALID_ARGUMENT)
        arr = np.ctypeslib.as_array(ptr, shape=(rows.value, vocab.value))
        arr.flags.writeable = False
        return arr

    def sample(self) -> int:
        """Samples a token from the last row of logits (not evaluated)."""
        t = ctypes.c_int32()
        _check(_C.adak_session_sample(self.handle, ctypes.byref(t)))
        return t.value

    def generate_tokens(self, prompt: Optional[TextOrTokens] = None, max_tokens: int = 128, *,
                        stop: Optional[Sequence[Union[str, bytes]]] = None,
                        special: bool = False) -> Iterator[tuple]:
        """Like :meth:`generate` but yields ``(token, piece_bytes)`` pairs (with ``stop``, a
        piece may be empty while its text is held back, and a last pair may carry held text
        with the end token's id)."""
        max_tokens = _c_int("max_tokens", max_tokens, 32)
        if max_tokens < 0:
            raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT, f"max_tokens {max_tokens} is negative")
        tokens = _tokens_array(self._prompt_tokens(prompt, special))
        self._set_stop_strings(stop or [])
        # The library runs the whole generation (stop strings, stop reason) in one call on a
        # worker thread; its callback hands pieces over a small queue, so this stays lazy.
        items: "queue.Queue" = queue.Queue(maxsize=8)
        cancel = threading.Event()
        done = object()
        outcome: Dict[str, object] = {}

        def on_token(_user, token, piece, length):
            item = (token, ctypes.string_at(piece, length))
            while not cancel.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return 0
                except queue.Full:
                    continue
            return 1

        callback = _lib.TOKEN_CALLBACK(on_token)

        def work():
            try:
                n = ctypes.c_size_t()
                status = _C.adak_session_generate(self.handle, tokens, len(tokens), max_tokens, callback, None,
                                                  ctypes.byref(n))
                if status != _lib.OK:  # the message is the worker thread's last error
                    outcome["error"] = AdakError(status, _C.adak_last_error().decode("utf-8", "replace"))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                outcome["error"] = e
            finally:
                while True:
                    try:
                        items.put(done, timeout=0.05)
                        break
                    except queue.Full:
                        if cancel.is_set():
                            _drain(items)

        worker = threading.Thread(target=work, name="adak-generate", daemon=True)
        worker.start()
        try:
            while True:
                item = items.get()
                if item is done:
                    break
                yield item
        finally:
            cancel.set()
            _drain(items)
            worker.join()
            self._set_stop_strings([])
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]

    def generate(self, prompt: Optional[TextOrTokens] = None, max_tokens: int = 128, *,
                 stop: Optional[Sequence[Union[str, bytes]]] = None, special: bool = False) -> Iterator[str]:
        """Evaluates ``prompt`` (text, bytes or token ids; None continues) and yields the
        generated text piece by piece, until an end-of-generation token, ``max_tokens``
        tokens, a full context or one of the ``stop`` strings (whose text is not yielded);
        :attr:`stop_reason` then says which. Text prompts are tokenized with BOS/EOS when the
        session is empty; special-token text ("<|im_end|>") in them stays plain text unless
        ``special`` is True."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for _token, piece in self.generate_tokens(prompt, max_tokens, stop=stop, special=special):
            text = decoder.decode(piece)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def _set_texts(self, fn, texts: Sequence[Union[str, bytes]], what: str) -> None:
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        encoded = []
        for s in texts:
            if not isinstance(s, (str, bytes)):
                raise AdakTypeError(f"{what} need str or bytes, got {s!r}")
            encoded.append(s.encode() if isinstance(s, str) else s)
        strings = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
        lengths = (ctypes.c_size_t * max(len(encoded), 1))(*[len(e) for e in encoded])
        _check(fn(self.handle, strings, lengths, len(encoded)))

    def _set_stop_strings(self, stop: Sequence[Union[str, bytes]]) -> None:
        self._set_texts(_C.adak_session_set_stop_strings, stop, "stop strings")

    def set_choices(self, choices: Optional[Sequence[Union[str, bytes]]]) -> None:
        """Constrains the next answers to exactly one of ``choices`` (the library's
        adak_session_set_choices); None or [] removes the constraint."""
        self._set_texts(_C.adak_session_set_choices, choices or [], "choices")

    def set_regex(self, pattern: Optional[Union[str, bytes]]) -> None:
        """Constrains the next answers to texts that match ``pattern`` as a whole (the
        library's adak_session_set_regex, whose syntax is in adak.h: literals, classes, ., *,
        +, ?, {m,n}, |, groups); it replaces :meth:`set_choices`. None removes it. A malformed
        pattern raises :class:`InvalidArgumentError`, an unsupported feature (look-around,
        back references, ...) :class:`UnsupportedError`; both are ValueErrors."""
        if pattern is None:
            _check(_C.adak_session_set_regex(self.handle, None))
            return
        if not isinstance(pattern, (str, bytes)):
            raise AdakTypeError(f"pattern needs str, bytes or None, got {pattern!r}")
        data = pattern.encode() if isinstance(pattern, str) else pattern
        if b"\0" in data:
            raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT, "pattern contains a NUL character (write \\x00 in the pattern instead)")
        _check(_C.adak_session_set_regex(self.handle, data))

    @property
    def stop_reason(self) -> Optional[str]:
        """Why the last generation stopped: "end_of_generation", "max_tokens", "context_full",
        "callback" (the consumer stopped iterating) or "stop_string"; None before any."""
        r = ctypes.c_int32()
        if _C.adak_session_stop_reason(self.handle, ctypes.byref(r)) != _lib.OK:
            return None
        return _lib.STOP_REASONS.get(r.value)

    # -- chat -------------------------------------------------------------------------------
    def chat(self, messages: Sequence[Dict[str, str]], max_tokens: int = 256, *, stream: bool = False,
             stop: Optional[Sequence[Union[str, bytes]]] = None) -> Union[str, Iterator[str]]:
        """Answers the conversation ``messages`` (rendered with the model's chat template).
        The context is reused: only the tokens after the longest prefix shared with what the
        session already holds are evaluated (:attr:`last_chat_evaluated` tells how many), so
        a multi-turn chat re-evaluates just the new turn. Returns the answer, or with
        ``stream`` an iterator over its pieces."""
        ids = self.model.tokenize_chat(self.model.apply_chat_template(messages, add_assistant=True))
        held = self.tokens
        common = 0
        for a, b in zip(held, ids):
            if a != b:
                break
            common += 1
        common = min(common, len(ids) - 1)  # at least one token evaluated: fresh logits
        self.truncate(common)
        self.last_chat_evaluated = len(ids) - common
        pieces = self.generate(ids[common:], max_tokens, stop=stop)
        return pieces if stream else "".join(pieces)

    # -- state ------------------------------------------------------------------------------
    @property
    def tokens(self) -> List[int]:
        """The tokens in the context."""
        return _sized(_C.adak_session_get_tokens, self.handle, ctypes.c_int32)

    def truncate(self, position: int) -> None:
        """Rewinds the context to its first ``position`` tokens (see adak_session_truncate)."""
        _check(_C.adak_session_truncate(self.handle, _c_int("position", position, 64)))

    def save_state(self, path: Optional[Union[str, os.PathLike]] = None) -> Optional[bytes]:
        """The session's state (context, KV cache, logits, sampler; not the settings) as
        bytes, or written to ``path``."""
        if path is not None:
            _check(_C.adak_session_save_state_file(self.handle, os.fsencode(path)))
            return None
        n = ctypes.c_size_t()
        status = _C.adak_session_save_state(self.handle, None, 0, ctypes.byref(n))
        if status not in (_lib.OK, _lib.ERR_BUFFER_TOO_SMALL):
            _check(status)
        buf = ctypes.create_string_buffer(max(n.value, 1))
        _check(_C.adak_session_save_state(self.handle, buf, n.value, ctypes.byref(n)))
        return buf.raw[: n.value]

    def load_state(self, state: Union[bytes, bytearray, str, os.PathLike]) -> None:
        """Restores a state from :meth:`save_state` (bytes, or a path to a file)."""
        if isinstance(state, (bytes, bytearray)):
            buf = ctypes.create_string_buffer(bytes(state), len(state))
            _check(_C.adak_session_load_state(self.handle, buf, len(state)))
        elif isinstance(state, (str, os.PathLike)):
            if not os.path.exists(state):
                raise AdakFileNotFoundError(_lib.ERR_IO, f"{state}: no such file")
            _check(_C.adak_session_load_state_file(self.handle, os.fsencode(state)))
        else:
            raise AdakTypeError(f"state needs bytes or a path, got {type(state).__name__}")

    def copy(self) -> "Session":
        """An independent copy (context, settings, sampler; not the logits processor)."""
        handle = ctypes.c_void_p()
        _check(_C.adak_session_copy(self.handle, ctypes.byref(handle)))
        other = Session.__new__(Session)
        other._handle = handle.value
        other.model = self.model
        return other

    def set_logit_bias(self, bias: Dict[int, float]) -> None:
        """Adds ``bias[token]`` to that token's logit before every sample (-inf bans it);
        replaces the previous bias; an empty dict removes it."""
        toks = [_c_int("token", t, 32) for t in bias]
        vals = [_c_float("bias", v) for v in bias.values()]
        _check(_C.adak_session_set_logit_bias(self.handle, (ctypes.c_int32 * max(len(toks), 1))(*toks),
                                              (ctypes.c_float * max(len(vals), 1))(*vals), len(toks)))

    def set_logits_processor(self, fn: Optional[Callable[[np.ndarray], None]]) -> None:
        """Calls ``fn(logits)`` before every sample with the last row of logits as a writable
        float32 array of n_vocab (a copy the sampler then uses): set the tokens to forbid to
        -inf (constrained output, see :mod:`adak.structured`). None removes it. An exception
        raised by ``fn`` bans every token, so the generation stops with an error."""
        if fn is None:
            self._logits_callback = None
            _check(_C.adak_session_set_logits_callback(self.handle, _lib.LOGITS_CALLBACK(), None))
            return

        def on_logits(_user, ptr, n):
            row = np.ctypeslib.as_array(ptr, shape=(n,))
            try:
                fn(row)
            except BaseException:  # noqa: BLE001 - cannot raise through C: ban everything
                row[:] = -np.inf

        self._logits_callback = _lib.LOGITS_CALLBACK(on_logits)  # kept alive with the session
        _check(_C.adak_session_set_logits_callback(self.handle, self._logits_callback, None))

    def __repr__(self) -> str:
        if self._handle is None:
            return "<adak.Session closed>"
        return f"<adak.Session position={self.position}/{self.n_ctx}>"


def batch_decode(sessions: Sequence["Session"], tokens: Sequence[Sequence[int]]) -> None:
    """Appends ``tokens[i]`` to ``sessions[i]`` for every i in ONE forward pass
    (``adak_batch_decode``): the sessions (of one model) share each weight read; each keeps its
    cache, sampling and routing settings, and afterwards holds the logits of its last token,
    equal to those of evaluating the same tokens alone. All tokens together must fit the first
    session's ``n_batch``; a decode step passes one token per session, a newcomer a prompt chunk."""
    if len(sessions) != len(tokens):
        raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT,
                                   f"{len(sessions)} sessions but {len(tokens)} token lists")
    handles = (ctypes.c_void_p * max(len(sessions), 1))(*[s.handle for s in sessions])
    counts = (ctypes.c_size_t * max(len(tokens), 1))(*[len(t) for t in tokens])
    flat = _tokens_array([t for ts in tokens for t in ts])
    _check(_C.adak_batch_decode(handles, len(sessions), flat, counts))


def _drain(q: "queue.Queue") -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


@dataclass(frozen=True)
class RoutingStats:
    """Routing statistics of a session (see :attr:`Session.stats`). FLOPs count a multiply-add
    as 2; the ``*_topk`` values are what static Top-K with the native K would have spent on the
    same tokens; "total" adds attention, routers, shared experts and the LM head."""

    tokens: int
    mean_k: float
    k_native: int
    n_expert: int
    expert_flops: float
    expert_flops_topk: float
    expert_fraction: float
    total_flops: float
    total_flops_topk: float
    total_fraction: float
    #: mean k of each MoE layer, in the order of :attr:`moe_layers`
    mean_k_per_layer: List[float]
    #: ``k_histogram[i]``: (token, MoE layer) pairs that used i + 1 experts
    k_histogram: List[int]
    #: indices of the model's MoE layers (empty when the model was closed)
    moe_layers: List[int]


class Allocator(_Owned):
    """An Ada-K allocator: per MoE layer, a linear map from the router's input to one logit
    per k; the "adak" routing policy uses k = argmax(logit_k - price * k). Made for one model
    and refused by any other. Immutable; may be shared by sessions. Create it with
    :meth:`load` / :func:`load_allocator` or :meth:`identity`; use as a context manager or call
    :meth:`close` (sessions using it keep their own reference)."""

    _free_name = "adak_allocator_free"
    _what = "allocator"

    def __init__(self, handle: int):
        self._handle = handle

    @classmethod
    def load(cls, model: Model, path: str) -> "Allocator":
        """Loads an allocator file (GGUF) made for ``model``."""
        handle = ctypes.c_void_p()
        _check(_C.adak_allocator_load(model.handle, str(path).encode(), ctypes.byref(handle)))
        return cls(handle.value)

    @classmethod
    def identity(cls, model: Model) -> "Allocator":
        """The allocator whose argmax is ``model``'s native K at every layer: "adak" with it
        reproduces static Top-K, and with a budget moves k around K."""
        handle = ctypes.c_void_p()
        _check(_C.adak_allocator_identity(model.handle, ctypes.byref(handle)))
        return cls(handle.value)

    def save(self, path: str) -> None:
        """Writes the allocator to ``path`` (GGUF)."""
        _check(_C.adak_allocator_save(self.handle, str(path).encode()))

    def __repr__(self) -> str:
        return "<adak.Allocator closed>" if self._handle is None else "<adak.Allocator>"


def load_allocator(model: Model, path: str) -> Allocator:
    """Loads an allocator file made for ``model`` (same as :meth:`Allocator.load`)."""
    return Allocator.load(model, path)


# -- carving and allocator training (since 0.3) ---------------------------------------------
_CARVE_INT_KEYS = ("experts", "top_k", "seed", "calib_tokens", "window", "kmeans_iterations", "threads")
_CARVE_FLOAT_KEYS = ("shared_fraction", "ridge")
_CARVE_STRING_KEYS = ("calib_text", "calib_path", "plan_in", "plan_out", "expert_type", "layers")
_TRAIN_INT_KEYS = ("rollout_tokens", "window", "epochs", "minibatch", "seed", "k_min", "k_max", "updates",
                   "total_tokens", "threads", "checkpoint_every", "sample_window")
_TRAIN_FLOAT_KEYS = ("lambda", "clip", "lr", "entropy_coef", "max_grad_norm", "init_sharpness", "future_discount",
                     "lambda_memory")
_TRAIN_STRING_KEYS = ("baseline", "cost_credit", "train_budgets")


def _apply_settings(handle: int, settings: Dict[str, object], ints, floats, strings, prefix: str) -> None:
    """Sends keyword settings to a keyed parameter object of the C API (None: the default)."""
    set_int = getattr(_C, f"adak_{prefix}_params_set_int")
    set_float = getattr(_C, f"adak_{prefix}_params_set_float")
    set_string = getattr(_C, f"adak_{prefix}_params_set_string")
    for key, value in settings.items():
        if value is None:
            continue
        if key in ints:
            if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"{key} must be an integer, not {value!r}")
            _check(set_int(handle, key.encode(), value))
        elif key in floats:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"{key} must be a number, not {value!r}")
            _check(set_float(handle, key.encode(), float(value)))
        elif key in strings:
            if key == "layers" and not isinstance(value, str):
                value = ",".join(str(int(v)) for v in value)  # a sequence of layer indices
            if key == "train_budgets" and not isinstance(value, str):
                value = ",".join(repr(float(v)) for v in value)  # a sequence of budgets
            if not isinstance(value, str):
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"{key} must be a string, not {value!r}")
            if "\0" in value:
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"{key} contains a NUL character")
            _check(set_string(handle, key.encode(), value.encode()))
        else:
            known = ", ".join(ints + floats + strings)
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, f"unknown setting {key!r} (known: {known})")


def carve(dense: str, out: str, *, experts: Optional[int] = None, top_k: Optional[int] = None,
          shared_fraction: Optional[float] = None, seed: Optional[int] = None,
          calib_text: Optional[str] = None, calib_path: Optional[str] = None,
          calib_tokens: Optional[int] = None, plan_in: Optional[str] = None,
          plan_out: Optional[str] = None, expert_type: Optional[str] = None,
          layers: Optional[Union[str, Sequence[int]]] = None, threads: Optional[int] = None,
          progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
          **settings) -> str:
    """Carves the dense GGUF model ``dense`` (llama, qwen2, qwen3) into a mixture of experts
    written to ``out`` and returns ``out``. Settings left at None take the library's defaults
    (16 experts, top-k 8, shared fraction 0.25, 4096 calibration tokens, q8_0 experts, every
    layer); further keys of adak_carve_params (``window``, ``kmeans_iterations``, ``ridge``)
    go in ``settings``. A calibration text (``calib_text`` or the file ``calib_path``) or a plan
    (``plan_in``) is required; ``plan_out`` also writes the plan. ``layers`` is a list of layer
    indices or a string such as "0,3,5".

    :param progress: called as ``progress(stage, done, total)`` with stage "calibrating",
        "clustering" or "writing"; return False to cancel (then :class:`AdakError` with
        status ``ERR_CANCELLED``, and ``out`` is not written). An exception raised by it also
        cancels and is re-raised.
    """
    settings = dict(settings, experts=experts, top_k=top_k, shared_fraction=shared_fraction, seed=seed,
                    calib_text=calib_text, calib_path=calib_path, calib_tokens=calib_tokens,
                    plan_in=plan_in, plan_out=plan_out, expert_type=expert_type, layers=layers,
                    threads=threads)
    handle = ctypes.c_void_p()
    _check(_C.adak_carve_params_create(ctypes.byref(handle)))
    try:
        _apply_settings(handle.value, settings, _CARVE_INT_KEYS, _CARVE_FLOAT_KEYS, _CARVE_STRING_KEYS, "carve")
        raised: List[BaseException] = []
        callback = None
        if progress is not None:
            def on_progress(_user, stage, done, total):
                try:
                    name = _lib.CARVE_STAGES[stage] if 0 <= stage < len(_lib.CARVE_STAGES) else str(stage)
                    return 1 if progress(name, int(done), int(total)) is False else 0
                except BaseException as e:  # cancel, re-raise after the call returns
                    raised.append(e)
                    return 1
            callback = _lib.CARVE_PROGRESS_CALLBACK(on_progress)  # alive for the whole call
        status = _C.adak_carve(str(dense).encode(), str(out).encode(), handle.value,
                               callback or _lib.CARVE_PROGRESS_CALLBACK(), None)
        if raised:
            raise raised[0]
        _check(status)
    finally:
        _C.adak_carve_params_free(handle.value)
    return str(out)


#: File types accepted by :func:`quantize` (llama.cpp's names).
QUANT_TYPES = tuple(_lib.FTYPES)


def quantize(src: str, out: str, type: str, *, threads: int = 0, allow_requantize: bool = True) -> str:
    """Quantizes the GGUF model ``src`` to the file type ``type`` (e.g. "Q4_K_M", see
    :data:`QUANT_TYPES`) into ``out`` and returns ``out``. The bytes are those llama.cpp's
    quantizer writes for the same input and type (no importance matrix). ``threads`` <= 0 uses
    every core; the output does not depend on it. With ``allow_requantize`` False, tensors that
    are already quantized raise :class:`AdakError` (``ERR_UNSUPPORTED``) instead of being
    dequantized and quantized again."""
    ftype = _lib.FTYPES.get(str(type).upper())
    if ftype is None:
        raise AdakError(_lib.ERR_INVALID_ARGUMENT,
                        f"unknown quantization type {type!r} (known: {', '.join(_lib.FTYPES)})")
    params = _lib.QuantizeParams()
    _check(_C.adak_quantize_params_init(ctypes.byref(params), ctypes.sizeof(params)))
    params.ftype = ftype
    params.n_threads = int(threads)
    params.allow_requantize = 1 if allow_requantize else 0
    _check(_C.adak_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params)))
    return str(out)


@dataclass
class TrainProgress:
    """The report :func:`train_allocator` passes to its progress callback after each update."""

    update: int
    updates: int
    tokens: int
    mean_reward: float
    mean_log_prob: float
    cost_fraction: float
    greedy_log_prob: float
    greedy_cost_fraction: float
    approx_kl: float
    clip_fraction: float
    entropy: float
    grad_norm: float
    tokens_per_second: float
    elapsed_seconds: float
    eta_seconds: float
    mean_k_per_layer: List[float]

    _INTS = ("update", "updates", "tokens")
    _FLOATS = ("mean_reward", "mean_log_prob", "cost_fraction", "greedy_log_prob", "greedy_cost_fraction",
               "approx_kl", "clip_fraction", "entropy", "grad_norm", "tokens_per_second",
               "elapsed_seconds", "eta_seconds")

    @classmethod
    def _read(cls, handle: int) -> "TrainProgress":
        values: Dict[str, object] = {}
        for key in cls._INTS:
            i = ctypes.c_int64()
            _check(_C.adak_train_progress_get_int(handle, key.encode(), ctypes.byref(i)))
            values[key] = int(i.value)
        for key in cls._FLOATS:
            d = ctypes.c_double()
            _check(_C.adak_train_progress_get_float(handle, key.encode(), ctypes.byref(d)))
            values[key] = float(d.value)
        values["mean_k_per_layer"] = [float(v) for v in _sized(_C.adak_train_progress_get_mean_k_per_layer,
                                                                handle, ctypes.c_double)]
        return cls(**values)


def train_allocator(model: Model, out: str, *, text: Optional[str] = None,
                    tokens: Optional[Sequence[int]] = None, lambda_: Optional[float] = None,
                    resume: bool = False,
                    progress: Optional[Callable[[TrainProgress], Optional[bool]]] = None,
                    load: bool = True, **settings) -> Union[Allocator, str]:
    """Trains an Ada-K allocator for the MoE ``model`` with PPO on ``text`` (or ``tokens``),
    writing it to ``out`` (and its optimiser state to ``out + ".optim"``). Returns the trained
    :class:`Allocator` (or the path ``out`` when ``load`` is False).

    ``lambda_`` is the price of compute in the reward (default 0.3). Other settings are the
    keys of adak_train_params: ``rollout_tokens``, ``window``, ``epochs``, ``minibatch``,
    ``seed``, ``k_min``, ``k_max``, ``updates``, ``total_tokens``, ``threads``,
    ``checkpoint_every``, ``sample_window``, ``clip``, ``lr``, ``entropy_coef``, ``max_grad_norm``,
    ``init_sharpness``, ``future_discount``, ``lambda_memory``, ``baseline`` ("greedy" or "mean"),
    ``cost_credit`` ("token" or "layer"), ``train_budgets`` (a sequence of expert FLOPs budgets, or
    their comma list: training under the global price; then ``lambda_=0``). ``resume=True``
    continues from the checkpoint at ``out``.

    :param progress: called with a :class:`TrainProgress` after every update; return False to
        stop (then :class:`AdakError` with status ``ERR_CANCELLED``; ``out`` holds the last
        completed update and ``resume=True`` continues). An exception raised by it also stops
        training and is re-raised.
    """
    if (text is None) == (tokens is None):
        raise AdakError(_lib.ERR_INVALID_ARGUMENT, "give exactly one of text and tokens")
    if lambda_ is not None:
        if "lambda" in settings:
            raise AdakError(_lib.ERR_INVALID_ARGUMENT, "give lambda_ or lambda, not both")
        settings["lambda"] = lambda_
    handle = ctypes.c_void_p()
    _check(_C.adak_train_params_create(ctypes.byref(handle)))
    try:
        _apply_settings(handle.value, settings, _TRAIN_INT_KEYS, _TRAIN_FLOAT_KEYS, _TRAIN_STRING_KEYS, "train")
        text_arg = None
        arr = None
        if text is not None:
            if "\0" in text:
                raise AdakError(_lib.ERR_INVALID_ARGUMENT, "text contains a NUL character")
            text_arg = text.encode("utf-8")
        else:
            arr = _tokens_array(list(tokens))
        raised: List[BaseException] = []
        callback = None
        if progress is not None:
            def on_progress(_user, report):
                try:
                    return 1 if progress(TrainProgress._read(report)) is False else 0
                except BaseException as e:  # stop, re-raise after the call returns
                    raised.append(e)
                    return 1
            callback = _lib.TRAIN_PROGRESS_CALLBACK(on_progress)  # alive for the whole call
        status = _C.adak_train_allocator(model.handle, text_arg, arr, 0 if arr is None else len(arr),
                                         handle.value, str(out).encode(), 1 if resume else 0,
                                         callback or _lib.TRAIN_PROGRESS_CALLBACK(), None)
        if raised:
            raise raised[0]
        _check(status)
    finally:
        _C.adak_train_params_free(handle.value)
    return Allocator.load(model, out) if load else str(out)


# -- logging --------------------------------------------------------------------------------
_log_lock = threading.Lock()
_log_callback = None  # the ctypes function pointer the library holds; kept alive here
_retired_log_callbacks: list = []  # replaced ones: a message in flight on another thread may still call them


def set_log_callback(callback: Optional[Callable[[int, str], None]]) -> None:
    """Receives libadak's log messages as ``callback(level, message)`` (levels LOG_ERROR,
    LOG_WARN, LOG_INFO, LOG_DEBUG), from whichever thread produced them; None stops logging.
    Exceptions raised by the callback are swallowed (a C library cannot propagate them)."""
    global _log_callback
    with _log_lock:
        if callback is None:
            _C.adak_set_log_callback(_lib.LOG_CALLBACK(), None)  # NULL
            # the previous pointer stays referenced: a message in flight may still use it
            return

        def on_log(_user, level, message):
            try:
                callback(int(level), message.decode("utf-8", "replace") if message else "")
            except BaseException:  # noqa: BLE001 - never let an exception unwind through C
                pass

        new = _lib.LOG_CALLBACK(on_log)
        _C.adak_set_log_callback(new, None)
        if _log_callback is not None:
            _retired_log_callbacks.append(_log_callback)
        _log_callback = new


_LOGGING_LEVELS = {LOG_ERROR: logging.ERROR, LOG_WARN: logging.WARNING, LOG_INFO: logging.INFO,
                   LOG_DEBUG: logging.DEBUG}


def log_to_logging(logger: Optional[logging.Logger] = None) -> None:
    """Sends libadak's log messages to a :mod:`logging` logger (default: ``logging.getLogger("adak")``)."""
    target = logger or logging.getLogger("adak")
    set_log_callback(lambda level, message: target.log(_LOGGING_LEVELS.get(level, logging.DEBUG), message))
