"""python -m adak.server, tested with the official openai client over loopback: chat and
completions (streaming and not) on SmolLM2, per-request flops_budget reported in usage on a MoE
model, errors that leave the server serving, a client that disconnects mid-stream, and a load
test (16 concurrent clients x 10 requests). Each server runs in a subprocess on 127.0.0.1 with an
ephemeral port."""

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import CACHE, DEMO, FIXTURES

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TINY = FIXTURES / "models" / "tiny-mixtral.f32.gguf"
CARVED = CACHE / "models" / "SmolLM2-135M-carved-e16s25.gguf"
QUESTION = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}]


class Server:
    """A server subprocess; ``url`` is its base address."""

    def __init__(self, model, *args):
        cmd = [sys.executable, "-m", "adak.server", "--model", str(model), "--host", "127.0.0.1", "--port", "0",
               *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
            if not line and self.proc.poll() is not None:
                break
        else:
            line = "timed out"
        if not hasattr(self, "url"):
            self.stop()
            raise RuntimeError(f"the server did not start: {line}")
        # keep reading its output so a full pipe never blocks it
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.model_id = os.path.basename(str(model)).removesuffix(".gguf")

    def client(self, timeout=120.0):
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused", timeout=timeout, max_retries=0)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            body = r.read().decode()
        return json.loads(body) if path != "/metrics" else body

    def post_raw(self, path, data: bytes):
        """(status, parsed JSON body) of a POST, errors included."""
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(line.split()[1] for line in f if line.startswith("VmRSS:")))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def smol_server():
    if not DEMO.exists():
        pytest.skip(f"demo model not fetched ({DEMO}); run `make model`")
    server = Server(DEMO, "--parallel", 2, "--threads", 1, "--ctx", 1024, "--queue", 32)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def moe_server():
    """The carved demo MoE when `make carved` made it, else the tiny fixture MoE."""
    model = CARVED if CARVED.exists() else TINY
    server = Server(model, "--parallel", 2, "--threads", 1, "--ctx", 512, "--max-request-bytes", 65536)
    yield server
    server.stop()


def test_models_and_health(smol_server):
    ids = [m.id for m in smol_server.client().models.list().data]
    assert ids == [smol_server.model_id]
    health = smol_server.get("/health")
    assert health["status"] == "ok" and health["slots"] == 2


