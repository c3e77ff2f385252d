"""Strict checks of stacks/CONTRACT.md, per framework, through nginx.

Each check gives pass, warn or fail with a reason and the URL it used. The database is read
directly (through the Database given) to prove what the apps claim: that updates persisted,
that /queries?queries=20 ran twenty SELECTs, that /health follows the database's state.
"""

from __future__ import annotations

import email.utils
import html.parser
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Protocol

from lab.verify.http import Response, get

FETCH_TIMEOUT = 60.0  # seconds one request of the verifier may take
# A plaintext that never once answers within this many seconds ends at a timeout, not when the app is
# done: the usual cause is a body with neither Content-Length nor chunks on a keep-alive socket, which
# a server that does not frame it itself ends at its socket timeout. nginx re-frames what it forwards, so
# through it this shows only as time. Best of three, so a busy machine's one slow answer is no failure.
PROMPT_SECONDS = 2.0

PASS, WARN, FAIL = "pass", "warn", "fail"
EXTRA_FORTUNE = (0, "Additional fortune added at request time.")
CLAMPING = {"queries=0": 1, "queries=foo": 1, "queries=501": 500, "queries=": 1, "": 1, "queries=7": 7}
CONTENT_TYPES = {
    "plaintext": ("text/plain", "text/plain; charset=utf-8"),  # charset optional
    "json": ("application/json",),
    "db": ("application/json",),
    "queries": ("application/json",),
    "updates": ("application/json",),
    "fortunes": ("text/html; charset=utf-8",),
}


@dataclass
class Result:
    framework: str
    check: str
    status: str
    reason: str
    url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class Database(Protocol):
    def query(self, sql: str) -> list[list[str]]: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


