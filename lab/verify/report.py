"""The verifier's results as a table, JSON, or JUnit XML for CI systems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from rich.table import Table

from lab.verify.contract import FAIL, PASS, WARN, Result

COLOURS = {PASS: "green", WARN: "yellow", FAIL: "red"}


def by_framework(results: list[Result]) -> dict[str, list[Result]]:
    grouped: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        grouped[result.framework].append(result)
    return dict(grouped)


def summary_table(results: list[Result]) -> Table:
    """One row per framework and endpoint: pass, warn or fail, with the first reason."""
    table = Table("framework", "endpoint", "result", "checks", "reason")
    for framework, items in by_framework(results).items():
        endpoints: dict[str, list[Result]] = defaultdict(list)
        for item in items:
            endpoints[item.check.split(":")[0]].append(item)
        for endpoint, checks in endpoints.items():
            worst = (
                FAIL
                if any(c.status == FAIL for c in checks)
                else WARN
                if any(c.status == WARN for c in checks)
                else PASS
            )
            reason = next((f"{c.check}: {c.reason} ({c.url})" for c in checks if c.status == worst and c.reason), "")
            table.add_row(framework, endpoint, f"[{COLOURS[worst]}]{worst}[/]", str(len(checks)), reason)
    return table


def counts(results: list[Result]) -> dict[str, int]:
    return {status: sum(r.status == status for r in results) for status in (PASS, WARN, FAIL)}


def to_json(results: list[Result], seconds: float) -> str:
    return json.dumps(
        {"seconds": round(seconds, 2), "counts": counts(results), "results": [r.as_dict() for r in results]},
        indent=2,
        ensure_ascii=False,
    )


def write_junit(results: list[Result], path: Path, seconds: float) -> None:
    suites = ET.Element("testsuites", name="lab verify", time=f"{seconds:.2f}")
    for framework, items in by_framework(results).items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=framework,
            tests=str(len(items)),
            failures=str(sum(r.status == FAIL for r in items)),
            errors="0",
            skipped="0",
        )
        for item in items:
            case = ET.SubElement(suite, "testcase", classname=f"contract.{framework}", name=item.check)
            if item.status == FAIL:
                ET.SubElement(case, "failure", message=item.reason).text = f"{item.reason}\n{item.url}"
            elif item.status == WARN:
                ET.SubElement(case, "system-out").text = f"warning: {item.reason}\n{item.url}"
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
