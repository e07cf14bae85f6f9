"""Locating and loading libadak.so, and the ctypes prototypes of its C API (include/adak.h)."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path
from typing import List, Optional

#: The major version of the C API this binding is written for.
API_MAJOR = 0

OK = 0
ERR_INVALID_ARGUMENT = -1
ERR_IO = -2
ERR_FORMAT = -3
ERR_UNSUPPORTED = -4
ERR_OUT_OF_MEMORY = -5
ERR_CONTEXT_FULL = -6
ERR_CANCELLED = -7
ERR_INTERNAL = -8
ERR_BUFFER_TOO_SMALL = -9

TOKENIZE_ADD_SPECIAL = 1
TOKENIZE_PARSE_SPECIAL = 2
PIECE_SPECIAL = 1
DETOKENIZE_REMOVE_SPECIAL = 1
DETOKENIZE_UNPARSE_SPECIAL = 2
EVALUATE_ALL_LOGITS = 1

WEIGHT_TYPES = {"default": 0, "f32": 1, "q8_0": 2, "q4_0": 3}


ROUTING_POLICIES = {"topk": 0, "adak": 1, "top_p": 2, "skip": 3, "entropy": 4}
BUDGET_MODES = {"global": 0, "per_layer": 1}

LOG_ERROR = 1
LOG_WARN = 2
LOG_INFO = 3
LOG_DEBUG = 4

#: enum adak_kv_type (since 0.4).
KV_TYPES = {"f32": 0, "f16": 1}

#: enum adak_ftype (since 0.4): llama.cpp's llama_ftype numbers, for adak_model_quantize.
FTYPES = {"F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K_S": 11,
          "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
          "IQ4_NL": 25, "IQ4_XS": 30, "MXFP4_MOE": 38}


class QuantizeParams(ctypes.Structure):
    """adak_quantize_params (since 0.5; size-tagged, initialise through adak_quantize_params_init)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("ftype", ctypes.c_int32),
        ("n_threads", ctypes.c_int32),
        ("allow_requantize", ctypes.c_int32),
    ]


PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_float)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class ModelParams(ctypes.Structure):
    """adak_model_params (size-tagged; initialise through adak_model_params_init)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("weight_type", ctypes.c_int32),
        ("progress_callback", PROGRESS_CALLBACK),
        ("progress_user_data", ctypes.c_void_p),
        ("repack_q4_0", ctypes.c_int32),  # since 0.4
    ]


class Stats(ctypes.Structure):
    """adak_stats (size-tagged: set ``size`` before adak_session_get_stats)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("n_moe_layers", ctypes.c_int32),
        ("n_expert", ctypes.c_int32),
        ("k_native", ctypes.c_int32),
        ("tokens", ctypes.c_int64),
        ("mean_k", ctypes.c_double),
        ("expert_flops", ctypes.c_double),
        ("expert_flops_topk", ctypes.c_double),
        ("expert_fraction", ctypes.c_double),
        ("total_flops", ctypes.c_double),
        ("total_flops_topk", ctypes.c_double),
        ("total_fraction", ctypes.c_double),
    ]


class SessionParams(ctypes.Structure):
    """adak_session_params (size-tagged; initialise through adak_session_params_init)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("n_ctx", ctypes.c_int32),
        ("n_threads", ctypes.c_int32),
        ("n_batch", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("kv_type", ctypes.c_int32),  # since 0.4
    ]


class SamplingParams(ctypes.Structure):
    """adak_sampling_params (since 0.5; size-tagged, initialise through adak_sampling_params_init)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("top_p", ctypes.c_float),
        ("min_p", ctypes.c_float),
        ("repeat_penalty", ctypes.c_float),
        ("repeat_last_n", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
    ]