class _Table(html.parser.HTMLParser):
    """Rows of cells (th and td) of an HTML page, text unescaped by the parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


class Checker:
    """The checks of one framework, collected as Results."""

    def __init__(self, base_url: str, framework: str, db: Database) -> None:
        self.base = f"{base_url.rstrip('/')}/{framework}"
        self.framework = framework
        self.db = db
        self.results: list[Result] = []
        self.first_plaintext: Response | None = None

    def add(self, check: str, status: str, reason: str, url: str) -> None:
        self.results.append(Result(self.framework, check, status, reason, url))

    def ok(self, check: str, condition: bool, reason: str, url: str, warn_only: bool = False) -> bool:
        self.add(check, PASS if condition else (WARN if warn_only else FAIL), "" if condition else reason, url)
        return condition

    def fetch(self, path: str) -> Response:
        # Correctness, not speed: 500 ORM queries on a loaded 2-core host can take more than 10 s.
        return get(self.base + path, timeout=FETCH_TIMEOUT)

    # -- headers -------------------------------------------------------------------------------

    def headers(self, endpoint: str, r: Response) -> None:
        check = f"{endpoint}: headers"
        problems = []
        if r.status != 200:
            problems.append(f"status {r.status} {r.error}".strip())
        wanted = CONTENT_TYPES.get(endpoint)
        content_type = r.header("content-type")
        if wanted and content_type.replace(" ", "").lower() not in {w.replace(" ", "") for w in wanted}:
            if content_type.split(";")[0].strip().lower() == wanted[0].split(";")[0]:
                self.add(f"{endpoint}: content-type", WARN, f"{content_type!r}, expected {wanted[0]!r}", r.url)
            else:
                problems.append(f"Content-Type {content_type!r}, expected {wanted[0]!r}")
        length = r.header("content-length")
        if length:
            if int(length) != len(r.body):
                problems.append(f"Content-Length {length} but {len(r.body)} bytes")
        elif "chunked" not in r.header("transfer-encoding").lower():
            problems.append("neither Content-Length nor chunked")
        if not r.header("server"):
            problems.append("no Server header")
        if not _valid_date(r.header("date")):
            problems.append(f"Date {r.header('date')!r} is not an HTTP date")
        self.ok(check, not problems, "; ".join(problems), r.url)

    # -- endpoints -----------------------------------------------------------------------------

    def plaintext(self) -> None:
        r = self.fetch("/plaintext")
        self.first_plaintext = r
        self.headers("plaintext", r)
        self.ok("plaintext: body", r.body == b"Hello, World!", f"body {r.body[:60]!r}", r.url)

    def json(self) -> None:
        r = self.fetch("/json")
        self.headers("json", r)
        self.ok("json: body", _json(r) == {"message": "Hello, World!"}, f"body {r.body[:80]!r}", r.url)

    def db_single(self) -> None:
        r, (selects, _) = self.fetch_counted("/db")
        self.headers("db", r)
        body = _json(r)
        problem = _world_problem(body) if isinstance(body, dict) else f"not a JSON object: {r.body[:80]!r}"
        if self.ok("db: body", not problem, problem or "", r.url):
            stored = self.stored([body["id"]])  # type: ignore[index]
            self.ok(
                "db: matches the database",
                stored.get(body["id"]) == body["randomNumber"],  # type: ignore[index]
                f"row {body} but the database holds {stored}",
                r.url,
            )
        self.statements("db: statements", r.url, selects, 1)

    def queries(self) -> None:
        for query, count in CLAMPING.items():
            r = self.fetch(f"/queries?{query}" if query else "/queries")
            if query == "queries=7":
                self.headers("queries", r)
            body = _json(r)
            problem = _rows_problem(body, count, r)
            self.ok(f"queries: {query or 'missing'} gives {count}", not problem, problem, r.url)
        r, (selects, _) = self.fetch_counted("/queries?queries=20")
        self.statements("queries: statements", r.url, selects, 20)

    def updates(self) -> None:
        r, (selects, writes) = self.fetch_counted("/updates?queries=5")
        self.headers("updates", r)
        body = _json(r)
        problem = _rows_problem(body, 5, r)
        if self.ok("updates: body", not problem, problem, r.url):
            claimed = {row["id"]: row["randomNumber"] for row in body}  # type: ignore[union-attr]  # last wins
            stored = self.stored(list(claimed))
            differ = {i: (n, stored.get(i)) for i, n in claimed.items() if stored.get(i) != n}
            self.ok(
                "updates: persisted",
                not differ,
                "rows not written: " + ", ".join(f"id {i} says {a}, database {b}" for i, (a, b) in differ.items()),
                r.url,
            )
        self.statements("updates: reads", r.url, selects, 5)
        self.ok("updates: writes", 1 <= writes <= 5, f"{writes} UPDATE statements for 5 rows (expected 1 to 5)", r.url)
        for query, count in (("queries=0", 1), ("queries=foo", 1), ("queries=501", 500)):
            r = self.fetch(f"/updates?{query}")
            problem = _rows_problem(_json(r), count, r)
            self.ok(f"updates: {query} gives {count}", not problem, problem, r.url)

    def fortunes(self) -> None:
        r = self.fetch("/fortunes")
        self.headers("fortunes", r)
        text = r.body.decode("utf-8", errors="replace")
        expected = [(int(i), m) for i, m in self.db.query("SELECT id, message FROM fortune")]
        expected = sorted([*expected, EXTRA_FORTUNE], key=lambda row: row[1])
        parser = _Table()
        parser.feed(text)
        header, *rows = parser.rows or [[]]
        got = [(int(c[0]), c[1]) if len(c) == 2 and c[0].strip().isdigit() else tuple(c) for c in rows]
        self.ok("fortunes: table", header == ["id", "message"] and got == expected, _diff(expected, got), r.url)
        self.ok(
            "fortunes: escaped",
            "<script>" not in text and "&lt;script&gt;" in text,
            "the <script> fortune is not HTML-escaped",
            r.url,
        )
        self.ok("fortunes: utf-8", "フレームワークのベンチマーク" in text, "the Japanese fortune is mangled", r.url)
        self.ok(
            "fortunes: page",
            text.lstrip().lower().startswith("<!doctype html>") and "title" in parser.tags,
            "not a full HTML page (<!DOCTYPE html>, <title>)",
            r.url,
        )

    def health(self) -> None:
        r = self.fetch("/health")
        body = _json(r)
        self.ok(
            "health: up",
            r.status == 200 and isinstance(body, dict) and body.get("status") == "ok",
            f"status {r.status}, body {r.body[:80]!r}",
            r.url,
        )

    def index(self) -> None:
        r = self.fetch("/")
        text = r.body.decode("utf-8", errors="replace")
        prefix = self.base.split("//", 1)[1].split("/", 1)[1]
        missing = [p for p in ("plaintext", "json", "fortunes") if f'href="/{prefix}/{p}' not in text]
        self.ok(
            "index: prefixed links",
            r.status == 200 and not missing,
            f"status {r.status}; no link to {', '.join(missing)} under /{prefix}/",
            r.url,
        )

    # -- helpers -------------------------------------------------------------------------------

    def stored(self, ids: Iterable[int]) -> dict[int, int]:
        id_list = ",".join(str(int(i)) for i in ids) or "0"
        return {int(i): int(n) for i, n in self.db.query(f"SELECT id, randomnumber FROM world WHERE id IN ({id_list})")}

    def world_statements(self) -> tuple[int, int]:
        """(SELECTs, UPDATEs) on table world executed so far, from pg_stat_statements."""
        rows = self.db.query(
            "SELECT coalesce(sum(calls) FILTER (WHERE query ILIKE 'select%'), 0),"
            " coalesce(sum(calls) FILTER (WHERE query ILIKE 'update%'), 0)"
            " FROM pg_stat_statements WHERE query ILIKE '%world%' AND query NOT ILIKE '%pg_stat_statements%'"
        )
        return int(rows[0][0]), int(rows[0][1])

    def fetch_counted(self, path: str) -> tuple[Response, tuple[int, int]]:
        """The response, and the SELECTs and UPDATEs on world that the request made."""
        before = self.world_statements()
        r = self.fetch(path)
        after = self.world_statements()
        return r, (after[0] - before[0], after[1] - before[1])

    def statements(self, check: str, url: str, counted: int, expected: int) -> None:
        self.ok(check, counted == expected, f"{counted} SELECTs on world, expected {expected}", url)


def _json(r: Response) -> object:
    try:
        return r.json()
    except ValueError:
        return None


def _valid_date(value: str) -> bool:
    try:
        return email.utils.parsedate_to_datetime(value) is not None
    except (TypeError, ValueError, IndexError):
        return False


def _world_problem(row: object) -> str:
    if not isinstance(row, dict) or set(row) != {"id", "randomNumber"}:
        return f"expected {{'id', 'randomNumber'}}, got {row!r}"[:200]
    for key in ("id", "randomNumber"):
        value = row[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10000:
            return f"{key} = {value!r} is not an integer in 1-10000"
    return ""


def _answer(r: Response) -> str:
    """What came back, for a reason: the status, how long it took, the body's start, or the error."""
    if r.error:
        return f"no answer after {r.seconds:.1f} s ({r.error})"
    return f"status {r.status} after {r.seconds:.1f} s: {r.body[:60]!r}"


