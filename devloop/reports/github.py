"""GitHub Actions workflow commands for a ci run's failures (`::error title=...::message`)."""

from __future__ import annotations

from devloop.reports.model import RunReport, Verdict

# Lines of the log excerpt repeated in an annotation: the annotation shows in the run's
# summary, where a few lines say more than forty.
ANNOTATION_LOG_LINES = 10


def escape_data(text: str) -> str:
    """A command's message, escaped as GitHub's toolkit does (`%`, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (title=...): also `:` and `,`, which would end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_annotations(report: RunReport) -> list[str]:
    """One `::error` line per failed resource (none when the run succeeded)."""
    out = []
    for result in report.resources:
        if result.verdict != Verdict.FAILED:
            continue
        body = "\n".join([result.message, *result.log_excerpt[-ANNOTATION_LOG_LINES:]])
        where = ""
        if result.file:
            where = f"file={escape_property(result.file)},"
            where += f"line={result.line}," if result.line > 0 else ""
        out.append(f"::error {where}title={escape_property(f'devloop ci: {result.name}')}::"
                   f"{escape_data(body)}")
    return out
