"""Benchmark: rebuild after a one-line source change, BuildKit against the legacy builder.

How: devloop's own builder (`DockerBuilder`, the code `devloop up` runs) builds a private
copy of a service once to warm the caches, then for each sample changes one line of its
source and rebuilds; the clock covers the whole `build()` call (filtering and sending the
context, the build, tagging). Every builder gets the same change on the same Dockerfile.
Services:

- go: examples/hello/go with a Dockerfile both builders can build (no cache mount);
- go+cache: the example's real Dockerfile (`# syntax=` and `RUN --mount=type=cache` for
  Go's build cache), which only BuildKit builds;
- python: examples/shop/api (pip install layer cached, app.py changed).

    python bench/buildkit_rebuild.py [samples]
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support import ROOT, _testenv_exports

from devloop.build.docker_builder import BuilderKind, DockerBuilder
from devloop.model import plan

GO_PLAIN_DOCKERFILE = """FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod ./
COPY *.go ./
RUN CGO_ENABLED=0 go build -o /out/hello-go .

FROM busybox
COPY --from=build /out/hello-go /usr/local/bin/hello-go
ENTRYPOINT ["/usr/local/bin/hello-go"]
"""

# (row name, source dir, Dockerfile override or None, file to edit, regex, builders)
SERVICES = [
    ("go", ROOT / "examples/hello/go", GO_PLAIN_DOCKERFILE, "main.go",
     r'const Version = "[^"]*"', 'const Version = "{v}"',
     (BuilderKind.LEGACY, BuilderKind.BUILDKIT)),
    ("go+cache", ROOT / "examples/hello/go", None, "main.go",
     r'const Version = "[^"]*"', 'const Version = "{v}"', (BuilderKind.BUILDKIT,)),
    ("python", ROOT / "examples/shop/api", None, "app.py",
     r'VERSION = "[^"]*"', 'VERSION = "{v}"', (BuilderKind.LEGACY, BuilderKind.BUILDKIT)),
]


def _quiet(_line: str) -> None:
    pass


async def _measure(kind: BuilderKind, target: plan.DockerBuild, source: Path, pattern: str,
                   replacement: str, samples: int) -> list[float]:
    builder = DockerBuilder(kind=kind)
    await builder.build(target, log=_quiet)  # warm: base layers and caches
    times = []
    for i in range(samples):
        text = source.read_text()
        version = f"{kind.value}-{i}-{time.time_ns()}"
        source.write_text(re.sub(pattern, replacement.format(v=version), text))
        start = time.perf_counter()
        await builder.build(target, log=_quiet)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    _testenv_exports()
    print(f"rebuild after a one-line change, {samples} samples each (seconds)")
    print(f"{'service':<10} {'builder':<9} {'median':>7} {'min':>7} {'max':>7}")
    for name, src, dockerfile, edited, pattern, replacement, kinds in SERVICES:
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="devloop-bench-bk-") as tmp:
                project = Path(tmp) / "src"
                shutil.copytree(src, project)
                target = plan.DockerBuild(
                    ref=f"devloop-bench-{name.replace('+', '-')}", context=str(project),
                    dockerfile=str(project / "Dockerfile"), dockerfile_contents=dockerfile)
                times = asyncio.run(_measure(kind, target, project / edited, pattern,
                                             replacement, samples))
            print(f"{name:<10} {kind.value:<9} {statistics.median(times):7.2f} "
                  f"{min(times):7.2f} {max(times):7.2f}", flush=True)


if __name__ == "__main__":
    main()
