"""Global settings builtins: update_settings, ci_settings, watch_settings, secret_settings,
version_settings, docker_prune_settings, set_team, analytics_settings, disable_snapshots,
trigger_mode, the enable_feature/disable_feature flags and Tilt's experimental_* settings.

Each call overrides only the arguments it passes, so several calls (say, one in an extension
and one in the Tiltfile) combine, as in Tilt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from devloop.tiltfile.context import (
    EvalContext,
    PlanDraft,
    type_name,
    want_bool,
    want_int,
    want_str,
    want_str_list,
)
from devloop.tiltfile.errors import BuiltinError, Location
from devloop.tiltfile.files_area import builtin_name
from devloop.tiltfile.local_area import parse_trigger_mode

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")

# Tilt's feature flags over the years; all of them are on (or irrelevant) in devloop.
KNOWN_FEATURES = frozenset({
    "snapshots", "update_history", "events", "labels", "disable_resources",
    "offline_snapshot_creation", "live_update_v2", "facets", "multiple_containers_per_pod",
    "k8s_server_side_apply", "manifest_sort_order",
})

_SEMVER_CONSTRAINT = re.compile(
    r"^\s*(?:(?:[<>]=?|[=!~^]=?|==)?\s*v?\d+(?:\.(?:\d+|x|\*)){0,2}(?:-[0-9A-Za-z.-]+)?"
    r"(?:\s+|\s*,\s*|\s*\|\|\s*)?)+$")


def parse_go_duration(fn: str, param: str, value: Any) -> float:
    """Seconds in a Go duration string ("30s", "1m30s", "1.5h", "300ms", "0"); an int is a
    number of seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    text = want_str(fn, param, value, allow_blob=False)
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise BuiltinError(f"{fn}: for parameter '{param}': time: invalid duration {text!r}")
    return sign * total


def _whole_seconds(seconds: float) -> int:
    """Durations in the Plan are whole seconds; a positive sub-second value rounds up to 1."""
    if 0 < seconds < 1:
        return 1
    return int(round(seconds))


