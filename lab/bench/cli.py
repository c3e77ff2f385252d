"""`lab bench`: measure the frameworks (the default command), compare two results, re-render a report.

lab bench [FRAMEWORK…] [--tests …] [--duration S] [--concurrency 16,64,256] [--repeat N] …
lab bench compare A.json B.json
lab bench report RESULTS.json
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from lab import entry
from lab import settings as settingslib
from lab import stacks as stacklib
from lab.bench import compare as comparelib
from lab.bench import cpuset as cpusetlib
from lab.bench import format as fmt
from lab.bench import hold as holdlib
from lab.bench import plan, report, results, tables, wrk
from lab.bench.plan import CEILING, Options
from lab.bench.runner import Bench, Interrupted, Outcome
from lab.bench.site import HostSite, LocalSite, SwarmSite
from lab.deploy import hostengine
from lab.deploy import target as targetlib
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.options import HostsOption, InventoryOption, KeyOption, VmsOption, default_vm_name


class _RunByDefault(TyperGroup):
    """`lab bench NAME --duration 5` is `lab bench run NAME --duration 5`: anything that is not
    a subcommand (or --help) goes to `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    help="Measure the frameworks with wrk on the lab's own network (`lab bench [FRAMEWORK…] [OPTIONS]`, "
    "see `lab bench run --help`), compare two results files, or re-render a report.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@app.command()
def run(
    frameworks: Annotated[
        list[str] | None,
        typer.Argument(help="Frameworks and baselines (bare apps, `lab stacks`); all of them when none are named."),
    ] = None,
    tests: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated tests: {', '.join(plan.TESTS)}, and {plan.HOLD} (many held connections, "
            "opt-in: see --connections)."
        ),
    ] = ",".join(plan.TESTS),
    duration: Annotated[int, typer.Option(help="Seconds per load run (1-120).")] = 10,
    concurrency: Annotated[
        str, typer.Option(help=f"Comma-separated connection counts (1-{wrk.MAX_CONNECTIONS} each).")
    ] = "16,64,256",
    repeat: Annotated[
        int, typer.Option(help="Runs per cell (1-10), frameworks interleaved; >1 gives a noise band.")
    ] = 1,
    warmup: Annotated[
        int | None, typer.Option(help="Warm-up seconds per framework and test (default: half a run, 1-5 s).")
    ] = None,
    queries: Annotated[int, typer.Option(help="?queries=N for the queries and updates tests (1-500).")] = 20,
    timeout: Annotated[int, typer.Option(help="Seconds after which wrk counts a request as timed out.")] = 5,
    pause: Annotated[float, typer.Option(help="Seconds of rest between runs.")] = 1,
    threads: Annotated[int | None, typer.Option(help="wrk threads (default: the engine's CPUs).")] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Restart each framework first, to time its start and idle memory.")
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Measure every framework, baseline and the ceiling over HTTPS too (nginx's TLS listener), each "
            "beside its plain HTTP run: the report's “TLS cost” table.",
        ),
    ] = False,
    connections: Annotated[
        int,
        typer.Option(
            help=f"--tests {plan.HOLD}: keep-alive connections held at each framework's app container (and by "
            f"nginx alone) for --duration seconds (1-{wrk.MAX_CONNECTIONS})."
        ),
    ] = holdlib.DEFAULT_CONNECTIONS,
    rate: Annotated[
        float, typer.Option(help=f"--tests {plan.HOLD}: the trickle, requests/s over all held connections.")
    ] = holdlib.DEFAULT_RATE,
    servers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated servers (`lab stacks`): each framework that declares one is started, verified "
            "and measured under it, server by server; rows are FRAMEWORK@SERVER. Default: each one's own default."
        ),
    ] = None,
    cpuset: Annotated[
        str | None,
        typer.Option(
            help="Pin wrk and the servers to separate CPUs for the bench: load=CPUS,servers=CPUS (docker's cpuset "
            "syntax, e.g. load=1,servers=0). The servers (every running container of the lab: apps, nginx, "
            "PostgreSQL) are pinned with `docker update` and put back afterwards; recorded in the results."
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for results.json and the reports (default bench-results/<time>)."),
    ] = None,
    host: HostsOption = None,
    key: KeyOption = None,
    vm: VmsOption = None,
    inventory: InventoryOption = None,
    swarm: Annotated[
        bool,
        typer.Option(
            "--swarm",
            help="The servers are a swarm (implied by several): one wrk per node at once, from this machine, "
            "against each node's nginx.",
        ),
    ] = False,
) -> None:
    """Measure the frameworks, the baselines (bare apps, plaintext and json only) and the ceiling (nginx
    alone); write results.json, report.md, report.html (with each framework's overhead over its baseline).

    A warm-up, then wrk per framework, test and concurrency. Only frameworks that pass `lab verify`
    (without the database-stop check) are measured. Ctrl-C stops and keeps what was measured.
    With --host/--vm: the frameworks deployed on that host, with wrk on the host; with several (or --inventory,
    or --swarm): the swarm they make, one wrk per node from this machine (see docs/bench.md)."""
    chosen = plan.parse_tests(tests)
    load_tests = [t for t in chosen if t != plan.HOLD]
    hold = None
    if plan.HOLD in chosen:
        hold = plan.Hold(
            int(plan.check("concurrency", connections, "connections")), _positive("rate", rate), float(timeout)
        )
    options = Options(
        frameworks=frameworks or [],
        tests=load_tests,
        concurrency=plan.parse_concurrency(concurrency) if load_tests else [],
        duration=plan.check("duration", duration),
        warmup=plan.check("warmup", plan.default_warmup(duration) if warmup is None else warmup),
        repeat=int(plan.check("repeat", repeat)),
        queries=int(plan.check("queries", queries)),
        timeout=_positive("timeout", timeout),
        pause=_positive("pause", pause, zero=True),
        threads=int(_positive("threads", threads)) if threads is not None else None,
        restart=restart,
        tls=tls,
        servers=list(dict.fromkeys(s.lower() for s in plan.parse_list(servers, "servers"))) if servers else [],
        hold=hold,
        cpuset=cpusetlib.parse(cpuset) if cpuset is not None else None,
        out=out_dir,
        command="lab bench " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]),
    )
    lab = Lab.load(settingslib.load(), console)
    # Unknown names fail before anything starts.
    plan.server_blocks(stacklib.select(lab.stacks, options.frameworks), options.servers)
    targets = targetlib.resolve_many(lab.settings.state_dir, host, key, vm, required=False, inventory=inventory)
    if swarm and not targets:
        raise LabError("--swarm: name its servers with --vm, --host or --inventory", Exit.USAGE)
    if swarm or len(targets) > 1:
        plan.check_swarm(options, len(targets))  # before any SSH: a usage error costs nothing
    try:
        if not targets:
            outcome = Bench(lab, LocalSite(lab, console), options, console).run()
        elif swarm or len(targets) > 1:
            with contextlib.ExitStack() as stack:  # every node's engine, each tunnel closed after
                engines = [stack.enter_context(hostengine.connect(lab.settings.state_dir, t)) for t in targets]
                outcome = Bench(lab, SwarmSite(lab, console, engines), options, console).run()
        else:
            with hostengine.connect(lab.settings.state_dir, targets[0]) as host_engine:
                outcome = Bench(lab, HostSite(lab, console, host_engine), options, console).run()
    except Interrupted as stop:
        _print_outcome(stop.outcome)
        console.print("lab: interrupted; what was measured is kept")
        raise typer.Exit(130) from None
    _print_outcome(outcome)
    if outcome.not_measured:
        raise typer.Exit(Exit.FAILED)


def _positive(name: str, value: float, zero: bool = False) -> float:
    if value < 0 or (value == 0 and not zero):
        raise LabError(f"--{name} {value:g} must be {'zero or more' if zero else 'more than zero'}", Exit.USAGE)
    return value


def _print_outcome(outcome: Outcome) -> None:
    document = outcome.document
    for level in document["settings"]["concurrency"]:
        _print_grid(document, level)
    if document.get("holds"):
        hold = document["settings"]["hold"]
        table = Table(
            title=f"{hold['connections']:,} held connections, {hold['hold_s']:g} s, {hold['rate']:g} requests/s in all",
            title_justify="left",
        )
        for index, name in enumerate(holdlib.HEADER):
            table.add_column(name, justify="left" if index < 2 else "right")
        for row in holdlib.rows(document):
            table.add_row(*(f"[red]{c}[/]" if fmt.WARN in c else c for c in row))
        out.print(table)
    if plan.HTTPS in results.schemes(document):
        table = Table(title="TLS cost: HTTPS beside plain HTTP", title_justify="left")
        for index, name in enumerate(tables.TLS_HEADER):
            table.add_column(name, justify="left" if index < 2 else "right")
        for row in tables.tls_rows(document):
            table.add_row(*row)
        out.print(table)
    flagged = results.flagged_runs(document)
    if flagged:
        console.print(f"[red]lab: {len(flagged)} run(s) had errors; see “Runs with errors” in the report[/]")
    for name in ("results.json", "report.md", "report.html"):
        out.print(f"{outcome.folder / name}", highlight=False)


def _print_grid(document: dict[str, Any], level: int) -> None:
    cells = results.cell_index(document)
    table = Table(title=f"requests/s at {level} connections (share of the ceiling)", title_justify="left")
    table.add_column("")
    for test in document["settings"]["tests"]:
        table.add_column(test, justify="right")
    for target in results.targets(document):
        row = [fmt.label(target)]
        for test in document["settings"]["tests"]:
            skip = results.skipped(document, target, test)  # a baseline: plaintext and json only
            text = "—" if skip else fmt.rps_cell(cells.get((target, test, level)), target)
            row.append(f"[red]{text}[/]" if fmt.WARN in text else text)
        table.add_row(*row)
    out.print(table)


@app.command(name="compare")
def compare_command(
    before: Annotated[Path, typer.Argument(help="The earlier results.json (A).")],
    after: Annotated[Path, typer.Argument(help="The later results.json (B).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show what changed from A to B per framework, test and concurrency: requests/s, p99 latency,
    and whether the change stands out of the noise band (the larger spread of the repetitions)."""
    a, b = results.load(before), results.load(after)
    rows = comparelib.rows(a, b)
    notes = comparelib.context(a, b)
    if as_json:
        out.print_json(json.dumps({"context": notes, "rows": [r.as_dict() for r in rows]}))
        return
    table = Table("target", "test", "c", "A req/s", "B req/s", "change", "noise band", "verdict", "p99", "errors")
    colours = {"better": "green", "worse": "red", "within noise": "dim"}
    for row in rows:
        colour = colours.get(row.verdict, "yellow")
        table.add_row(
            (fmt.label(row.target) if row.target != CEILING else "ceiling") + fmt.over(row.scheme),
            row.test,
            str(row.concurrency),
            fmt.rps(row.before),
            fmt.rps(row.after),
            _signed(row.change),
            "—" if row.noise is None else f"±{row.noise * 100:.1f}%",
            f"[{colour}]{row.verdict}[/]",
            _signed(row.p99_change),
            f"[red]{row.errors}[/]" if row.errors else "",
        )
    out.print(table)
    for note in notes:
        out.print(f"  {note}", highlight=False)


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


@app.command(name="report")
def report_command(
    results_file: Annotated[Path, typer.Argument(help="A results.json written by `lab bench`.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the reports (default: beside it).")] = None,
) -> None:
    """Render report.md and report.html again from a results.json (for instance after a crash)."""
    document = results.load(results_file)
    md, page = report.write(document, out_dir or results_file.parent)
    out.print(str(md), highlight=False)
    out.print(str(page), highlight=False)


def main() -> None:
    """`python -m lab.bench` (the same as `lab bench`), with lab's error handling."""
    entry.run(app, default_vm_name(sys.argv[1:]))


if __name__ == "__main__":
    main()
