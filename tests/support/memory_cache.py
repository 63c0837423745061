"""An in-memory ``CacheWriter`` for engine unit tests (storage itself is tested on Azurite)."""

from __future__ import annotations

from typing import Any

from core.kernel.jsonvalue import canonical


class DictCache:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set(self, key: Any, value: Any) -> None:
        self.values[canonical(key)] = value

    def delete(self, key: Any) -> None:
        self.values.pop(canonical(key), None)
