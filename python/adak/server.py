"""An OpenAI-compatible HTTP server for one libadak model, with per-request expert routing.

    python -m adak.server --model SmolLM2-135M-Instruct.Q4_1.gguf --port 8000 --parallel 2

Endpoints: POST /v1/completions and /v1/chat/completions (SSE streaming with ``"stream": true``),
GET /v1/models, /health and /metrics (Prometheus text). Besides the standard fields
(max_tokens, temperature, top_p, seed, stop, stream, n=1) a request may carry ``routing`` (a
policy name or {"policy": ..., "k": .., "p": .., "k_max": ..}), ``allocator`` (a name given to
``--allocator NAME=PATH``; "identity" always exists on a MoE model), ``flops_budget`` (a fraction
of static Top-K's expert FLOPs) and ``ignore_eos``; ``usage`` reports the expert-FLOPs fraction
and mean k the request achieved.

Decoding runs in a :class:`Scheduler`: ``--parallel`` sessions of the one shared model, one
request per session, all advanced together in batched steps (one forward pass per step for every
running request, ``adak.batch_decode``), newcomers' prompts evaluated in chunks between them.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import collections
import contextlib
import json
import os
import queue
import random
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Deque, Dict, List, Optional, Tuple

import adak
from adak import _lib

try:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
except ImportError as e:  # pragma: no cover - a clear message instead of a traceback
    raise SystemExit(f"adak.server needs FastAPI and uvicorn: pip install 'adak[server]' ({e})")


# -- errors ----------------------------------------------------------------------------------
class APIError(Exception):
    """An error answered with an OpenAI-style body: {"error": {"message", "type", "param", "code"}}."""

    TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 413: "invalid_request_error",
             429: "rate_limit_error", 503: "service_unavailable"}

    def __init__(self, status: int, message: str, param: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.TYPES.get(self.status, "server_error"),
                          "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def _bad(message: str, param: Optional[str] = None) -> APIError:
    return APIError(400, message, param, "invalid_value" if param else None)


# -- configuration ---------------------------------------------------------------------------
@dataclass
class ServerConfig:
    model: str
    model_id: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    parallel: int = 1              # sessions (requests decoded at once)
    threads: int = 0               # compute threads of the batched steps (0: all cores)
    n_ctx: int = 2048              # context per session
    queue_size: int = 64           # requests waiting for a session beyond which 429
    queue_timeout: float = 300.0   # seconds a request may wait for a session before 503
    max_request_bytes: int = 256 * 1024
    max_tokens_limit: int = 2048   # the largest max_tokens a request may ask for
    allocators: Dict[str, str] = field(default_factory=dict)   # name -> allocator file
    default_routing: str = "topk"
    prefill_chunk: int = 64        # prompt tokens per batched step (beside one token per stream)

    def __post_init__(self) -> None:
        if not self.model_id:
            self.model_id = os.path.basename(self.model).removesuffix(".gguf")


@dataclass(eq=False)  # hashed by identity (the scheduler keeps a set of running jobs)
class Job:
    """One request as the scheduler runs it. Events go to ``events`` on the server's loop:
    ("started",), ("text", str), ("done", finish_reason, usage), ("error", APIError)."""

    prompt: List[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: Optional[int] = None
    stop: List[str] = field(default_factory=list)
    routing: Dict[str, Any] = field(default_factory=dict)
    allocator: Optional[str] = None
    flops_budget: Optional[float] = None
    ignore_eos: bool = False
    enqueued: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    events: Optional[asyncio.Queue] = None
    loop: Optional[asyncio.AbstractEventLoop] = None

    def emit(self, *event: Any) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class Metrics:
    """Counters for /metrics, updated by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.requests: Dict[str, int] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.expert_flops = 0.0
        self.expert_flops_topk = 0.0
        self.k_tokens = 0.0            # sum over requests of mean_k x routed tokens
        self.routed_tokens = 0
        self.recent: Deque[List[int]] = collections.deque()   # [second, tokens] of the last minute

    def count(self, outcome: str) -> None:
        with self.lock:
            self.requests[outcome] = self.requests.get(outcome, 0) + 1

    def add_tokens(self, n: int) -> None:
        second = int(time.monotonic())
        with self.lock:
            self.completion_tokens += n
            if self.recent and self.recent[-1][0] == second:
                self.recent[-1][1] += n
            else:
                self.recent.append([second, n])
            while self.recent[0][0] < second - 60:
                self.recent.popleft()

    def add_request(self, prompt_tokens: int, stats: Optional[adak.RoutingStats]) -> None:
        with self.lock:
            self.prompt_tokens += prompt_tokens
            if stats is not None and stats.tokens > 0:
                self.expert_flops += stats.expert_flops
                self.expert_flops_topk += stats.expert_flops_topk
                self.k_tokens += stats.mean_k * stats.tokens
                self.routed_tokens += stats.tokens

    def tokens_per_second(self, window: int = 10) -> float:
        """Tokens generated per second over the last ``window`` whole seconds."""
        now = int(time.monotonic())
        with self.lock:
            n = sum(t for at, t in self.recent if now - window <= at < now)
        return n / max(1, min(window, now - int(self.started)))


