"""`link()` and the `links=` argument shared by k8s_resource and local_resource."""

from __future__ import annotations

from typing import Any

from devloop.model import plan as p
from devloop.tiltfile.context import struct, struct_kind, type_name, want_str
from devloop.tiltfile.errors import BuiltinError


def link(url: str, name: str = "") -> dict[str, Any]:
    """link(url, name=''): a URL shown beside a resource."""
    return struct("link", url=want_str("link", "url", url), name=want_str("link", "name", name))


def parse_links(fn: str, value: Any) -> tuple[p.Link, ...]:
    """A URL string, a link(), or a list of either."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    links: list[p.Link] = []
    for item in items:
        if isinstance(item, str):
            links.append(p.Link(item))
        elif struct_kind(item) == "link":
            links.append(p.Link(item["url"], item["name"]))
        else:
            raise BuiltinError(f"{fn}: for parameter 'links': got {type_name(item)}, "
                               "want string or link()")
    return tuple(links)
