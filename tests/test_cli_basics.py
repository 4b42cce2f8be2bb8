import os
import subprocess
import sys

from correlate.times import format_ns, parse_time_ns
from mcp_server.cli import main


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_unknown_command_exits_2(capsys):
    try:
        main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "dcr:" in err and "Traceback" not in err


def test_parse_time_forms():
    ns = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z
    assert parse_time_ns("2024-05-01T12:00:00Z") == ns
    assert parse_time_ns("2024-05-01T12:00:00") == ns
    assert parse_time_ns("2024-05-01T14:00:00+02:00") == ns
    assert parse_time_ns("1714564800") == ns
    assert parse_time_ns("1714564800.5") == ns + 500_000_000
    assert parse_time_ns("1714564800000") == ns
    assert parse_time_ns("1714564800000000") == ns
    assert parse_time_ns(str(ns)) == ns
    assert format_ns(ns + 123_456_000) == "2024-05-01T12:00:00.123456Z"


def test_parse_time_rejects_garbage():
    import pytest

    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time_ns("yesterday")


def test_a_time_past_what_a_dataset_holds_is_refused_by_its_range():
    """Times are int64 nanoseconds (1677-09-21 .. 2262-04-11): a number past them was taken, then
    broke formatting (a traceback from `dcr`, a masked error from the MCP tools)."""
    import pytest

    for text in ("99999999999999999999999", "1e300", "-1e20", "2300-01-01"):
        with pytest.raises(ValueError, match=r"is out of range: times run from 1677-09-21.* to 2262-04-11"):
            parse_time_ns(text)
    assert format_ns(parse_time_ns("2262-04-11T23:47:16Z")) == "2262-04-11T23:47:16.000000Z"


def test_one_blas_thread_unless_asked():
    """`dcr` starts numpy's OpenBLAS with one thread (a thread a core would spin ~0.07 CPU-s each
    after numpy's import, in every process of an ingest); a user's own setting is kept."""
    code = (
        "import contextlib, io, os\n"
        "from mcp_server.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    main([])\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    env["OPENBLAS_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"