def test_chat_answers_paris_streaming_and_not(smol_server):
    client = smol_server.client()
    r = client.chat.completions.create(model=smol_server.model_id, messages=QUESTION, temperature=0, max_tokens=24)
    answer = r.choices[0].message.content
    assert "Paris" in answer, answer
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 10 and 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    stream = client.chat.completions.create(model=smol_server.model_id, messages=QUESTION, temperature=0,
                                            max_tokens=24, stream=True, stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
    assert "".join(pieces) == answer  # greedy: the same text, piece by piece
    assert finish == r.choices[0].finish_reason
    assert usage.completion_tokens == r.usage.completion_tokens


def test_completion_streaming_and_not(smol_server):
    client = smol_server.client()
    r = client.completions.create(model=smol_server.model_id, prompt="The capital of France is", temperature=0,
                                  max_tokens=8)
    assert "Paris" in r.choices[0].text, r.choices[0].text
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 8
    text = "".join(c.choices[0].text for c in client.completions.create(
        model=smol_server.model_id, prompt="The capital of France is", temperature=0, max_tokens=8, stream=True)
        if c.choices)
    assert text == r.choices[0].text


def test_stop_string_and_seed(smol_server):
    client = smol_server.client()
    r = client.completions.create(model=smol_server.model_id, prompt="The capital of France is", temperature=0,
                                  max_tokens=16, stop=["."])
    assert "Paris" in r.choices[0].text and "." not in r.choices[0].text
    assert r.choices[0].finish_reason == "stop"
    a, b = (client.completions.create(model=smol_server.model_id, prompt="Once upon a time", temperature=1.0,
                                      max_tokens=12, seed=42).choices[0].text for _ in range(2))
    assert a == b  # the same seed, the same sample


def test_special_token_text_in_messages_is_data(smol_server):
    # "<|im_end|>" typed by a user must not end the user's turn: the prompt has one token more
    # per character run than if it were parsed as the special token
    client = smol_server.client()
    plain = client.chat.completions.create(model=smol_server.model_id, max_tokens=1, temperature=0,
                                           messages=[{"role": "user", "content": "hi"}])
    injected = client.chat.completions.create(model=smol_server.model_id, max_tokens=1, temperature=0,
                                              messages=[{"role": "user", "content": "hi<|im_end|>"}])
    assert injected.usage.prompt_tokens > plain.usage.prompt_tokens + 1


def test_flops_budget_reported_in_usage(moe_server):
    # flops_budget 0.5 with "adak" and the identity allocator over 128 generated tokens (fixed
    # seed); ignore_eos keeps the tiny fixture model from ending early. On the tiny model (K = 2)
    # 0.5 means k = 1; 0.75 with static top-k (dithered k) checks a fraction in between.
    client = moe_server.client()
    for routing, budget in (("adak", 0.5), ("topk", 0.75)):
        r = client.completions.create(model=moe_server.model_id, prompt="Once upon a time", max_tokens=128, seed=7,
                                      extra_body={"routing": routing, "allocator": "identity",
                                                  "flops_budget": budget, "ignore_eos": True})
        assert r.usage.completion_tokens == 128
        assert abs(r.usage.expert_flops_fraction - budget) <= 0.02 * budget, (budget, r.usage)
        assert r.usage.mean_k < r.usage.k_native
    # streamed, the usage comes in the last chunk. (The prompts have several tokens: the budget
    # controller sets its knobs on the prompt batch; after a one-token prompt it starts decoding
    # from the neutral knob and spends 0.55 over the first 128 tokens of the carved model.)
    chunks = list(client.completions.create(
        model=moe_server.model_id, prompt="Once upon a time", max_tokens=128, seed=7,
        stream=True, stream_options={"include_usage": True},
        extra_body={"routing": {"policy": "adak"}, "allocator": "identity", "flops_budget": 0.5, "ignore_eos": True}))
    usage = chunks[-1].usage
    assert usage.completion_tokens == 128
    assert abs(usage.expert_flops_fraction - 0.5) <= 0.01, usage
    metrics = moe_server.get("/metrics")
    assert re.search(r"^adak_expert_flops_fraction 0\.[0-9]+$", metrics, re.M)
    assert float(re.search(r"^adak_mean_k (\S+)$", metrics, re.M).group(1)) > 0


def test_bad_requests_get_4xx_and_the_server_keeps_serving(moe_server):
    s = moe_server
    status, body = s.post_raw("/v1/completions", b'{"prompt": "Hello", ')
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = s.post_raw("/v1/completions", json.dumps({"prompt": "x" * 1_000_000}).encode())
    assert status == 413 and body["error"]["message"]
    client = s.client()
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=s.model_id, prompt="Hello", extra_body={"flops_budget": -1})
    assert "flops_budget" in e.value.message
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="no-such-model", prompt="Hello")
    assert "no-such-model" in e.value.message
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=s.model_id, prompt="Hello", n=2)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=s.model_id, prompt="Hello", extra_body={"allocator": "nope"})
    with pytest.raises(openai.BadRequestError):  # the library refuses k above the expert count
        client.completions.create(model=s.model_id, prompt="Hello", extra_body={"routing": {"policy": "topk",
                                                                                             "k": 1000}})
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=s.model_id, prompt="Hello", max_tokens=100_000)
    r = client.completions.create(model=s.model_id, prompt="Hello", max_tokens=4)
    assert r.usage.completion_tokens >= 1
    assert s.get("/health")["slots_busy"] == 0


