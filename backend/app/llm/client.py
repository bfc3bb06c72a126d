"""Async client for an OpenAI-compatible chat server (llama.cpp first).

Why hand-rolled on httpx rather than the openai SDK: we need three things the SDK
does not give us together: streaming whose cancellation closes the HTTP connection
(so llama.cpp stops generating for a gone client), token counting through the
server's own tokenizer (`/tokenize` on llama-server, `/extras/tokenize` on
llama_cpp.server), and errors translated into messages that say what to start.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx

from app.errors import ApplianceError
from app.settings import Settings


class LLMUnavailableError(ApplianceError):
    """The LLM server cannot be reached, is failing, or timed out (HTTP 503)."""


class LLMInterruptedError(LLMUnavailableError):
    """The LLM server failed in the middle of an answer; what came before is incomplete."""


@dataclass
class StreamResult:
    """Filled in while a stream runs; complete once the stream ends."""

    text: str = ""
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    first_token_s: float | None = None
    started: float = field(default_factory=time.perf_counter)


class LLMClient:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.base_url = settings.llm.llm_base_url.rstrip("/")
        self.root_url = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        headers = {}
        if settings.llm.llm_api_key:
            headers["Authorization"] = f"Bearer {settings.llm.llm_api_key.get_secret_value()}"
        self.http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(settings.llm.llm_timeout_s, connect=settings.llm.llm_connect_timeout_s),
            transport=transport,
        )
        self._model: str | None = settings.llm.llm_model
        self._tokenize_style: str | None = None  # "llama-server" | "llama-cpp-python" | "none"
        self._vocab = None  # a vocabulary-only llama_cpp.Llama, False if unavailable
        self.last_token_at: float | None = None  # when a streamed token last arrived (readiness)

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- discovery -----------------------------------------------------------
    async def list_models(self) -> list[str]:
        data = await self._request("GET", f"{self.base_url}/models", timeout=5.0)
        return [m.get("id", "") for m in data.get("data", [])]

    @property
    def known_model(self) -> str | None:
        """The model's name if already known (no request)."""
        return self._model

    async def model_name(self) -> str:
        if self._model is None:
            models = await self.list_models()
            if not models:
                raise LLMUnavailableError(f"The LLM server at {self.base_url} lists no model yet; wait for it to load.")
            self._model = models[0]
        return self._model

    async def probe(self, busy: bool, timeout_s: float = 2.0) -> tuple[str, str | None]:
        """The LLM server's state for readiness: ("up" | "busy" | "down", why not up).

        Never waits behind a generation: while answers are in flight and a token arrived
        in the last half minute, the server is busy and that is the answer, at once. A
        check that connects but gets no answer in time is "busy" while answers are in
        flight (llama_cpp.server answers one request at a time), "down" otherwise."""
        if busy and self.last_token_at and time.monotonic() - self.last_token_at < 30:
            return "busy", None
        try:
            response = await self.http.get(f"{self.base_url}/models", timeout=httpx.Timeout(timeout_s))
        except httpx.TimeoutException as exc:
            if busy and not isinstance(exc, httpx.ConnectTimeout):
                return "busy", None
            return "down", str(self._unavailable(exc))
        except httpx.HTTPError as exc:
            return "down", str(self._unavailable(exc))
        if response.status_code != 200:
            return "down", str(self._http_error(response.status_code, response.text[:300]))
        return "up", None

    # -- tokens --------------------------------------------------------------
    def _local_tokenizer(self):
        """The served GGUF's own tokenizer, loaded vocabulary-only, when we know the file.

        Why: python -m llama_cpp.server runs /extras/tokenize under the same lock as
        generation, so with several students a token count would queue behind their
        answers. The startup script sets RAG_LLM_MODEL_PATH to the file it serves.
        """
        if self._vocab is None:
            path = self.settings.llm.llm_model_path
            self._vocab = False
            if path and path.is_file():
                try:
                    import llama_cpp

                    self._vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
                except Exception:  # no llama_cpp, or not a GGUF: use the server instead
                    self._vocab = False
        return self._vocab or None

    def prepare(self) -> bool:
        """Load the served model's tokenizer now, at start-up, not on a student's first
        question (SmolLM2: 0.1-0.3 s here; a 7B GGUF's vocabulary is larger). Whether there is one."""
        return self._local_tokenizer() is not None

    async def count_tokens(self, text: str) -> int:
        """Tokens of `text` by the LLM's own tokenizer; where neither the model file nor
        the server offers one (a hosted API), an estimate (`estimated_tokens`)."""
        if not text:
            return 0
        local = self._local_tokenizer()
        if local is not None:
            return len(local.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        styles = [self._tokenize_style] if self._tokenize_style else ["llama-server", "llama-cpp-python"]
        for style in styles:
            if style == "none":
                return estimated_tokens(text)
            url, body = (
                (f"{self.root_url}/tokenize", {"content": text, "add_special": False})
                if style == "llama-server"
                else (f"{self.root_url}/extras/tokenize", {"input": text})
            )
            try:
                # the full answer timeout: on a busy llama_cpp.server this waits for the lock
                response = await self.http.post(url, json=body)
            except httpx.HTTPError as exc:
                raise self._unavailable(exc) from exc
            if response.status_code == 200 and "tokens" in response.json():
                self._tokenize_style = style
                return len(response.json()["tokens"])
        self._tokenize_style = "none"
        return estimated_tokens(text)

    # -- generation ----------------------------------------------------------
    async def complete(self, messages: list[dict], max_tokens: int, timeout_s: float | None = None,
                       temperature: float | None = None) -> str:
        body = await self._body(messages, max_tokens, stream=False)
        if temperature is not None:
            body["temperature"] = temperature
        data = await self._request("POST", f"{self.base_url}/chat/completions", json=body, timeout=timeout_s)
        return (data["choices"][0]["message"].get("content") or "").strip()

    async def stream(self, messages: list[dict], max_tokens: int, result: StreamResult,
                     temperature: float | None = None) -> AsyncIterator[str]:
        """Yield text deltas; fill `result`. Closing the iterator closes the connection.

        An answer is complete only when the server says why it ended (a finish reason)
        or sends [DONE]. An `error:` line (llama-server's way to report a failure mid-
        stream), an error object, or a stream that simply stops raises LLMInterruptedError:
        a cut answer must never be taken, and stored, as a whole one."""
        body = await self._body(messages, max_tokens, stream=True)
        if temperature is not None:
            body["temperature"] = temperature
        ended = False
        try:
            async with self.http.stream("POST", f"{self.base_url}/chat/completions", json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode(errors="replace")[:300]
                    raise self._http_error(response.status_code, detail)
                async for line in response.aiter_lines():
                    if line.startswith("error:"):
                        raise self._interrupted(line[6:].strip())
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        ended = True
                        break
                    try:
                        event = json.loads(payload)
                    except json.JSONDecodeError:
                        raise self._interrupted(f"an unreadable line: {payload[:100]}") from None
                    if event.get("error"):
                        raise self._interrupted(json.dumps(event["error"])[:300])
                    if event.get("usage"):
                        result.prompt_tokens = event["usage"].get("prompt_tokens")
                        result.completion_tokens = event["usage"].get("completion_tokens") or result.completion_tokens
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content") or ""
                        if choice.get("finish_reason"):
                            result.finish_reason = choice["finish_reason"]
                        if delta:
                            self.last_token_at = time.monotonic()
                            if result.first_token_s is None:
                                result.first_token_s = time.perf_counter() - result.started
                            result.text += delta
                            if not event.get("usage"):
                                result.completion_tokens += 1
                            yield delta
        except httpx.HTTPError as exc:
            if result.text:
                raise self._interrupted(f"the connection broke ({type(exc).__name__})") from exc
            raise self._unavailable(exc) from exc
        if not ended and result.finish_reason is None:
            raise self._interrupted("the stream ended without a finish reason")

    # -- helpers -------------------------------------------------------------
    async def _body(self, messages: list[dict], max_tokens: int, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": await self.model_name(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.settings.llm.llm_temperature,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def _request(self, method: str, url: str, json: Any = None, timeout: float | None = None) -> dict:
        try:
            response = await self.http.request(method, url, json=json, timeout=timeout or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from exc
        if response.status_code != 200:
            raise self._http_error(response.status_code, response.text[:300])
        return response.json()

    def _unavailable(self, exc: Exception) -> LLMUnavailableError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return LLMUnavailableError(
                f"The LLM server at {self.base_url} did not answer in time. It may be overloaded or "
                "still loading the model; try again in a moment, or raise RAG_LLM_TIMEOUT_S."
            )
        return LLMUnavailableError(
            f"The LLM server at {self.base_url} is not reachable. Start it (./runpod_simple_startup.sh "
            "starts everything) or set RAG_LLM_BASE_URL to a running OpenAI-compatible server."
        )

    def _interrupted(self, why: str) -> LLMInterruptedError:
        return LLMInterruptedError(
            f"The LLM server at {self.base_url} stopped in the middle of the answer ({' '.join(why.split())[:200]}). "
            "Ask again in a moment."
        )

    def _http_error(self, status: int, detail: str) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"The LLM server at {self.base_url} answered HTTP {status}: {' '.join(detail.split())[:200]}"
        )


# Words and marks of punctuation per LLM token, on the safe side: BPE vocabularies give
# an English word about 1.3 tokens, more for code and rare words.
_TOKENS_PER_PIECE = 1.4
_PIECE = re.compile(r"\w+|[^\w\s]")


def estimated_tokens(text: str) -> int:
    """Tokens of `text` by an LLM whose tokenizer we cannot ask: its words and marks,
    with a margin, so that a prompt's budget errs short of the context window."""
    return int(len(_PIECE.findall(text)) * _TOKENS_PER_PIECE) + 1
