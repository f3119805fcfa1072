"""A message's top-level headers as read: in order, indexed by name, decoded on demand."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.parse.html_text import decode_header_text


@dataclass(frozen=True)
class HeaderView:
    """The top-level headers in order; values unfolded, encoded words kept in ``raw``."""

    items: tuple[tuple[str, str], ...] = ()
    _index: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, items: tuple[tuple[str, str], ...]) -> HeaderView:
        """Build the view with a case-insensitive index."""
        index: dict[str, list[str]] = {}
        for name, value in items:
            index.setdefault(name.lower(), []).append(value)
        return cls(items, {name: tuple(values) for name, values in index.items()})

    def raw_all(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name``, unfolded but not RFC 2047-decoded."""
        return self._index.get(name.lower(), ())

    def raw(self, name: str) -> str | None:
        """The first value of header ``name`` as sent (unfolded), or None."""
        values = self.raw_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name``, decoded and whitespace-folded."""
        return tuple(decode_header_text(value) for value in self.raw_all(name))

    def get(self, name: str) -> str | None:
        """The first value of header ``name``, decoded and whitespace-folded, or None."""
        value = self.raw(name)
        return None if value is None else decode_header_text(value)

    def count(self, name: str) -> int:
        """How many times header ``name`` appears."""
        return len(self.raw_all(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __len__(self) -> int:
        return len(self.items)

    def as_dict(self) -> dict[str, str]:
        """First decoded value of each header, keyed by its name as first sent."""
        result: dict[str, str] = {}
        for name, value in self.items:
            result.setdefault(name, decode_header_text(value))
        return result
