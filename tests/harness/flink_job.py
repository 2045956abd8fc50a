"""The Flink SQL of ``deploy/flink/`` run by PyFlink on this machine, with only the connectors swapped.

    python -m tests.harness.flink_job BOOKINGS.jsonl OUTPUT_DIR

The source and sink tables keep their columns, watermark and formats; only their ``WITH (...)`` clauses
become the filesystem connector (no Kafka connector jar can be downloaded here). The window query is
``deploy/flink/window.sql`` as it is, unchanged. Streaming mode, parallelism 1, UTC: the bounded file ends
with a final watermark that closes every window, as an idle Kafka source would.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FLINK = Path(__file__).resolve().parents[2] / "deploy" / "flink"


def statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


def with_connector(statement: str, options: dict[str, str]) -> str:
    clause = ",\n".join(f"  '{k}' = '{v}'" for k, v in options.items())
    swapped, count = re.subn(r"\)\s*WITH\s*\((?s:.*)\)\s*;?\s*$", f") WITH (\n{clause}\n)", statement)
    assert count == 1, statement
    return swapped


def run(bookings: Path, output: Path) -> None:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("parallelism.default", "1")
    config.set("execution.checkpointing.interval", "1 s")
    source, sink = statements((FLINK / "tables.sql").read_text())
    env.execute_sql(with_connector(source, {
        "connector": "filesystem", "path": str(bookings), "format": "json",
        "json.timestamp-format.standard": "ISO-8601", "json.ignore-parse-errors": "true",
    }))
    env.execute_sql(with_connector(sink, {"connector": "filesystem", "path": str(output), "format": "json"}))
    view, insert = statements((FLINK / "window.sql").read_text())
    env.execute_sql(view)
    env.execute_sql(insert).wait()


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