# -- the scheduler ---------------------------------------------------------------------------
class _Stream:
    """A running job on its session: prompt tokens still to evaluate, the token to feed next,
    text held back while it may begin a stop string, and the tokens produced."""

    def __init__(self, job: Job, session: adak.Session):
        self.job, self.session = job, session
        self.left: List[int] = list(job.prompt)
        self.next: Optional[int] = None
        self.held = b""
        self.stops = [s.encode("utf-8") for s in job.stop]
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.produced = 0

    def emit_bytes(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final=final)
        if text:
            self.job.emit("text", text)

    def held_suffix(self) -> int:
        """Bytes at the end of ``held`` that begin some stop string (held back)."""
        keep = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.held)), keep, -1):
                if self.held.endswith(s[:n]):
                    keep = n
                    break
        return keep


class Scheduler:
    """Decodes up to ``parallel`` requests at once in batched steps: one thread runs every step
    as ONE forward pass over the sessions of the one model (``adak.batch_decode``): first one
    token of every stream that is decoding, then prompt tokens of newcomers up to
    ``prefill_chunk`` per step, so a long prompt never stalls the streams. Each session keeps
    its request's sampling, routing, allocator and budget. ``submit`` queues a job or raises 429
    when ``queue_size`` jobs already wait."""

    def __init__(self, model: adak.Model, config: ServerConfig, allocators: Dict[str, adak.Allocator],
                 metrics: Metrics):
        self.model, self.config, self.allocators, self.metrics = model, config, allocators, metrics
        self.slots = config.parallel
        self.busy = 0
        self._queue: "queue.Queue[Optional[Job]]" = queue.Queue(maxsize=config.queue_size)
        self.closing = False
        self.moe = bool(model.moe_layers)
        self.eog = [t for t in range(model.n_vocab) if model.is_eog(t)]
        self._eog = set(self.eog)
        self._pieces: Dict[int, bytes] = {}
        threads = config.threads or (os.cpu_count() or 1)
        n_batch = config.parallel + config.prefill_chunk
        self._sessions = [model.session(n_ctx=config.n_ctx, n_threads=threads, n_batch=n_batch)
                          for _ in range(config.parallel)]
        self._free = list(self._sessions)
        self._streams: List[_Stream] = []
        # the library's routing defaults, restored before every request
        self._routing_defaults = self._sessions[0].routing if self.moe else {}
        self._worker = threading.Thread(target=self._work, name="adak-batch", daemon=True)
        self._worker.start()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> None:
        if self.closing:
            raise APIError(503, "the server is shutting down", code="unavailable")
        job.enqueued = time.monotonic()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise APIError(429, f"the server is busy: {self.config.queue_size} requests are waiting; retry later",
                           code="queue_full") from None

    def close(self) -> None:
        """Answers waiting jobs 503, stops running ones, ends the worker, frees the sessions."""
        self.closing = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.emit("error", APIError(503, "the server is shutting down", code="unavailable"))
        self._queue.put(None)
        self._worker.join()
        for s in self._sessions:
            s.close()

    # -- the decode loop --
    def _work(self) -> None:
        while True:
            if not self._admit():
                break
            if self._streams:
                self._step()
        for st in list(self._streams):
            st.job.emit("error", APIError(503, "the server is shutting down", code="unavailable"))
            self._release(st)

    def _admit(self) -> bool:
        """Takes waiting jobs while sessions are free (blocks while nothing runs); False: close."""
        while self._free:
            try:
                job = self._queue.get(block=not self._streams)
            except queue.Empty:
                return True
            if job is None or self.closing:
                return False
            if job.cancel.is_set():  # its client left while it waited
                self.metrics.count("cancelled")
                continue
            if time.monotonic() - job.enqueued > self.config.queue_timeout:
                job.emit("error", APIError(503, f"no session was free within {self.config.queue_timeout:g} s; "
                                                "retry later", code="queue_timeout"))
                self.metrics.count("timeout")
                continue
            session = self._free.pop()
            try:
                self._configure(session, job)
            except Exception as e:  # noqa: BLE001 - answered, never fatal to the worker
                self._free.append(session)
                job.emit("error", self._api_error(e))
                continue
            self.busy += 1
            self._streams.append(_Stream(job, session))
            job.emit("started")
        return True

    def _step(self) -> None:
        """One forward pass: decode tokens first, then prompt chunks up to ``prefill_chunk``."""
        for st in [s for s in self._streams if s.job.cancel.is_set() or self.closing]:
            self._finish(st, "cancelled")
        entries: List[Tuple[_Stream, List[int]]] = [(st, [st.next]) for st in self._streams if st.next is not None]
        budget = self.config.prefill_chunk
        for st in self._streams:
            if st.left and budget > 0:
                chunk, st.left = st.left[:budget], st.left[budget:]
                entries.append((st, chunk))
                budget -= len(chunk)
        if not entries:
            return
        try:
            adak.batch_decode([st.session for st, _ in entries], [toks for _, toks in entries])
        except Exception as e:  # noqa: BLE001 - the step's requests fail, the server goes on
            for st, _ in entries:
                st.job.emit("error", self._api_error(e))
                self.metrics.count("error")
                self._release(st)
            return
        for st, _ in entries:
            st.next = None
            if not st.left:  # the prompt is done: sample the next token
                self._sample(st)

    def _sample(self, st: _Stream) -> None:
        token = st.session.sample()
        if token in self._eog:
            if st.held:
                st.emit_bytes(st.held)
            self._finish(st, "stop")
            return
        st.produced += 1
        self.metrics.add_tokens(1)
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.model.token_to_piece(token)
        full = st.session.position >= self.config.n_ctx  # no room to evaluate this token
        last = st.produced >= st.job.max_tokens or full
        if st.stops:
            st.held += piece
            cuts = [i for i in (st.held.find(s) for s in st.stops) if i >= 0]
            if cuts:
                st.emit_bytes(st.held[:min(cuts)])
                self._finish(st, "stop")
                return
            keep = 0 if last else st.held_suffix()
            piece, st.held = st.held[:len(st.held) - keep], st.held[len(st.held) - keep:]
        st.emit_bytes(piece)
        if last:
            self._finish(st, "length")
        else:
            st.next = token

    def _finish(self, st: _Stream, finish: str) -> None:
        st.emit_bytes(b"", final=True)
        job = st.job
        if job.cancel.is_set() or self.closing:
            finish = "cancelled"
        stats = st.session.stats if self.moe else None
        self.metrics.add_request(len(job.prompt), stats)
        self.metrics.count("cancelled" if finish == "cancelled" else "ok")
        usage: Dict[str, Any] = {"prompt_tokens": len(job.prompt), "completion_tokens": st.produced,
                                 "total_tokens": len(job.prompt) + st.produced}
        if stats is not None:
            usage.update(expert_flops_fraction=stats.expert_fraction, mean_k=stats.mean_k,
                         k_native=stats.k_native, routed_tokens=stats.tokens)
        self._release(st)
        job.emit("done", finish, usage)  # after the slot is free: a client that got its answer sees it free

    def _release(self, st: _Stream) -> None:
        self._streams.remove(st)
        self._free.append(st.session)
        self.busy -= 1

    @staticmethod
    def _api_error(e: Exception) -> APIError:
        if isinstance(e, adak.AdakError):
            status = 400 if e.status in (_lib.ERR_INVALID_ARGUMENT, _lib.ERR_UNSUPPORTED) else 500
            return APIError(status, e.message)
        return APIError(500, f"internal error: {e}")

    def _configure(self, session: adak.Session, job: Job) -> None:
        """Applies the request's settings to a pooled session, all of them, so nothing of the
        previous request carries over."""
        seed = job.seed if job.seed is not None else random.getrandbits(63)
        session.set_sampling(temperature=job.temperature, top_p=job.top_p, seed=seed, top_k=0, min_p=0.0,
                             repeat_penalty=1.0)
        if self.moe:
            defaults = dict(self._routing_defaults)
            session.set_routing(**dict(defaults, policy="topk"))  # so the allocator may change
            session.set_allocator(self.allocators[job.allocator] if job.allocator else None)
            session.set_routing(**dict(defaults, **job.routing))
            session.set_budget(job.flops_budget)
        session.set_logit_bias({t: float("-inf") for t in self.eog} if job.ignore_eos else {})
        session.reset()
        session.reset_stats()


