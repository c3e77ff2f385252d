"""`lab bench --cpuset`: parsing and checking the CPUs, the docker argv, the record in the results,
the report's line and compare's warning. Pinning real containers is tests/integration/test_bench_cpuset.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lab.bench import compare, report, results, schema, tables
from lab.bench.cpuset import Cpuset, check, cpu_list, parse, parse_cpus, restore_groups, update_argv
from lab.errors import Exit, LabError

from .test_bench import _mounted, make_document


@pytest.mark.parametrize(
    ("text", "load", "servers"),
    [
        ("load=1,servers=0", (1,), (0,)),
        ("servers=0,load=1", (1,), (0,)),
        (" LOAD = 3 , servers=0-1,2", (3,), (0, 1, 2)),
        ("load=4-5,7,servers=0-3", (4, 5, 7), (0, 1, 2, 3)),
    ],
)
def test_parse_reads_both_roles_and_docker_cpu_lists(text, load, servers):
    assert parse(text) == Cpuset(load, servers)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("load=1", "no servers CPUs"),
        ("servers=0", "no load CPUs"),
        ("1,0", "name the role of each CPU list"),
        ("load=1,server=0", "unknown role 'server'"),
        ("load=1,servers=0,load=2", "load is given twice"),
        ("load=0-1,servers=1", "CPU 1 is in both load and servers"),
        ("load=a,servers=0", "'a' is not a CPU number or range"),
        ("load=3-1,servers=0", "the range '3-1' runs backwards"),
        ("load=,servers=0", "'' is not a CPU number"),
        ("load=-1,servers=0", "'-1' is not a CPU number"),
    ],
)
def test_parse_rejects_unclear_or_overlapping_cpusets(text, message):
    with pytest.raises(LabError) as error:
        parse(text)
    assert message in error.value.message and error.value.code == Exit.USAGE
    assert "load=CPUS,servers=CPUS" in (error.value.hint or "")


def test_cpu_lists_round_trip_in_dockers_syntax():
    assert cpu_list([5, 0, 2, 1]) == "0-2,5"
    assert cpu_list(range(2)) == "0-1" and cpu_list([3]) == "3" and cpu_list([]) == ""
    assert parse_cpus("0-2,5,1") == (0, 1, 2, 5)


def test_check_holds_the_cpus_to_the_engines():
    check(parse("load=1,servers=0"), range(2))
    with pytest.raises(LabError) as error:
        check(parse("load=2-3,servers=0"), range(2), "this machine")
    assert error.value.message == "--cpuset: CPU 2-3 is not on this machine: the engine has 0-1"
    assert error.value.code == Exit.USAGE
    with pytest.raises(LabError, match="single CPU"):
        check(Cpuset((0,), ()), range(1))


def test_the_docker_argv_pins_without_a_restart_and_restores_every_cpu_for_an_empty_cpuset():
    assert update_argv("0", ["c1", "c2"]) == ["docker", "update", "--cpuset-cpus", "0", "c1", "c2"]
    # the engine ignores --cpuset-cpus "": a container that had none gets every CPU back explicitly
    assert restore_groups({"a": "", "b": "1", "c": ""}, "0-1") == {"0-1": ["a", "c"], "1": ["b"]}


def _pinned(document: dict, load: str = "1", servers: str = "0", restored: bool | None = True) -> dict:
    pinned = {"alpha": servers, "nginx": servers, "postgres": servers, "wrk": load}
    document["machine"]["cpuset"] = {"load": load, "servers": servers, "pinned": pinned, "restored": restored}
    return document


def test_the_pinning_is_in_the_results_and_both_reports():
    document = _pinned(make_document())
    assert schema.errors(document) == []
    assert schema.errors({**document, "machine": {**document["machine"], "cpuset": None}}) == []
    broken = _pinned(make_document())
    del broken["machine"]["cpuset"]["restored"]
    assert schema.errors(broken)
    line = "pinned (--cpuset): wrk on CPU 1, the servers (alpha, nginx, postgres) on CPU 0; restored afterwards"
    assert f"- **CPUs**: {line}" in report.markdown(document)
    assert line in report.html_page(document)
    unrestored = report.markdown(_pinned(make_document(), restored=False))
    assert "⚠ not all restored" in unrestored
    older = make_document()  # files written before --cpuset have no key: not pinned
    assert "cpuset" not in older["machine"] and schema.errors(older) == []
    assert tables.pinning_text(older["machine"].get("cpuset")).startswith("not pinned")


def test_compare_warns_when_two_results_were_pinned_differently(tmp_path):
    plain, pinned, other = make_document(), _pinned(make_document()), _pinned(make_document(), "0", "1")
    warning = "⚠ pinned differently (--cpuset): not pinned → load 1, servers 0; the figures are not comparable"
    assert warning in compare.context(plain, pinned)
    assert any(n.startswith("⚠ pinned differently") for n in compare.context(pinned, other))
    assert not any(n.startswith("⚠ pinned") for n in compare.context(pinned, _pinned(make_document())))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    results.save(plain, a)
    results.save(pinned, b)
    shown = CliRunner().invoke(_mounted(), ["bench", "compare", str(a), str(b)], terminal_width=200)
    assert shown.exit_code == 0 and "pinned differently" in shown.output


def test_cli_checks_the_cpuset_syntax_before_touching_anything():
    result = CliRunner().invoke(_mounted(), ["bench", "alpha", "--cpuset", "load=1"])
    assert isinstance(result.exception, LabError), result.output
    assert "no servers CPUs" in result.exception.message and result.exception.code == Exit.USAGE
