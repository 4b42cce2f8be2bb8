"""A provider for tests: canned replies in, every request kept in `history`.

    fake = FakeProvider()
    fake.enqueue({"summary": "…", "root_causes": [...]})   # a reply (dict or ProviderReply)
    fake.enqueue(ProviderError("boom"))                     # or an error to raise
    … escalate(…, provider="fake") …
    fake.history[-1].messages                               # what was sent

`FakeProvider.shared()` is the instance `get_provider("fake")` returns, so tests that go
through the public API can reach it; `reset()` empties it.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any, ClassVar

from escalation.providers.base import ProviderReply, ProviderRequest, Usage

__all__ = ["FakeProvider"]


class FakeProvider:
    name = "fake"
    _shared: ClassVar[FakeProvider | None] = None

    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.history: list[ProviderRequest] = []
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> FakeProvider:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def reset(self) -> None:
        with self._lock:
            self.history.clear()
            self._queue.clear()

    def enqueue(self, item: dict[str, Any] | ProviderReply | BaseException) -> None:
        with self._lock:
            self._queue.append(item)

    def generate(self, request: ProviderRequest) -> ProviderReply:
        with self._lock:
            self.history.append(request)
            if not self._queue:
                raise AssertionError("FakeProvider: nothing enqueued for this call")
            item = self._queue.popleft()
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, ProviderReply):
            return item
        text = json.dumps(item)
        usage = Usage(sum(len(m.text) for m in request.messages) // 4, len(text) // 4, 0)
        return ProviderReply(text, dict(item), usage, self.model, checked_by_model=True)

    def count_tokens(self, request: ProviderRequest) -> int | None:
        return None
