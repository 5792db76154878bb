"""Reports of a `devloop ci` run for CI systems: JUnit XML, JSON, GitHub annotations."""

from devloop.reports.model import ResourceResult, RunReport, collect
from devloop.reports.write import write_ci_reports, write_setup_failure_reports

__all__ = ["ResourceResult", "RunReport", "collect", "write_ci_reports",
           "write_setup_failure_reports"]
