"""Which resource a changed file belongs to, after every ignore rule Tilt users expect.

Rules: the Tiltfile and every file it read reload the Tiltfile; an image's build context
(minus its .dockerignore, `ignore=` and outside `only=`) updates every resource that
deploys the image; a local_resource's `deps` (minus its `ignore=`) update it. The
project's `.tiltignore`, `.gitignore` and `watch_settings(ignore=...)` apply everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from devloop.build.dockerfile_deps import with_image_deps
from devloop.engine.watcher import matches_any, read_ignore_file
from devloop.model import plan as p


@dataclass(frozen=True)
class Route:
    resource: str
    root: str
    ignore: tuple[str, ...]
    ignore_base: str
    only: tuple[str, ...] = ()

    def accepts(self, path: str) -> bool:
        if not (path == self.root or path.startswith(self.root.rstrip(os.sep) + os.sep)):
            return False
        if self.only and not any(path == o or path.startswith(o.rstrip(os.sep) + os.sep)
                                 for o in self.only):
            return False
        return not matches_any(path, self.ignore_base, self.ignore)


@dataclass(frozen=True)
class Routing:
    tiltfile_files: frozenset[str]
    routes: tuple[Route, ...]
    global_ignore: tuple[str, ...]
    base: str

    def roots(self) -> list[str]:
        return sorted({route.root for route in self.routes} | set(self.tiltfile_files))

    def route(self, changes: frozenset[str]) -> tuple[bool, dict[str, tuple[str, ...]]]:
        reload = any(path in self.tiltfile_files for path in changes)
        by_resource: dict[str, set[str]] = {}
        for path in changes:
            if matches_any(path, self.base, self.global_ignore):
                continue
            for route in self.routes:
                if route.accepts(path):
                    by_resource.setdefault(route.resource, set()).add(path)
        return reload, {name: tuple(sorted(files)) for name, files in by_resource.items()}


def routing_for(plan: p.Plan) -> Routing:
    plan = with_image_deps(plan)  # a change to a base image's context rebuilds its users
    base = os.path.dirname(plan.tiltfile)
    global_ignore = (*plan.settings.watch.ignore,
                     *read_ignore_file(os.path.join(base, ".tiltignore")),
                     *read_ignore_file(os.path.join(base, ".gitignore")))
    routes: list[Route] = []
    for resource in plan.resources:
        for image in plan.images_for(resource.image_refs):
            if isinstance(image, p.DockerBuild):
                context = image.context
                ignore = (*image.ignore,
                          *read_ignore_file(os.path.join(context, ".dockerignore")))
                only = tuple(os.path.normpath(os.path.join(context, o)) for o in image.only)
                routes.append(Route(resource.name, context, ignore, context, only))
            else:
                for dep in image.deps:
                    routes.append(Route(resource.name, dep, image.ignore, base))
        for dep in resource.deps:
            routes.append(Route(resource.name, dep, resource.ignore, base))
    return Routing(frozenset(plan.config_files), tuple(routes), global_ignore, base)