# -- request parsing -------------------------------------------------------------------------
_ROUTING_KNOBS = {"k": int, "k_min": int, "k_max": int, "p": float, "beta": float, "tau": float, "price": float}


def _number(body: Dict[str, Any], name: str, default: Any, lo: float, hi: float, integer: bool = False) -> Any:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not float(v).is_integer()):
        raise _bad(f"'{name}' must be {'an integer' if integer else 'a number'}, got {v!r}", name)
    if not lo <= v <= hi:
        raise _bad(f"'{name}' must be in [{lo:g}, {hi:g}], got {v!r}", name)
    return int(v) if integer else float(v)


class App:
    """The model, its allocators, the scheduler and the HTTP routes."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.model = adak.Model(config.model)
        self.allocators: Dict[str, adak.Allocator] = {}
        if self.model.moe_layers:
            self.allocators["identity"] = self.model.identity_allocator()
            for name, path in config.allocators.items():
                self.allocators[name] = self.model.load_allocator(path)
        elif config.allocators:
            raise SystemExit(f"{config.model} is a dense model: allocators do not apply")
        self.metrics = Metrics()
        self.scheduler = Scheduler(self.model, config, self.allocators, self.metrics)
        self.created = int(time.time())
        self.n_ctx = config.n_ctx

    def close(self) -> None:
        self.scheduler.close()
        for a in self.allocators.values():
            a.close()
        self.model.close()

    # -- parsing --
    async def read_json(self, request: Request) -> Dict[str, Any]:
        limit = self.config.max_request_bytes
        # A body over the limit is read to its end (and dropped) before the 413, up to a hard cap:
        # answering mid-upload makes the server close a socket the client is still writing to,
        # and the client then sees a broken pipe instead of the error.
        drain_cap = max(16 * limit, 64 << 20)
        data = bytearray()
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen <= limit:
                data += chunk
            elif seen > drain_cap:
                break
        if seen > limit:
            raise APIError(413, f"the request body has {seen}{'+' if seen > drain_cap else ''} bytes; the limit is {limit}",
                           code="request_too_large")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise _bad(f"the body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        return body

    def check_model(self, body: Dict[str, Any]) -> None:
        name = body.get("model")
        if name is not None and name != self.config.model_id:
            raise APIError(404, f"The model '{name}' does not exist; this server serves '{self.config.model_id}'",
                           "model", "model_not_found")

    def make_job(self, body: Dict[str, Any], prompt: List[int], default_max: Optional[int]) -> Job:
        if body.get("n", 1) != 1:
            raise _bad("only n = 1 is supported", "n")
        for unsupported in ("logprobs", "echo", "tools", "functions"):
            if body.get(unsupported) not in (None, False, [], 0):
                raise _bad(f"'{unsupported}' is not supported by this server", unsupported)
        if not prompt:
            raise _bad("the prompt is empty", "prompt")
        room = self.n_ctx - len(prompt)
        if room < 1:
            raise _bad(f"the prompt has {len(prompt)} tokens; the context holds {self.n_ctx}",
                       "messages" if "messages" in body else "prompt")
        limit = self.config.max_tokens_limit
        name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = _number(body, name, None, 1, limit, integer=True)
        if max_tokens is None:
            max_tokens = min(default_max or limit, limit, room)
        if max_tokens > room:
            raise _bad(f"prompt ({len(prompt)} tokens) + {name} ({max_tokens}) exceed the context of "
                       f"{self.n_ctx} tokens", name)
        stop = body.get("stop")
        if stop is None:
            stop = []
        elif isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
            raise _bad("'stop' must be a non-empty string or a list of at most 4 of them", "stop")
        job = Job(prompt=prompt, max_tokens=max_tokens, stop=stop,
                  temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
                  top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
                  seed=_number(body, "seed", None, 0, 2**63 - 1, integer=True))
        if body.get("top_p") == 0:
            job.top_p = 1.0
            job.temperature = 0.0
        ignore = body.get("ignore_eos", False)
        if not isinstance(ignore, bool):
            raise _bad("'ignore_eos' must be a boolean", "ignore_eos")
        job.ignore_eos = ignore
        self.parse_routing(body, job)
        return job

    def parse_routing(self, body: Dict[str, Any], job: Job) -> None:
        routing = body.get("routing")
        budget = body.get("flops_budget")
        allocator = body.get("allocator")
        if not self.model.moe_layers:
            for name in ("routing", "flops_budget", "allocator"):
                if body.get(name) is not None:
                    raise _bad(f"'{name}' applies to Mixture-of-Experts models; this one is dense", name)
            return
        if routing is None:
            routing = {"policy": self.config.default_routing}
        elif isinstance(routing, str):
            routing = {"policy": routing}
        if not isinstance(routing, dict):
            raise _bad("'routing' must be a policy name or an object {\"policy\": ..., knobs}", "routing")
        policy = routing.get("policy", self.config.default_routing)
        if policy not in adak.ROUTING_POLICIES:
            raise _bad(f"unknown routing policy {policy!r} (known: {', '.join(adak.ROUTING_POLICIES)})", "routing")
        parsed: Dict[str, Any] = {"policy": policy}
        for key, value in routing.items():
            if key == "policy":
                continue
            kind = _ROUTING_KNOBS.get(key)
            if kind is None:
                raise _bad(f"unknown routing knob {key!r} (known: {', '.join(_ROUTING_KNOBS)})", "routing")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (kind is int and not float(value).is_integer()):
                raise _bad(f"routing knob {key!r} must be {'an integer' if kind is int else 'a number'}", "routing")
            parsed[key] = kind(value)
        if allocator is not None and (not isinstance(allocator, str) or allocator not in self.allocators):
            raise _bad(f"unknown allocator {allocator!r} (configured: {', '.join(self.allocators)})", "allocator")
        if policy == "adak" and allocator is None:
            allocator = next(iter(n for n in self.allocators if n != "identity"), "identity")
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 16:
                raise _bad(f"'flops_budget' must be a number in (0, 16] (a fraction of static Top-K's "
                           f"expert FLOPs), got {budget!r}", "flops_budget")
            budget = float(budget)
        job.routing, job.allocator, job.flops_budget = parsed, allocator, budget

    def completion_prompt(self, body: Dict[str, Any]) -> List[int]:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
            prompt = prompt[0]  # a batch of one
        if isinstance(prompt, str):
            # user text is data: special-token text in it stays plain text
            return self.model.tokenize(prompt, add_special=True, parse_special=False)
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            if not all(0 <= t < self.model.n_vocab for t in prompt):
                raise _bad(f"prompt token ids must be in [0, {self.model.n_vocab})", "prompt")
            return list(prompt)
        raise _bad("'prompt' must be a string, a list of token ids, or a list of one of them", "prompt")

    def chat_prompt(self, body: Dict[str, Any]) -> List[int]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad("'messages' must be a non-empty list", "messages")
        plain = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise _bad(f"messages[{i}] must be an object with a 'role'", "messages")
            content = m.get("content")
            if isinstance(content, list):  # content parts: the text ones
                if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                           for p in content):
                    raise _bad(f"messages[{i}]: only text content parts are supported", "messages")
                content = "".join(p["text"] for p in content)
            if not isinstance(content, str):
                raise _bad(f"messages[{i}] needs a string 'content'", "messages")
            if "\0" in content or "\0" in m["role"]:
                raise _bad(f"messages[{i}] contains a NUL character", "messages")
            plain.append({"role": m["role"], "content": content})
        return chat_tokens(self.model, plain)


def chat_tokens(model: adak.Model, messages: List[Dict[str, str]]) -> List[int]:
    """Tokens of a conversation rendered with the chat template, the messages' contents being
    data: the template's own text is tokenized with special tokens recognised, each content
    without, so "<|im_end|>" typed by a user stays plain text. Contents are rendered as unique
    markers first and tokenized apart; a template that alters a marker (trims, repeats or drops a
    message) is rendered with the real contents and tokenized without special tokens in them."""
    tag = uuid.uuid4().hex[:8]
    markers = [f"\ue000{tag}{i}\ue001" for i in range(len(messages))]
    rendered = model.apply_chat_template([{"role": m["role"], "content": k} for m, k in zip(messages, markers)],
                                        add_assistant=True)
    pieces: List[Tuple[str, bool]] = []   # (text, is user content)
    rest = rendered
    for m, k in zip(messages, markers):
        before, found, after = rest.partition(k)
        if not found or k in after:
            pieces = []
            break
        pieces += [(before, False), (m["content"], True)]
        rest = after
    if not pieces:  # the template changed a marker: fall back to the real rendering
        text = model.apply_chat_template(messages, add_assistant=True)
        ids = model.tokenize(text, add_special=False, parse_special=True)
        if any(model.tokenize(m["content"], add_special=False, parse_special=True) !=
               model.tokenize(m["content"], add_special=False, parse_special=False) for m in messages):
            raise _bad("a message contains special-token text, which this model's chat template cannot "
                       "keep apart from its own", "messages")
    else:
        pieces.append((rest, False))
        ids = []
        for text, data in pieces:
            if text:
                ids += model.tokenize(text, add_special=False, parse_special=not data)
    bos = model.bos
    if bos is not None and model.get_int("add_bos") and (not ids or ids[0] != bos):
        ids.insert(0, bos)
    return ids


# -- HTTP ------------------------------------------------------------------------------------
def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI application serving ``config.model``."""
    state = App(config)

    @contextlib.asynccontextmanager
    async def lifespan(_api: FastAPI):
        yield
        state.close()

    api = FastAPI(title="libadak", version=adak.__version__, lifespan=lifespan)
    api.state.adak = state

    @api.exception_handler(APIError)
    async def _api_error(_request: Request, e: APIError) -> JSONResponse:
        return e.response()

    @api.exception_handler(adak.AdakError)
    async def _adak_error(_request: Request, e: adak.AdakError) -> JSONResponse:
        status = 400 if e.status in (_lib.ERR_INVALID_ARGUMENT, _lib.ERR_UNSUPPORTED) else 500
        return APIError(status, e.message).response()

    @api.get("/health")
    async def health() -> Dict[str, Any]:
        s = state.scheduler
        return {"status": "ok", "model": config.model_id, "slots": s.slots, "slots_busy": s.busy,
                "queue_length": s.waiting}

    @api.get("/v1/models")
    async def models() -> Dict[str, Any]:
        return {"object": "list", "data": [{"id": config.model_id, "object": "model", "created": state.created,
                                            "owned_by": "libadak", "allocators": list(state.allocators),
                                            "routing_policies": list(adak.ROUTING_POLICIES),
                                            "moe": bool(state.model.moe_layers), "n_ctx": state.n_ctx}]}

    @api.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(render_metrics(state), media_type="text/plain; version=0.0.4")

    @api.post("/v1/completions")
    async def completions(request: Request):
        body = await state.read_json(request)
        state.check_model(body)
        # tokenizing a long prompt takes a while: off the event loop
        job = state.make_job(body, await asyncio.to_thread(state.completion_prompt, body), default_max=16)
        return await respond(request, body, job, chat=False)

    @api.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await state.read_json(request)
        state.check_model(body)
        job = state.make_job(body, await asyncio.to_thread(state.chat_prompt, body), default_max=None)
        return await respond(request, body, job, chat=True)

    async def respond(request: Request, body: Dict[str, Any], job: Job, chat: bool):
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _bad("'stream' must be a boolean", "stream")
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        job.loop = asyncio.get_running_loop()
        job.events = asyncio.Queue()
        state.scheduler.submit(job)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        base = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
                "model": config.model_id}
        try:
            first = await wait_event(request, job)  # "started" or "error": settings checked before answering
        except BaseException:
            job.cancel.set()
            raise
        if first[0] == "error":
            raise first[1]
        if stream:
            return StreamingResponse(sse(request, job, base, chat, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        text: List[str] = []
        try:
            while True:
                event = await wait_event(request, job)
                if event[0] == "text":
                    text.append(event[1])
                elif event[0] == "error":
                    raise event[1]
                else:
                    break
        finally:
            job.cancel.set()  # a no-op once done; frees the slot when the client left
        finish, usage = event[1], event[2]
        out = "".join(text)
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": out}, "logprobs": None,
                      "finish_reason": finish}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": out, "logprobs": None, "finish_reason": finish}
            obj = "text_completion"
        return {**base, "object": obj, "choices": [choice], "usage": usage}

    async def wait_event(request: Request, job: Job) -> Tuple[Any, ...]:
        """The job's next event; cancels the job when the client disconnects while waiting."""
        while True:
            try:
                return await asyncio.wait_for(job.events.get(), timeout=0.5)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    job.cancel.set()
                    raise asyncio.CancelledError("client disconnected")

    async def sse(request: Request, job: Job, base: Dict[str, Any], chat: bool,
                  include_usage: bool) -> AsyncIterator[str]:
        def chunk(delta: Optional[str], finish: Optional[str], role: bool = False) -> Dict[str, Any]:
            if chat:
                d: Dict[str, Any] = {"role": "assistant", "content": ""} if role else \
                    ({} if delta is None else {"content": delta})
                choice = {"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        def data(obj: Dict[str, Any]) -> str:
            return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

        try:
            if chat:
                yield data(chunk(None, None, role=True))
            while True:
                event = await job.events.get()
                if event[0] == "text":
                    yield data(chunk(event[1], None))
                elif event[0] == "error":
                    err = event[1]
                    yield data({"error": {"message": err.message, "type": "server_error", "code": err.code}})
                    break
                else:
                    last = chunk(None, event[1])
                    if include_usage:
                        yield data(last)
                        yield data({**base, "choices": [], "usage": event[2]})
                    else:
                        yield data({**last, "usage": event[2]})
                    break
            yield "data: [DONE]\n\n"
        finally:
            job.cancel.set()  # the client left (the generator was closed) or the job ended

    return api


def render_metrics(state: App) -> str:
    m, s = state.metrics, state.scheduler
    with m.lock:
        requests = dict(m.requests)
        prompt, completion = m.prompt_tokens, m.completion_tokens
        fraction = m.expert_flops / m.expert_flops_topk if m.expert_flops_topk > 0 else 0.0
        mean_k = m.k_tokens / m.routed_tokens if m.routed_tokens else 0.0
    lines = [
        "# HELP adak_tokens_per_second Completion tokens per second over the last 10 s.",
        "# TYPE adak_tokens_per_second gauge",
        f"adak_tokens_per_second {m.tokens_per_second():.3f}",
        "# HELP adak_queue_length Requests waiting for a session.",
        "# TYPE adak_queue_length gauge",
        f"adak_queue_length {s.waiting}",
        "# HELP adak_active_streams Requests being decoded.",
        "# TYPE adak_active_streams gauge",
        f"adak_active_streams {s.busy}",
        "# HELP adak_slots Sessions (requests decoded at once).",
        "# TYPE adak_slots gauge",
        f"adak_slots {s.slots}",
        "# HELP adak_mean_k Mean experts per token and MoE layer over the tokens served.",
        "# TYPE adak_mean_k gauge",
        f"adak_mean_k {mean_k:.6f}",
        "# HELP adak_expert_flops_fraction Expert FLOPs spent / static Top-K's on the tokens served.",
        "# TYPE adak_expert_flops_fraction gauge",
        f"adak_expert_flops_fraction {fraction:.6f}",
        "# HELP adak_prompt_tokens_total Prompt tokens evaluated.",
        "# TYPE adak_prompt_tokens_total counter",
        f"adak_prompt_tokens_total {prompt}",
        "# HELP adak_completion_tokens_total Tokens generated.",
        "# TYPE adak_completion_tokens_total counter",
        f"adak_completion_tokens_total {completion}",
        "# HELP adak_requests_total Requests that reached a session, by outcome.",
        "# TYPE adak_requests_total counter",
    ]
    lines += [f'adak_requests_total{{outcome="{k}"}} {v}' for k, v in sorted(requests.items())]
    return "\n".join(lines) + "\n"


# -- command line ----------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> ServerConfig:
    p = argparse.ArgumentParser(prog="python -m adak.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", "-m", required=True, help="the GGUF model to serve")
    p.add_argument("--model-id", default="", help="the name clients use (default: the file name without .gguf)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one; the line 'listening on' tells)")
    p.add_argument("--parallel", "-np", type=int, default=1, help="requests decoded at once (sessions)")
    p.add_argument("--threads", "-t", type=int, default=0, help="compute threads (0: all cores)")
    p.add_argument("--prefill-chunk", type=int, default=64,
                   help="prompt tokens evaluated per step beside the streams' tokens (default 64)")
    p.add_argument("--ctx", type=int, default=2048, help="context tokens per session")
    p.add_argument("--queue", type=int, default=64, help="requests that may wait for a session (more: 429)")
    p.add_argument("--queue-timeout", type=float, default=300.0,
                   help="seconds a request may wait for a session (longer: 503)")
    p.add_argument("--max-request-bytes", type=int, default=256 * 1024, help="largest request body (more: 413)")
    p.add_argument("--max-tokens", type=int, default=2048, help="largest max_tokens a request may ask for")
    p.add_argument("--allocator", action="append", default=[], metavar="NAME=PATH",
                   help="an Ada-K allocator requests may name (repeatable)")
    p.add_argument("--routing", default="topk", choices=list(adak.ROUTING_POLICIES),
                   help="routing policy of requests that name none")
    a = p.parse_args(argv)
    allocators = {}
    for spec in a.allocator:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--allocator needs NAME=PATH, got {spec!r}")
        allocators[name] = path
    for name, value, lo in (("--parallel", a.parallel, 1), ("--ctx", a.ctx, 16), ("--queue", a.queue, 1),
                            ("--max-request-bytes", a.max_request_bytes, 1024), ("--max-tokens", a.max_tokens, 1),
                            ("--threads", a.threads, 0), ("--prefill-chunk", a.prefill_chunk, 1)):
        if value < lo:
            p.error(f"{name} must be at least {lo}")
    return ServerConfig(model=a.model, model_id=a.model_id, host=a.host, port=a.port, parallel=a.parallel,
                        threads=a.threads, n_ctx=a.ctx, queue_size=a.queue, queue_timeout=a.queue_timeout, max_request_bytes=a.max_request_bytes,
                        max_tokens_limit=a.max_tokens, allocators=allocators, default_routing=a.routing,
                        prefill_chunk=a.prefill_chunk)


def main(argv: Optional[List[str]] = None) -> None:
    config = parse_args(argv)
    try:
        api = create_app(config)
    except adak.AdakError as e:
        raise SystemExit(f"adak.server: {e}") from None
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(2048)  # connections wait in the backlog from now on: the line below means ready
    port = sock.getsockname()[1]
    print(f"adak.server: serving {config.model_id} with {config.parallel} session(s); "
          f"listening on http://{config.host}:{port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(api, log_level=os.environ.get("ADAK_SERVER_LOG", "warning"),
                                           timeout_graceful_shutdown=5))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