def _rows_problem(body: object, count: int, r: Response | None = None) -> str:
    if not isinstance(body, list):
        return f"not a JSON list: {str(body)[:80]}" + (f"; {_answer(r)}" if r else "")
    if len(body) != count:
        return f"{len(body)} rows, expected {count}"
    return next((p for p in map(_world_problem, body) if p), "")


def _diff(expected: list, got: list) -> str:
    if len(expected) != len(got):
        return f"{len(got)} rows, expected {len(expected)}"
    for position, (want, have) in enumerate(zip(expected, got, strict=True)):
        if want != have:
            return f"row {position + 1}: {have!r}, expected {want!r}"
    return "header row is not id, message"


def verify_framework(base_url: str, framework: str, db: Database, bare: bool = False) -> Checker:
    """The contract's checks of one framework; of a baseline (bare), only what it answers (BARE_CHECKS)."""
    checker = Checker(base_url, framework, db)
    for step in BARE_CHECKS if bare else FULL_CHECKS:
        getattr(checker, step)()
    return checker


# The steps, by Checker method: a framework answers the whole contract; a baseline (stacks.py, kind
# "baseline") only /plaintext and /json (their headers too) and /health, without a database.
FULL_CHECKS = ("plaintext", "json", "db_single", "queries", "updates", "fortunes", "health", "index")
BARE_CHECKS = ("plaintext", "json", "health")


