"""The classify job's engines: an OpenAI-compatible endpoint (`OpenAIEngine`, `openai.AsyncOpenAI`)
and a local transformers model (`ClassifyHFEngine`: generating, or scoring each candidate by
log-likelihood; not jobs.engines.hf's HFEngine, which generates NER answers for jobs.evaluate).

Every engine takes `Query`s and returns one `Reply` per query, in order, calling `done(reply)` as
each arrives. Answers go through the response cache: a cached answer sends no request, and each
new answer is stored the moment it arrives (a killed job keeps what it was told). An endpoint's
200 is read from its raw body by jobs.classify.answer.read_completion: one that holds no answer
that can be scored (not JSON, no choices, empty content, impossible logprobs) is a failed item
(`Reply.error`) and is never cached; a cache entry that does not read back as a Reply is a miss.

Every reply passes `Reply.redacted` before it is cached or handed on, and an endpoint's body and
error text are redacted before anything of them is read or cut short: the API key and every secret
of the environment (launcher.tracking.wandb_mode) never reach the cache, predictions, logs or
metrics, even when the endpoint echoes them. `timeout_s` bounds each whole request (connect, wait,
body: `deadline_client`), so `attempts` x `timeout_s`, plus the client's waits between attempts
(its backoff, or a 429's Retry-After of up to 60 s), bounds an item. A request waiting in a server's
queue counts against `timeout_s`, so the endpoint sends at most what the server says it serves at
once (llama.cpp's GET /props `total_slots`; vLLM's GET /metrics `kv_cache_max_concurrency`), even
where `concurrency` is higher.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jobs.classify.answer import Malformed, TokenLogprob, cap_answer, logprob, read_completion, redact_tokens
from jobs.classify.cache import ResponseCache, request_key
from launcher.tracking.wandb_mode import redact_text, secret_values

TOP_LOGPROBS = 5
_KV_CONCURRENCY = re.compile(r'^vllm:cache_config_info\{[^}\n]*\bkv_cache_max_concurrency="([0-9.]+)"', re.M)


@dataclass(frozen=True)
class Query:
    """One request: chat messages and, for log-likelihood scoring, the candidate label texts."""

    messages: tuple[dict[str, str], ...]
    labels: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None


@dataclass
class Reply:
    text: str = ""
    tokens: list[TokenLogprob] | None = None
    scores: dict[str, float] | None = None  # loglik: label -> log-likelihood
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None

    def to_cache(self) -> dict[str, Any]:
        tokens = (
            None
            if self.tokens is None
            else [[t.token, t.logprob, [list(a) for a in t.top]] for t in self.tokens]
        )
        return {"text": self.text, "tokens": tokens, "scores": self.scores, "latency_ms": self.latency_ms,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}  # fmt: skip

    def redacted(self, secrets: Sequence[str]) -> Reply:
        """This reply with every secret redacted from its text, tokens and error."""
        text, error = redact_text(self.text, secrets=secrets), self.error
        tokens = None if self.tokens is None else redact_tokens(self.tokens, secrets)
        error = None if error is None else redact_text(error, secrets=secrets)
        return replace(self, text=text, tokens=tokens, error=error)

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> Reply | None:
        """The Reply a cache entry holds; None when the entry is not one `to_cache` writes (from an
        older version, or damaged): the caller asks again."""
        try:
            text, tokens, scores = data["text"], data.get("tokens"), data.get("scores")
            if not isinstance(text, str):
                return None
            toks: list[TokenLogprob] | None = None if tokens is None else [
                TokenLogprob(str(t), logprob(lp, "token"), tuple((str(a), logprob(b, "top")) for a, b in top))
                for t, lp, top in tokens
            ]  # fmt: skip
            if scores is not None and not all(
                isinstance(v, int | float) and math.isfinite(v) for v in dict(scores).values()
            ):
                return None
            text, toks = cap_answer(text, toks)  # an entry stored before the cap
            return cls(
                text=text, tokens=toks, scores=scores, latency_ms=float(data.get("latency_ms") or 0.0),
                prompt_tokens=int(data.get("prompt_tokens") or 0),
                completion_tokens=int(data.get("completion_tokens") or 0), cached=True,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):  # Malformed is a ValueError
            return None


@dataclass
class Stats:
    requests_sent: int = 0
    cached: int = 0
    failures: int = 0
    logprobs_missing: int = 0
    in_flight: int | None = None  # the most requests sent at once (OpenAIEngine: the server's slots cap it)
    notes: list[str] = field(default_factory=list)


Done = Callable[[Reply], None]


class RateLimit:
    """At most `rpm` request starts per minute, evenly spaced (a token bucket of size one; the
    openai client has no such limit of its own)."""

    def __init__(self, rpm: float | None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


def deadline_client(timeout_s: float) -> Any:
    """The openai client's own HTTP client (openai.DefaultAsyncHttpxClient: httpx or httpx2, as the
    openai version has it) with each whole request (connect, wait, body) bounded by `timeout_s`.

    httpx's timeouts bound each connect, read, write and pool wait on its own, so a server that
    sends a byte a second never trips them, and neither httpx nor openai has a deadline for a whole
    request. `send` is the documented place for one (openai takes `http_client=`); running out of
    time is raised as the HTTP library's own ReadTimeout, so openai treats it as the timeout it is:
    the connection is closed and the request retried with backoff, then APITimeoutError."""
    import openai

    base = openai.DefaultAsyncHttpxClient
    http = sys.modules[base.__mro__[1].__module__.partition(".")[0]]

    class DeadlineClient(base):  # type: ignore[valid-type,misc]
        async def send(self, request: Any, **kwargs: Any) -> Any:
            try:
                async with asyncio.timeout(timeout_s):
                    return await super().send(request, **kwargs)
            except TimeoutError:
                raise http.ReadTimeout(f"no whole response in {timeout_s:g} s", request=request) from None

    return DeadlineClient()


class OpenAIEngine:
    """Chat completions from an OpenAI-compatible endpoint, `concurrency` in flight at most (fewer
    where the server has fewer slots)."""

    def __init__(self, base_url: str, api_key: str, model: str, settings: dict[str, Any], *, timeout_s: float,
                 attempts: int, concurrency: int, rpm: float | None, logprobs: bool, cache: ResponseCache,
                 stats: Stats, log: Callable[[str], None]) -> None:  # fmt: skip
        self.base_url, self.api_key, self.model = base_url, api_key, model
        self.settings = {**settings, **({"logprobs": True, "top_logprobs": TOP_LOGPROBS} if logprobs else {})}
        self.timeout_s, self.attempts, self.concurrency, self.rpm = timeout_s, attempts, concurrency, rpm
        self.cache, self.stats, self.log = cache, stats, log
        self.logprobs = logprobs
        self.secrets = secret_values(also=[api_key])  # the key's variable may have any name
        self._refuses = request_key(base_url, model, {"refuses": "logprobs"}, None)
        if logprobs and cache.get(self._refuses) is not None:
            self._no_logprobs("refuses logprobs (remembered in the cache from an earlier run)", refused=True)

    def _no_logprobs(self, why: str, refused: bool = False) -> None:
        """Say once (log, metrics notes) that this endpoint gives no logprobs; a refusal also stops
        asking for them for the rest of the run."""
        self.stats.logprobs_missing += 1
        if refused:
            self.logprobs = False
            self.settings = {k: v for k, v in self.settings.items() if k not in ("logprobs", "top_logprobs")}
        if self.stats.logprobs_missing == 1:
            note = redact_text(f"{self.base_url} {why}: logprob confidence is not available (null, not zero)",
                               secrets=self.secrets)  # fmt: skip
            self.stats.notes.append(note)
            self.log(f"note: {note}")

    def key(self, query: Query) -> str:
        return request_key(
            self.base_url, self.model, self.settings, [list(query.messages), query.response_format]
        )

    def run(self, queries: Sequence[Query], done: Done) -> list[Reply]:
        return asyncio.run(self._run(queries, done))

    async def _run(self, queries: Sequence[Query], done: Done) -> list[Reply]:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s,
                             max_retries=self.attempts - 1,
                             http_client=deadline_client(self.timeout_s))  # fmt: skip
        limit, probing = RateLimit(self.rpm), asyncio.Lock()
        gate: asyncio.Semaphore | None = None

        async def slots() -> asyncio.Semaphore:
            """The gate of requests in flight, sized when the first request is about to be sent."""
            nonlocal gate
            async with probing:
                if gate is None:
                    gate = asyncio.Semaphore(await self._in_flight())
            return gate

        async def one(query: Query) -> Reply:
            key = self.key(query)
            hit = self.cache.get(key)
            reply = Reply.from_cache(hit) if hit is not None else None
            if reply is not None and reply.text.strip():  # an empty answer cached by an older version: ask
                self.stats.cached += 1
                reply = reply.redacted(self.secrets)  # cached by an older version, or under another key
            else:
                async with await slots():
                    await limit.wait()
                    reply = (await self._ask(client, query)).redacted(self.secrets)
                if reply.error is None:
                    key = self.key(query)  # logprobs may have been dropped meanwhile
                    self.cache.put(key, self.base_url, self.model, reply.to_cache())
                else:
                    self.stats.failures += 1
            done(reply)
            return reply

        try:
            return list(await asyncio.gather(*(one(q) for q in queries)))
        finally:
            await client.close()

    async def _in_flight(self) -> int:
        """`concurrency`, or fewer where the server says it serves fewer at once (llama.cpp's
        GET /props `total_slots`, vLLM's `kv_cache_max_concurrency`): requests beyond its slots would
        wait in its queue, and that wait counts against `timeout_s` (50 in flight on 4 slots wait for
        about 12 answers each)."""
        served, source = await self._server_slots()
        self.stats.in_flight = min(self.concurrency, served or self.concurrency)
        if self.stats.in_flight < self.concurrency:
            line = (f"{self.base_url} serves {served} requests at a time ({source}): at most "
                    f"{served} in flight, not eval.api.max_concurrency {self.concurrency}")  # fmt: skip
            self.log(redact_text(line, secrets=self.secrets))
        return self.stats.in_flight

    async def _server_slots(self) -> tuple[int | None, str]:
        """(requests the server serves at once, where it says so): llama.cpp's `total_slots` from
        GET /props beside the API root, else vLLM's `kv_cache_max_concurrency` from GET /metrics (the
        requests of its full context length its KV cache holds; more would wait or be preempted);
        None from a server that has neither (a hosted API) or does not answer within 10 s."""
        root = self.base_url.rstrip("/").removesuffix("/v1")
        http = deadline_client(min(self.timeout_s, 10.0))
        headers = {"Authorization": f"Bearer {self.api_key}"}
        slots: Any = None
        try:
            response = await http.get(root + "/props", headers=headers)
            slots = response.json().get("total_slots") if response.status_code == 200 else None
            if slots is not None:
                return self._positive(slots), "GET /props total_slots"
            response = await http.get(root + "/metrics", headers=headers)
            found = _KV_CONCURRENCY.search(response.text) if response.status_code == 200 else None
            slots = math.floor(float(found.group(1))) if found else None
        except Exception:  # any failure only means no cap
            slots = None
        finally:
            await http.aclose()
        return self._positive(slots), "GET /metrics vllm:cache_config_info kv_cache_max_concurrency"

    @staticmethod
    def _positive(slots: Any) -> int | None:
        return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 else None

    def _failed(self, started: float, error: str) -> Reply:
        """A failed reply: the first line of `error`, at most 300 characters. It quotes the server,
        which may echo the API key: the key and every secret of the environment are redacted
        before the text is cut short (a cut could leave a part of one) or goes anywhere."""
        lines = redact_text(error, secrets=self.secrets).strip().splitlines() or [""]
        return Reply(latency_ms=(time.perf_counter() - started) * 1000, error=lines[0][:300])

    async def _ask(self, client: Any, query: Query) -> Reply:
        import openai

        self.stats.requests_sent += 1
        started = time.perf_counter()
        sent = dict(self.settings)  # another request may drop logprobs while this one is in flight
        try:
            extra = {"response_format": query.response_format} if query.response_format else {}
            raw = await client.chat.completions.with_raw_response.create(
                model=self.model, messages=list(query.messages), **sent, **extra
            )
        except openai.APIStatusError as err:
            if "logprobs" in sent and "logprob" in str(err).lower():
                if self.logprobs:
                    self.cache.put(self._refuses, self.base_url, self.model, {"refuses": "logprobs"})
                    self._no_logprobs(f"refuses logprobs (HTTP {err.status_code})", refused=True)
                return await self._ask(client, query)
            return self._failed(started, f"{type(err).__name__}: {err}")
        except openai.APITimeoutError:
            return self._failed(started, f"APITimeoutError: no whole response within eval.api.timeout_s "
                                         f"({self.timeout_s:g} s) in {self.attempts} attempt(s)")  # fmt: skip
        except openai.OpenAIError as err:
            return self._failed(started, f"{type(err).__name__}: {err}")
        ms = (time.perf_counter() - started) * 1000
        try:
            answer = read_completion(raw.http_response.content, self.secrets)
        except Malformed as err:
            return self._failed(started, f"malformed response (HTTP {raw.http_response.status_code}): {err}")
        if answer.tokens is None and self.logprobs:
            self._no_logprobs("returned no logprobs")
        return Reply(
            text=answer.text, tokens=answer.tokens, latency_ms=ms,
            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
        )  # fmt: skip


class ClassifyHFEngine:
    """A transformers model in this process: `generate` (greedy, top-5 logprobs per token, like the
    API engine) or `loglik` (each candidate label scored after the prompt, as lm-evaluation-harness
    scores multiple choice: the sum of its tokens' log-probabilities)."""

    ANSWER_PREFIX = '{"predictions": [{"category": "'

    def __init__(self, load: Callable[[], tuple[Any, Any]], ident: str, mode: str, settings: dict[str, Any],
                 cache: ResponseCache, stats: Stats) -> None:  # fmt: skip
        self._load, self.ident, self.mode = load, ident, mode
        self.model: Any = None
        self.tokenizer: Any = None
        self.settings = {**settings, "hf_mode": mode}
        self.cache, self.stats = cache, stats
        self.secrets = secret_values()

    def run(self, queries: Sequence[Query], done: Done) -> list[Reply]:
        out = []
        for query in queries:
            key = request_key(
                self.ident, self.ident, self.settings, [list(query.messages), list(query.labels)]
            )
            hit = self.cache.get(key)
            cached = Reply.from_cache(hit) if hit is not None else None
            if cached is not None:
                self.stats.cached += 1
                reply = cached.redacted(self.secrets)
            else:
                if self.model is None:  # loaded at the first answer not in the cache: a rerun loads nothing
                    self.model, self.tokenizer = self._load()
                self.stats.requests_sent += 1
                started = time.perf_counter()
                reply = self._loglik(query) if self.mode == "loglik" else self._generate(query)
                reply.latency_ms = (time.perf_counter() - started) * 1000
                reply = reply.redacted(self.secrets)
                self.cache.put(key, self.ident, self.ident, reply.to_cache())
            done(reply)
            out.append(reply)
        return out

    def _prompt_ids(self, query: Query) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            list(query.messages), add_generation_prompt=True, tokenize=True
        )
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def _generate(self, query: Query) -> Reply:
        import torch

        ids = self._prompt_ids(query)
        with torch.inference_mode():
            out = self.model.generate(
                torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=self.settings["max_tokens"], do_sample=False, output_scores=True,
                return_dict_in_generate=True, pad_token_id=self.tokenizer.eos_token_id,
                temperature=None, top_p=None, top_k=None,
            )  # fmt: skip
        new = out.sequences[0, len(ids) :].tolist()
        eos = self.tokenizer.eos_token_id
        tokens = []
        for tok, scores in zip(new, out.scores, strict=False):
            if tok == eos:
                break
            logp = torch.log_softmax(scores[0].float(), dim=-1)
            top = torch.topk(logp, TOP_LOGPROBS)
            alts = zip(top.values.tolist(), top.indices.tolist(), strict=True)
            top_pairs = tuple((self.tokenizer.decode([i]), v) for v, i in alts)
            tokens.append(TokenLogprob(self.tokenizer.decode([tok]), float(logp[tok]), top_pairs))
        return Reply(text="".join(t.token for t in tokens), tokens=tokens, prompt_tokens=len(ids),
                     completion_tokens=len(tokens))  # fmt: skip

    def _loglik(self, query: Query) -> Reply:
        """Sum of log P(label tokens + closing quote | prompt + answer prefix) per candidate; the
        prompt runs once and each candidate continues from its cached keys and values."""
        import copy
        import inspect

        import torch

        prefix = self.tokenizer.encode(self.ANSWER_PREFIX, add_special_tokens=False)
        context = self._prompt_ids(query) + prefix
        conts = [self.tokenizer.encode(label + '"', add_special_tokens=False) for label in query.labels]
        scores: dict[str, float] = {}
        # transformers 5 calls the key/value cache `cache`; 4.x `past_key_values`
        key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([context]), use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            for label, cont in zip(query.labels, conts, strict=True):
                total = float(first[cont[0]])
                if len(cont) > 1:
                    past = {key: copy.deepcopy(getattr(out, key))}
                    step = self.model(input_ids=torch.tensor([cont[:-1]]), use_cache=True, **past)
                    logp = torch.log_softmax(step.logits[0].float(), dim=-1)
                    total += float(sum(logp[i, t] for i, t in enumerate(cont[1:])))
                scores[label] = total
        best = max(scores, key=lambda k: scores[k])
        return Reply(text=best, scores=scores, prompt_tokens=len(context),
                     completion_tokens=sum(len(c) for c in conts))  # fmt: skip


def softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}
