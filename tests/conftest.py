"""Settings every test session shares."""

from __future__ import annotations

import os

# Tests look at what builds print, and time them: an image that an earlier test, or an
# earlier run of the suite, built from the same inputs would be reused instead (see
# devloop/build/build_cache.py). The cache's own tests turn it on, each with a state
# directory of its own.
os.environ["DEVLOOP_BUILD_CACHE"] = "0"
