"""The one interface every conversation store implements for the export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from convclass.export.mapping import Normalized, Skipped
from convclass.export.window import TimeWindow

SourceKind = Literal["mongodb", "opensearch", "files"]


@dataclass(frozen=True)
class ExportQuery:
    """What to read: one tenant's conversations labelled with ``label_field``, changed within ``window``."""

    tenant: str
    label_field: str
    window: TimeWindow


class ConversationSource(Protocol):
    """Streams the first inbound email of each matching conversation.

    Implementations read in bounded batches (memory stays flat whatever the tenant's size), retry transient
    failures and raise :class:`~convclass.errors.SourceUnavailable` when the store stays unreachable. Every
    document read yields exactly one item, so ``read == exported + skipped`` holds for every export.
    """

    kind: SourceKind

    def describe(self) -> str:
        """Where the data comes from, for the manifest: never contains credentials."""
        ...

    def conversations(self, query: ExportQuery) -> Iterator[Normalized | Skipped]: ...

    def count(self, query: ExportQuery) -> int | None:
        """How many documents :meth:`conversations` would read, from the store's own count (an index, a
        listing); None when only reading them would tell. The export plan's size rule goes by it."""
        ...

    def unreadable_locations(self) -> list[str]:
        """Files or shards that could not be read to the end (listed in the manifest; empty for databases)."""
        ...

    def close(self) -> None: ...
