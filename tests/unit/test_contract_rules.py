"""The verifier's pure rules: row shapes, clamping counts, dates, HTML tables, reports."""

import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler

from lab.verify import contract, report
from lab.verify.contract import Result
from lab.verify.http import Response
from tests.fakes.serving import serving


def test_world_row_rules():
    assert contract._world_problem({"id": 1, "randomNumber": 10000}) == ""
    assert "expected" in contract._world_problem({"id": 1, "randomnumber": 2})
    assert "not an integer" in contract._world_problem({"id": "1", "randomNumber": 2})
    assert "not an integer" in contract._world_problem({"id": 1, "randomNumber": 10001})
    assert "not an integer" in contract._world_problem({"id": True, "randomNumber": 2})


def test_rows_rules():
    rows = [{"id": 1, "randomNumber": 2}] * 3
    assert contract._rows_problem(rows, 3) == ""
    assert contract._rows_problem(rows, 2) == "3 rows, expected 2"
    assert contract._rows_problem({"id": 1}, 1).startswith("not a JSON list")


def test_a_reason_says_what_came_back():
    failed = Response("http://x/q", 500, {}, b"Internal Server Error", 1.25)
    assert (
        contract._rows_problem(None, 500, failed)
        == "not a JSON list: None; status 500 after 1.2 s: b'Internal Server Error'"
    )
    silent = Response("http://x/q", 0, {}, b"", 10.0, error="TimeoutError: timed out")
    assert contract._rows_problem(None, 500, silent).endswith("no answer after 10.0 s (TimeoutError: timed out)")


def test_http_dates():
    assert contract._valid_date("Wed, 25 Nov 2026 10:30:02 GMT")
    assert not contract._valid_date("yesterday")
    assert not contract._valid_date("")


def test_table_parser_unescapes_and_keeps_header():
    parser = contract._Table()
    parser.feed("<table><tr><th>id</th><th>message</th></tr><tr><td>11</td><td>&lt;b&gt; &amp; &quot;x&quot;</td></tr>")
    assert parser.rows == [["id", "message"], ["11", '<b> & "x"']]


def test_diff_names_the_first_differing_row():
    assert contract._diff([(1, "a"), (2, "b")], [(1, "a"), (3, "b")]) == "row 2: (3, 'b'), expected (2, 'b')"
    assert contract._diff([(1, "a")], []) == "0 rows, expected 1"


def test_reports(tmp_path):
    results = [
        Result("fw", "json: body", "pass", "", "http://x/fw/json"),
        Result("fw", "json: headers", "warn", "charset", "http://x/fw/json"),
        Result("fw", "db: body", "fail", "bad row", "http://x/fw/db"),
    ]
    assert report.counts(results) == {"pass": 1, "warn": 1, "fail": 1}
    report.write_junit(results, tmp_path / "junit.xml", 1.5)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "fw" and suite.get("failures") == "1" and suite.get("tests") == "3"
    assert [c.find("failure").get("message") for c in suite if c.find("failure") is not None] == ["bad row"]
    table = report.summary_table(results)
    assert table.row_count == 2


class _Undelimited(BaseHTTPRequestHandler):
    """Answers as uWSGI's keep-alive socket answered web2py: no Content-Length, no chunks, and the
    connection closed only at a (here short) socket timeout, which is what ends the body."""

    protocol_version = "HTTP/1.1"
    timeout_s = 0.6

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Hello, World!")
        self.wfile.flush()
        time.sleep(self.timeout_s)
        self.close_connection = True

    def log_message(self, *args):
        pass


class _Delimited(_Undelimited):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "13")
        self.end_headers()
        self.wfile.write(b"Hello, World!")


def test_an_answer_that_ends_only_at_the_servers_timeout_is_not_prompt():
    for handler, prompt in ((_Undelimited, False), (_Delimited, True)):
        with serving(handler) as port:
            checker = contract.Checker(f"http://127.0.0.1:{port}", "fw", db=None)
            checker.plaintext()
            contract.check_prompt(checker, within=0.4)
        (result,) = [r for r in checker.results if r.check == "plaintext: prompt"]
        assert (result.status == contract.PASS) is prompt, result
        if not prompt:
            assert "neither Content-Length nor chunks" in result.reason
            assert "fastest of 3 answers took 0.6 s" in result.reason