class SettingsArea:
    """Settings that shape the whole session rather than one resource."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.update: dict[str, Any] = {}
        self.ci: dict[str, Any] = {}
        self.watch_ignore: list[str] = []
        self.secrets: dict[str, Any] = {}
        self.settings: dict[str, Any] = {}
        self._trigger_mode_at: Location | None = None
        self._trigger_mode_set = False

    def builtins(self) -> Mapping[str, Any]:
        return {
            "update_settings": self.update_settings,
            "ci_settings": self.ci_settings,
            "watch_settings": self.watch_settings,
            "secret_settings": self.secret_settings,
            "version_settings": self.version_settings,
            "docker_prune_settings": self.docker_prune_settings,
            "set_team": self.set_team,
            "analytics_settings": self.analytics_settings,
            "disable_snapshots": self.disable_snapshots,
            "enable_feature": self.enable_feature,
            "disable_feature": self.disable_feature,
            "trigger_mode": self.trigger_mode,
            "experimental_metrics_settings": self.experimental_metrics_settings,
            "experimental_telemetry_cmd": self.experimental_telemetry_cmd,
            "experimental_analytics_report": self.experimental_analytics_report,
        }

    def environ_builtins(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def contribute(self, draft: PlanDraft) -> None:
        draft.update_settings.update(self.update)
        draft.ci_settings.update(self.ci)
        draft.watch_ignore.extend(p for p in self.watch_ignore if p not in draft.watch_ignore)
        draft.secret_settings.update(self.secrets)
        draft.settings.update(self.settings)

    @builtin_name("update_settings")
    def update_settings(self, max_parallel_updates: Any = None,
                        k8s_upsert_timeout_secs: Any = None,
                        suppress_unused_image_warnings: Any = None,
                        k8s_server_side_apply: Any = None) -> None:
        """update_settings(max_parallel_updates=3, k8s_upsert_timeout_secs=30,
        suppress_unused_image_warnings=None, k8s_server_side_apply="auto"): how many resources
        update at once, the apply/delete timeout, images not to warn about when no resource
        uses them (added to earlier calls), and server-side apply (True, False or "auto")."""
        fn = "update_settings"
        if max_parallel_updates is not None:
            count = want_int(fn, "max_parallel_updates", max_parallel_updates)
            if count < 1:
                raise BuiltinError(f"{fn}: max number of parallel updates must be >= 1 "
                                   f"(got: {count})")
            self.update["max_parallel_updates"] = count
        if k8s_upsert_timeout_secs is not None:
            timeout = want_int(fn, "k8s_upsert_timeout_secs", k8s_upsert_timeout_secs)
            if timeout < 1:
                raise BuiltinError(f"{fn}: minimum k8s upsert timeout is 1s; got {timeout}s")
            self.update["k8s_upsert_timeout_secs"] = timeout
        if suppress_unused_image_warnings is not None:
            images = want_str_list(fn, "suppress_unused_image_warnings",
                                   suppress_unused_image_warnings)
            known = list(self.update.get("suppress_unused_image_warnings", ()))
            known.extend(i for i in images if i not in known)
            self.update["suppress_unused_image_warnings"] = tuple(known)
        if k8s_server_side_apply is not None:
            self.update["k8s_server_side_apply"] = self._ssa_mode(k8s_server_side_apply)

    @staticmethod
    def _ssa_mode(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("auto", "true", "false"):
            return value.lower()
        raise BuiltinError("update_settings: for parameter 'k8s_server_side_apply': got "
                           f"{value!r}, want True, False or \"auto\"")

    @builtin_name("ci_settings")
    def ci_settings(self, k8s_grace_period: Any = None, timeout: Any = None,
                    readiness_timeout: Any = None) -> None:
        """ci_settings(k8s_grace_period='', timeout='30m', readiness_timeout='5m'): for
        `ci` mode, how long a failing Kubernetes resource may recover, the overall timeout, and
        how long a resource may stay not ready. Values are Go durations ("90s", "10m")."""
        fn = "ci_settings"
        for param, value, key in (("k8s_grace_period", k8s_grace_period,
                                   "k8s_grace_period_secs"),
                                  ("timeout", timeout, "timeout_secs"),
                                  ("readiness_timeout", readiness_timeout,
                                   "readiness_timeout_secs")):
            if value is None or value == "":
                continue
            seconds = parse_go_duration(fn, param, value)
            if seconds < 0:
                raise BuiltinError(f"{fn}: for parameter '{param}': must not be negative")
            self.ci[key] = _whole_seconds(seconds)

    @builtin_name("watch_settings")
    def watch_settings(self, ignore: Any = None) -> None:
        """watch_settings(ignore): .tiltignore-style patterns (relative to the main Tiltfile's
        directory) that no file watch reacts to. Calls add up."""
        for pattern in want_str_list("watch_settings", "ignore", ignore):
            if pattern.strip() and pattern not in self.watch_ignore:
                self.watch_ignore.append(pattern)

    @builtin_name("secret_settings")
    def secret_settings(self, disable_scrub: Any = False) -> None:
        """secret_settings(disable_scrub=False): with True, values of Kubernetes Secrets the
        session applies are no longer scrubbed from logs."""
        self.secrets["disable_scrub"] = want_bool("secret_settings", "disable_scrub",
                                                  disable_scrub)

    @builtin_name("version_settings")
    def version_settings(self, check_updates: Any = None, constraint: Any = "") -> None:
        """version_settings(check_updates=True, constraint=""): `constraint` is a semver range
        on the Tilt version the Tiltfile expects (">=0.22.0"); it is checked for syntax and
        recorded. devloop never checks for updates: `check_updates` is ignored, with a
        warning."""
        if check_updates is not None:
            want_bool("version_settings", "check_updates", check_updates)
            self.ctx.warn("version_settings: parameter 'check_updates' is ignored: devloop "
                          "never checks for updates")
        text = want_str("version_settings", "constraint", constraint, allow_blob=False)
        if text and not _SEMVER_CONSTRAINT.match(text):
            raise BuiltinError(f"version_settings: invalid version constraint {text!r}")
        if text:
            self.settings["version_constraint"] = text

    @builtin_name("docker_prune_settings")
    def docker_prune_settings(self, disable: Any = False, max_age_mins: Any = 360,
                              num_builds: Any = 0, interval_hrs: Any = 1,
                              keep_recent: Any = 2) -> None:
        """docker_prune_settings(disable=False, max_age_mins=360, num_builds=0, interval_hrs=1,
        keep_recent=2): pruning of old images built for this project; only `disable` has an
        effect in devloop, the rest are checked and, set to anything but their default,
        ignored with a warning."""
        fn = "docker_prune_settings"
        off = want_bool(fn, "disable", disable)
        for param, value, default in (("max_age_mins", max_age_mins, 360),
                                      ("num_builds", num_builds, 0),
                                      ("interval_hrs", interval_hrs, 1),
                                      ("keep_recent", keep_recent, 2)):
            if want_int(fn, param, value) != default:
                self.ctx.warn(f"{fn}: parameter '{param}' is ignored: devloop prunes by "
                              "`disable` only")
        self.settings["docker_prune_enabled"] = not off

    @builtin_name("set_team")
    def set_team(self, team_id: Any) -> None:
        """set_team(team_id): Tilt Cloud team association; recorded, no effect."""
        team = want_str("set_team", "team_id", team_id, allow_blob=False)
        if not team:
            raise BuiltinError("set_team: team_id cannot be empty")
        previous = self.settings.get("team_id")
        if previous and previous != team:
            raise BuiltinError(f"set_team: team_id set multiple times (to {previous!r} and "
                               f"{team!r})")
        self.settings["team_id"] = team

    @builtin_name("analytics_settings")
    def analytics_settings(self, enable: Any = None) -> None:
        """analytics_settings(enable): accepted and ignored with a warning; devloop sends no
        analytics."""
        if enable is not None:
            want_bool("analytics_settings", "enable", enable)
            self.ctx.warn("analytics_settings: parameter 'enable' is ignored: devloop sends "
                          "no analytics")

    @builtin_name("trigger_mode")
    def trigger_mode(self, trigger_mode: Any) -> None:
        """trigger_mode(trigger_mode): the trigger mode (TRIGGER_MODE_AUTO or
        TRIGGER_MODE_MANUAL) of every resource that does not set its own. Once per
        Tiltfile."""
        fn = "trigger_mode"
        mode = parse_trigger_mode(fn, trigger_mode)
        if self._trigger_mode_set:
            where = f" at {self._trigger_mode_at}" if self._trigger_mode_at else ""
            raise BuiltinError(f"{fn} can only be called once. It was already called{where}")
        self._trigger_mode_set = True
        self._trigger_mode_at = self.ctx.location()
        self.settings["default_trigger_mode"] = mode

    @builtin_name("experimental_metrics_settings")
    def experimental_metrics_settings(self, *args: Any, **kwargs: Any) -> None:
        """experimental_metrics_settings(...): Tilt's retired metrics export; accepted and
        ignored with a warning (Tilt also only warns that it is deprecated)."""
        self.ctx.warn("experimental_metrics_settings() is deprecated and ignored")

    @builtin_name("experimental_telemetry_cmd")
    def experimental_telemetry_cmd(self, cmd: Any, cmd_bat: Any = None, period: Any = None,
                                   dir: Any = None) -> None:
        """experimental_telemetry_cmd(cmd): a command Tilt feeds its traces to; devloop
        records no traces, so it is ignored with a warning."""
        self.ctx.warn("experimental_telemetry_cmd() is ignored: devloop records no telemetry")

    @builtin_name("experimental_analytics_report")
    def experimental_analytics_report(self, tags: Any) -> None:
        """experimental_analytics_report(tags): custom analytics tags; devloop sends no
        analytics, so they are ignored with a warning."""
        self.ctx.warn("experimental_analytics_report() is ignored: devloop sends no analytics")

    @builtin_name("disable_snapshots")
    def disable_snapshots(self) -> None:
        """disable_snapshots(): hides snapshot sharing in the UI."""
        self.settings["snapshots_disabled"] = True

    @builtin_name("enable_feature")
    def enable_feature(self, feature_name: Any) -> None:
        """enable_feature(feature_name): Tilt's feature flags; accepted, with a warning for a
        flag Tilt never had."""
        self._feature("enable_feature", feature_name)

    @builtin_name("disable_feature")
    def disable_feature(self, feature_name: Any) -> None:
        """disable_feature(feature_name): as enable_feature."""
        self._feature("disable_feature", feature_name)

    def _feature(self, fn: str, feature_name: Any) -> None:
        if not isinstance(feature_name, str):
            raise BuiltinError(f"{fn}: for parameter 'feature_name': got "
                               f"{type_name(feature_name)}, want string")
        if feature_name not in KNOWN_FEATURES:
            self.ctx.warn(f"{fn}: unknown feature flag {feature_name!r}; ignored")