def check_dates(checkers: list[Checker]) -> None:
    """The Date header changes between two requests a second or more apart (it is not cached)."""
    time.sleep(1.1)  # Date has a resolution of one second
    for checker in checkers:
        again = checker.fetch("/plaintext")
        before = checker.first_plaintext.header("date") if checker.first_plaintext else ""
        checker.ok(
            "plaintext: fresh Date",
            before != again.header("date"),
            f"Date stayed {before!r} over {again.seconds:.1f}s+",
            again.url,
        )


def check_prompt(checker: Checker, tries: int = 3, within: float = PROMPT_SECONDS) -> None:
    """/plaintext answers within `within` seconds at least once in `tries` (the first plaintext counts)."""
    answers = [checker.first_plaintext] if checker.first_plaintext else []
    while len(answers) < tries:
        answers.append(checker.fetch("/plaintext"))
    best = min(answers, key=lambda r: r.seconds)
    checker.ok(
        "plaintext: prompt",
        best.seconds < within,
        f"the fastest of {tries} answers took {best.seconds:.1f} s: a response that ends"
        " only at the server's timeout, most often one with neither Content-Length nor chunks on a keep-alive"
        " connection",
        best.url,
    )


def check_health_follows_database(
    checkers: list[Checker], db: Database, timeout: float = 60, bare: Collection[Checker] = ()
) -> None:
    """Stop the database: every /health says 503 quickly, but a baseline's (bare) stays 200, for it has
    no database; start it: every /health comes back to 200."""
    db.stop()
    try:
        for checker in bare:
            r = checker.fetch("/health")
            checker.ok("health: 200 without the database", r.status == 200, f"status {r.status}", r.url)
        checkers = [c for c in checkers if c not in bare]
        for checker in checkers:
            r = checker.fetch("/health")
            body = _json(r)
            good = r.status == 503 and isinstance(body, dict) and body.get("status") == "unavailable"
            checker.ok("health: database down gives 503", good, f"status {r.status}, body {r.body[:80]!r}", r.url)
            checker.ok("health: 503 is quick", r.seconds < 5, f"took {r.seconds:.1f}s", r.url, warn_only=True)
    finally:
        db.start()
    deadline = time.monotonic() + timeout
    pending = list(checkers)
    while pending and time.monotonic() < deadline:
        pending = [c for c in pending if c.fetch("/health").status != 200]
        if pending:
            time.sleep(0.5)
    for checker in checkers:
        checker.ok(
            "health: back to 200",
            checker not in pending,
            f"still not 200 {timeout:.0f}s after the database returned",
            checker.base + "/health",
        )


def verify(
    base_url: str,
    frameworks: list[str],
    db: Database,
    restart_db: bool = True,
    progress: Callable[[str], None] = lambda _: None,
    bare: Collection[str] = (),
) -> list[Result]:
    """The checks of every framework named; those also in bare are baselines (BARE_CHECKS)."""
    checkers = []
    for framework in frameworks:
        progress(framework)
        checkers.append(verify_framework(base_url, framework, db, bare=framework in bare))
    check_dates(checkers)
    for checker in checkers:
        check_prompt(checker)
    if restart_db:
        progress("database")
        check_health_follows_database(checkers, db, bare=[c for c in checkers if c.framework in bare])
    return [result for checker in checkers for result in checker.results]