class RoutingParams(ctypes.Structure):
    """adak_routing_params (since 0.5, budget_mode since 0.6; size-tagged, initialise through
    adak_routing_params_init)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("policy", ctypes.c_int32),
        ("k", ctypes.c_int32),
        ("k_min", ctypes.c_int32),
        ("k_max", ctypes.c_int32),
        ("p", ctypes.c_float),
        ("beta", ctypes.c_float),
        ("tau", ctypes.c_float),
        ("price", ctypes.c_float),
        ("flops_budget", ctypes.c_double),
        ("budget_mode", ctypes.c_int32),
    ]


class ChatMessage(ctypes.Structure):
    """adak_chat_message (since 0.5)."""

    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


#: enum adak_stop_reason (since 0.5), by value.
STOP_REASONS = {0: "end_of_generation", 1: "max_tokens", 2: "context_full", 3: "callback", 4: "stop_string"}

#: adak_logits_callback(user_data, logits, n_vocab) (since 0.5).
LOGITS_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t)

TOKEN_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t
)

#: adak_carve_progress_callback(user_data, stage, done, total) and
#: adak_train_progress_callback(user_data, progress) (since 0.3).
CARVE_PROGRESS_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
TRAIN_PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
CARVE_STAGES = ("calibrating", "clustering", "writing")

_P = ctypes.c_void_p
_I32 = ctypes.c_int32
_SIZE = ctypes.c_size_t
_STR = ctypes.c_char_p

_PROTOTYPES = {
    "adak_version": (_STR, []),
    "adak_version_number": (_I32, []),
    "adak_status_string": (_STR, [ctypes.c_int]),
    "adak_last_error": (_STR, []),
    "adak_model_params_init": (ctypes.c_int, [ctypes.POINTER(ModelParams), _SIZE]),
    "adak_model_load": (ctypes.c_int, [_STR, ctypes.POINTER(ModelParams), ctypes.POINTER(_P)]),
    "adak_model_free": (None, [_P]),
    "adak_model_get_int": (ctypes.c_int, [_P, _STR, ctypes.POINTER(ctypes.c_int64)]),
    "adak_model_get_string": (_STR, [_P, _STR]),
    "adak_model_n_vocab": (_I32, [_P]),
    "adak_model_bos": (_I32, [_P]),
    "adak_model_eos": (_I32, [_P]),
    "adak_model_is_eog": (ctypes.c_int, [_P, _I32]),
    "adak_model_tokenize": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, _SIZE, ctypes.c_uint32, ctypes.POINTER(_I32), _SIZE, ctypes.POINTER(_SIZE)],
    ),
    "adak_model_token_to_piece": (
        ctypes.c_int,
        [_P, _I32, ctypes.c_uint32, ctypes.c_char_p, _SIZE, ctypes.POINTER(_SIZE)],
    ),
    "adak_model_detokenize": (
        ctypes.c_int,
        [_P, ctypes.POINTER(_I32), _SIZE, ctypes.c_uint32, ctypes.c_char_p, _SIZE, ctypes.POINTER(_SIZE)],
    ),
    "adak_session_params_init": (ctypes.c_int, [ctypes.POINTER(SessionParams), _SIZE]),
    "adak_session_create": (ctypes.c_int, [_P, ctypes.POINTER(SessionParams), ctypes.POINTER(_P)]),
    "adak_session_free": (None, [_P]),
    "adak_session_reset": (ctypes.c_int, [_P]),
    "adak_session_position": (ctypes.c_int64, [_P]),
    "adak_session_set_float": (ctypes.c_int, [_P, _STR, ctypes.c_double]),
    "adak_session_get_float": (ctypes.c_int, [_P, _STR, ctypes.POINTER(ctypes.c_double)]),
    "adak_session_set_int": (ctypes.c_int, [_P, _STR, ctypes.c_int64]),
    "adak_session_get_int": (ctypes.c_int, [_P, _STR, ctypes.POINTER(ctypes.c_int64)]),
    "adak_session_evaluate": (ctypes.c_int, [_P, ctypes.POINTER(_I32), _SIZE, ctypes.c_uint32]),
    "adak_session_logits": (ctypes.POINTER(ctypes.c_float), [_P, ctypes.POINTER(_SIZE), ctypes.POINTER(_SIZE)]),
    "adak_session_copy_logits": (ctypes.c_int, [_P, _SIZE, ctypes.POINTER(ctypes.c_float), _SIZE]),
    "adak_session_sample": (ctypes.c_int, [_P, ctypes.POINTER(_I32)]),
    "adak_batch_decode": (ctypes.c_int, [ctypes.POINTER(_P), _SIZE, ctypes.POINTER(_I32), ctypes.POINTER(_SIZE)]),
    "adak_session_generate": (
        ctypes.c_int,
        [_P, ctypes.POINTER(_I32), _SIZE, _I32, TOKEN_CALLBACK, _P, ctypes.POINTER(_SIZE)],
    ),
    # 0.5: typed sampling and routing settings
    "adak_sampling_params_init": (ctypes.c_int, [ctypes.POINTER(SamplingParams), _SIZE]),
    "adak_session_set_sampling": (ctypes.c_int, [_P, ctypes.POINTER(SamplingParams)]),
    "adak_session_get_sampling": (ctypes.c_int, [_P, ctypes.POINTER(SamplingParams)]),
    "adak_routing_params_init": (ctypes.c_int, [ctypes.POINTER(RoutingParams), _SIZE]),
    "adak_session_set_routing": (ctypes.c_int, [_P, ctypes.POINTER(RoutingParams)]),
    "adak_session_get_routing": (ctypes.c_int, [_P, ctypes.POINTER(RoutingParams)]),
    # 0.2: routing, budget, allocators, statistics, logging
    "adak_session_set_string": (ctypes.c_int, [_P, _STR, _STR]),
    "adak_session_get_string": (ctypes.c_int, [_P, _STR, ctypes.c_char_p, _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_session_set_flops_budget": (ctypes.c_int, [_P, ctypes.c_double]),
    "adak_session_clear_flops_budget": (ctypes.c_int, [_P]),
    "adak_allocator_load": (ctypes.c_int, [_P, _STR, ctypes.POINTER(_P)]),
    "adak_allocator_identity": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
    "adak_allocator_save": (ctypes.c_int, [_P, _STR]),
    "adak_allocator_free": (None, [_P]),
    "adak_session_set_allocator": (ctypes.c_int, [_P, _P]),
    "adak_session_get_stats": (ctypes.c_int, [_P, ctypes.POINTER(Stats)]),
    "adak_session_get_mean_k_per_layer": (
        ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_double), _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_session_get_k_histogram": (
        ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_int64), _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_session_reset_stats": (ctypes.c_int, [_P]),
    "adak_model_get_moe_layers": (ctypes.c_int, [_P, ctypes.POINTER(_I32), _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_set_log_callback": (None, [LOG_CALLBACK, _P]),
    # 0.5: chat templates, stop reasons and strings, logit bias and mask, state, rewind, copy
    "adak_model_apply_chat_template": (
        ctypes.c_int, [_P, ctypes.POINTER(ChatMessage), _SIZE, ctypes.c_int, ctypes.c_char_p, _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_session_stop_reason": (ctypes.c_int, [_P, ctypes.POINTER(_I32)]),
    "adak_session_set_stop_strings": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_SIZE), _SIZE]),
    "adak_session_set_choices": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_SIZE), _SIZE]),
    "adak_session_set_regex": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "adak_session_set_logit_bias": (ctypes.c_int, [_P, ctypes.POINTER(_I32), ctypes.POINTER(ctypes.c_float), _SIZE]),
    "adak_session_set_logits_callback": (ctypes.c_int, [_P, LOGITS_CALLBACK, _P]),
    "adak_session_save_state": (ctypes.c_int, [_P, _P, _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_session_load_state": (ctypes.c_int, [_P, _P, _SIZE]),
    "adak_session_save_state_file": (ctypes.c_int, [_P, _STR]),
    "adak_session_load_state_file": (ctypes.c_int, [_P, _STR]),
    "adak_session_get_tokens": (ctypes.c_int, [_P, ctypes.POINTER(_I32), _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_session_truncate": (ctypes.c_int, [_P, ctypes.c_int64]),
    "adak_session_copy": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
    # 0.3: carving and allocator training
    "adak_carve_params_create": (ctypes.c_int, [ctypes.POINTER(_P)]),
    "adak_carve_params_free": (None, [_P]),
    "adak_carve_params_set_int": (ctypes.c_int, [_P, _STR, ctypes.c_int64]),
    "adak_carve_params_set_float": (ctypes.c_int, [_P, _STR, ctypes.c_double]),
    "adak_carve_params_set_string": (ctypes.c_int, [_P, _STR, _STR]),
    "adak_carve": (ctypes.c_int, [_STR, _STR, _P, CARVE_PROGRESS_CALLBACK, _P]),
    "adak_train_params_create": (ctypes.c_int, [ctypes.POINTER(_P)]),
    "adak_train_params_free": (None, [_P]),
    "adak_train_params_set_float": (ctypes.c_int, [_P, _STR, ctypes.c_double]),
    "adak_train_params_set_int": (ctypes.c_int, [_P, _STR, ctypes.c_int64]),
    "adak_train_params_set_string": (ctypes.c_int, [_P, _STR, _STR]),
    "adak_train_progress_get_int": (ctypes.c_int, [_P, _STR, ctypes.POINTER(ctypes.c_int64)]),
    "adak_train_progress_get_float": (ctypes.c_int, [_P, _STR, ctypes.POINTER(ctypes.c_double)]),
    "adak_train_progress_get_mean_k_per_layer": (
        ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_double), _SIZE, ctypes.POINTER(_SIZE)]),
    "adak_train_allocator": (
        ctypes.c_int,
        [_P, _STR, ctypes.POINTER(_I32), _SIZE, _P, _STR, ctypes.c_int, TRAIN_PROGRESS_CALLBACK, _P]),
    # 0.4: quantization
    "adak_quantize_params_init": (ctypes.c_int, [ctypes.POINTER(QuantizeParams), _SIZE]),
    "adak_model_quantize": (ctypes.c_int, [_STR, _STR, ctypes.POINTER(QuantizeParams)]),
}


def _candidates() -> List[str]:
    """Where to look for the library, most specific first."""
    names = [f"libadak.so.{API_MAJOR}", "libadak.so"]
    found: List[str] = []
    env = os.environ.get("ADAK_LIB")
    if env:
        p = Path(env)
        if p.is_dir():
            found += [str(p / n) for n in names]
        else:
            found.append(str(p))
        return found  # an explicit choice is not second-guessed
    # A source checkout: <repo>/python/adak/_lib.py -> <repo>/build/lib.
    repo_build = Path(__file__).resolve().parent.parent.parent / "build" / "lib"
    found += [str(repo_build / n) for n in names]
    try:
        libdir = subprocess.run(
            ["pkg-config", "--variable=libdir", "adak"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if libdir:
            found += [str(Path(libdir) / n) for n in names]
    except (OSError, subprocess.SubprocessError):
        pass
    for prefix in ("/usr/local/lib", "/usr/lib"):
        found += [str(Path(prefix) / n) for n in names]
    found += names  # the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache)
    return found


def load_library() -> ctypes.CDLL:
    """Loads libadak, sets the prototypes and checks that its major version is ours."""
    errors = []
    lib: Optional[ctypes.CDLL] = None
    for candidate in _candidates():
        if os.sep in candidate and not os.path.exists(candidate):
            continue
        try:
            lib = ctypes.CDLL(candidate)
            break
        except OSError as e:
            errors.append(f"{candidate}: {e}")
    if lib is None:
        detail = "; ".join(errors) if errors else "no candidate file exists"
        raise ImportError(
            "adak: cannot find libadak.so (set ADAK_LIB to the library or its folder, "
            f"or install libadak): {detail}"
        )
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise ImportError(f"adak: {lib._name} lacks {name}: too old for this binding") from e
        fn.restype = restype
        fn.argtypes = argtypes
    number = lib.adak_version_number()
    if number // 10000 != API_MAJOR:
        raise ImportError(
            f"adak: {lib._name} is libadak {lib.adak_version().decode()}, "
            f"but this binding needs major version {API_MAJOR}"
        )
    return lib
