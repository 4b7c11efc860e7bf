"""A minimal server-sent events reader: lines in, ``(event, data)`` pairs out.

Why not a library: the API sends one ``event:`` and one ``data:`` JSON line per message plus
``:`` comment lines as keep-alives; a dozen lines cover the format (WHATWG "event stream").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

KEEPALIVE = "keepalive"


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str


def read_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Yield each complete message; a keep-alive comment yields ``ServerEvent("keepalive", "")``.

    Keep-alives are yielded (not swallowed) so a caller waiting on a queued job still gets a turn
    to refresh the page and notice a click on Cancel.
    """
    event, data = "message", list[str]()
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ServerEvent(event, "\n".join(data))
            event, data = "message", list[str]()
        elif line.startswith(":"):
            yield ServerEvent(KEEPALIVE, "")
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield ServerEvent(event, "\n".join(data))