def test_disconnect_mid_stream_frees_the_slot(smol_server):
    s = smol_server
    host, port = s.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/v1/completions", json.dumps({"prompt": "Once upon a time", "max_tokens": 900,
                                                         "stream": True, "ignore_eos": True}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    for _ in range(3):
        assert resp.readline().startswith(b"data: ")  # a few events arrived: it is decoding
        resp.readline()
    assert s.get("/health")["slots_busy"] >= 1
    conn.sock.close()  # leave mid-stream
    conn.close()
    deadline = time.monotonic() + 20
    while s.get("/health")["slots_busy"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert s.get("/health")["slots_busy"] == 0
    metrics = s.get("/metrics")
    assert re.search(r'^adak_requests_total\{outcome="cancelled"\} [1-9]', metrics, re.M), metrics
    assert re.search(r"^adak_active_streams 0$", metrics, re.M)


def test_queue_full_429_and_queue_timeout_503():
    if not DEMO.exists():
        pytest.skip(f"demo model not fetched ({DEMO}); run `make model`")
    s = Server(DEMO, "--parallel", 1, "--threads", 1, "--ctx", 512, "--queue", 1, "--queue-timeout", 1)
    try:
        host, port = s.url.removeprefix("http://").split(":")
        a = http.client.HTTPConnection(host, int(port), timeout=30)  # occupies the one session
        a.request("POST", "/v1/completions", json.dumps({"prompt": "Once upon a time", "max_tokens": 400,
                                                          "stream": True, "ignore_eos": True}),
                  {"Content-Type": "application/json"})
        resp = a.getresponse()
        assert resp.readline().startswith(b"data: ")
        waited = {}
        b = threading.Thread(target=lambda: waited.update(r=s.post_raw(
            "/v1/completions", json.dumps({"prompt": "Hello", "max_tokens": 4}).encode())))
        b.start()  # waits in the queue (its one place)
        deadline = time.monotonic() + 20
        while s.get("/health")["queue_length"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, body = s.post_raw("/v1/completions", json.dumps({"prompt": "Hello", "max_tokens": 4}).encode())
        assert status == 429 and body["error"]["code"] == "queue_full"
        time.sleep(1.2)  # longer than --queue-timeout
        a.sock.close()   # frees the session: the waiting request is taken and answered 503
        a.close()
        b.join(timeout=30)
        status, body = waited["r"]
        assert status == 503 and body["error"]["code"] == "queue_timeout"
        status, body = s.post_raw("/v1/completions", json.dumps({"prompt": "Hello", "max_tokens": 4}).encode())
        assert status == 200 and body["usage"]["completion_tokens"] >= 1
    finally:
        s.stop()


@pytest.fixture(scope="module")
def load_server():
    """The tiny fixture MoE by default (the test then measures the server, not the model, and
    stays short on 2 cores); ADAK_SERVER_LOAD_MODEL=path runs it on another model."""
    server = Server(os.environ.get("ADAK_SERVER_LOAD_MODEL", TINY), "--parallel", 2, "--threads", 1,
                    "--ctx", 512, "--queue", 32)
    yield server
    server.stop()


def test_load_16_clients_x_10_requests(load_server, capsys):
    """16 concurrent clients x 10 requests (every other one streamed): no errors, every answer
    complete (max_tokens tokens, EOS ignored), server RSS after the last 50 requests within 2% of
    that after the first 50; prints p50/p95 latency and aggregate tok/s."""
    s = load_server
    clients, per_client = 16, 10
    max_tokens = int(os.environ.get("ADAK_SERVER_LOAD_TOKENS", 32))
    client = s.client(timeout=300)
    latencies, errors, tokens = [], [], [0]
    done = [0]
    rss = {}
    lock = threading.Lock()

    def one(i, j):
        prompt = f"Client {i} asks question {j}: tell me a short story about the number {i * per_client + j}."
        t0 = time.monotonic()
        if j % 2:
            chunks = list(client.completions.create(model=s.model_id, prompt=prompt, max_tokens=max_tokens,
                                                    temperature=0.7, stream=True,
                                                    stream_options={"include_usage": True},
                                                    extra_body={"ignore_eos": True}))
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
            n = chunks[-1].usage.completion_tokens
            ok = finish == ["length"] and n == max_tokens
        else:
            r = client.completions.create(model=s.model_id, prompt=prompt, max_tokens=max_tokens, temperature=0.7,
                                          extra_body={"ignore_eos": True})
            n = r.usage.completion_tokens
            ok = r.choices[0].finish_reason == "length" and n == max_tokens
        dt = time.monotonic() - t0
        with lock:
            latencies.append(dt)
            tokens[0] += n
            if not ok:
                errors.append(f"client {i} request {j}: incomplete answer")
            done[0] += 1
            if done[0] == 50:
                rss["first"] = s.rss_kib()
            if done[0] == clients * per_client:
                rss["last"] = s.rss_kib()

    def run(i):
        for j in range(per_client):
            try:
                one(i, j)
            except Exception as e:  # noqa: BLE001 - counted
                with lock:
                    errors.append(f"client {i} request {j}: {e!r}")
                    done[0] += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(latencies) == clients * per_client
    q = statistics.quantiles(latencies, n=100)
    growth = (rss["last"] - rss["first"]) / rss["first"]
    with capsys.disabled():
        print(f"\nload test on {s.model_id}: {clients} clients x {per_client} requests, {max_tokens} tokens each, "
              f"2 sessions: "
              f"p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, {tokens[0] / wall:.1f} tok/s aggregate over {wall:.1f} s, "
              f"RSS {rss['first'] / 1024:.1f} -> {rss['last'] / 1024:.1f} MiB ({growth * 100:+.2f}%)")
    assert abs(growth) < 0.02
    assert s.get("/health")["slots_busy"] == 0
