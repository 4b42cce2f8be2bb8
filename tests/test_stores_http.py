"""Pulling over the network, against loopback stand-ins (tests/store_standins.py):

- clickhouse:// through clickhouse-connect to a stand-in of ClickHouse's HTTP interface that runs
  each query in chDB: the same dataset as chdb://, credentials from the URL or
  CLICKHOUSE_PASSWORD, the TLS flag, pushdown and sampling in the SQL it receives, a 429 retried;
- Jaeger's API v3 and Tempo serving the scenario library: every scenario whose ranking does not
  rest on logs correlates to the same top candidate as from the files (the "Done when"); the
  current and the deprecated parameter names, the empty 404, paging by splitting the range, 429s;
- no credential anywhere dcr writes (manifest, Parquet, rejects, stdout, stderr, errors, bundle);
- the MCP ingest_traces tool takes the same source strings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

chdb = pytest.importorskip("chdb")

import ingest  # noqa: E402
from correlate import Window, open_dataset  # noqa: E402
from tests import store_exporter as exporter  # noqa: E402
from tests.store_standins import ClickHouseHTTP, JaegerV3, Tempo  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "truth.json").is_file())
PASSWORD = "pw-9f3K/x@y"  # URL-quoted in the source string
USER = "reader"


def truth(name: str) -> dict:
    return json.loads((SCENARIOS / name / "truth.json").read_text())


def whole_range(name: str) -> tuple[int, int]:
    w = truth(name)["window"]
    return w["baseline_start_ns"] - 60 * 10**9, w["incident_end_ns"] + 3600 * 10**9


def opts(name: str, **kw) -> ingest.PullOptions:
    start, end = whole_range(name)
    return ingest.PullOptions(start_ns=start, end_ns=end, **kw)


def top(dataset: str, name: str) -> tuple[str, str] | None:
    w = truth(name)["window"]
    with open_dataset(dataset) as ds:
        report = ds.correlate(
            Window(w["incident_start_ns"], w["incident_end_ns"]),
            Window(w["baseline_start_ns"], w["baseline_end_ns"]),
        )
    c = report.candidates[0] if report.candidates else None
    return (c.service, c.mechanism) if c else None


def docs(name: str) -> list[dict]:
    return exporter.read_lines(SCENARIOS / name / "traces.jsonl")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(tmp_path_factory.mktemp("dcr_home")))
        mp.delenv("CLICKHOUSE_PASSWORD", raising=False)
        mp.delenv(ingest.stores.HEADERS_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def files(home):
    """Every scenario from its files, with and without logs: the reference tops."""
    tops = {}
    for name in NAMES:
        folder = SCENARIOS / name
        ingest.ingest_paths([str(folder / "traces.jsonl"), str(folder / "logs.jsonl")], f"f-{name}")
        ingest.ingest_paths([str(folder / "traces.jsonl")], f"fs-{name}")
        tops[name] = (top(f"f-{name}", name), top(f"fs-{name}", name))
    return tops


@pytest.fixture(scope="module")
def ch_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("chdb_http")
    con = chdb.connect(str(path))
    try:
        for name in ("network_delay", "dependency_failure"):
            exporter.load_scenario(con, SCENARIOS / name, "current", db=f"s_{name}")
    finally:
        con.close()
    return path


def written(home_dir: Path) -> bytes:
    """Everything dcr wrote under DCR_HOME."""
    return b"".join(p.read_bytes() for p in sorted(home_dir.rglob("*")) if p.is_file())


def dcr_home() -> Path:
    from ingest.dataset import dcr_home as h

    return h()


# ---- ClickHouse over HTTP ------------------------------------------------------------------------


def test_clickhouse_over_http_equals_chdb_and_keeps_no_credential(ch_store, home, capsys):
    from mcp_server.cli import main

    name = "network_delay"
    start, end = whole_range(name)
    quoted = PASSWORD.replace("/", "%2F").replace("@", "%40")
    with ClickHouseHTTP(str(ch_store), user=USER, password=PASSWORD) as ch:
        url = f"clickhouse://{USER}:{quoted}@127.0.0.1:{ch.port}/s_{name}"
        rc = main(["ingest", url, "--start", str(start), "--end", str(end), "--dataset", "ch-http", "--json"])
        out, err = capsys.readouterr()
        queries = list(ch.queries)
    assert rc == 0, err
    result = json.loads(out)
    ref = ingest.ingest_paths(
        [f"chdb://{ch_store}?database=s_{name}"],
        "ch-local",
        pull=ingest.PullOptions(start_ns=start, end_ns=end),
    )
    assert (result["spans"], result["logs"]) == (ref.spans, ref.logs) and ref.spans > 0
    assert result["sources"][0]["path"] == f"clickhouse://127.0.0.1:{ch.port}/s_{name}"
    # pushdown: the range as bound parameters, in the WHERE of the query the server ran
    pulled = [q for q in queries if "resourceSpans" in q["sql"]]
    assert pulled and "Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})" in pulled[0]["sql"]
    assert pulled[0]["params"] == {"start_ns": str(start), "end_ns": str(end)}
    assert pulled[0]["read_rows"] == ref.spans
    with open_dataset("ch-http") as ds:
        assert top("ch-http", name) == top("ch-local", name)
        ds.correlate()
    # no credential anywhere dcr writes: the dataset, the output, a bundle
    rc = main(["escalate", "ch-http", "--question", "why slow?", "--dry-run"])
    bundle_out, bundle_err = capsys.readouterr()
    for text in (written(dcr_home()), out.encode(), err.encode(), bundle_out.encode(), bundle_err.encode()):
        for secret in (PASSWORD, quoted):
            assert secret.encode() not in text


def test_password_from_the_environment_services_pushed_down_and_sampling_in_the_sql(
    ch_store, home, monkeypatch
):
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", PASSWORD)
    name = "dependency_failure"
    with ClickHouseHTTP(str(ch_store), user=USER, password=PASSWORD) as ch:
        result = ingest.ingest_paths(
            [f"clickhouse://{USER}@127.0.0.1:{ch.port}/s_{name}"],
            "ch-env",
            pull=opts(name, services=("checkout",), budget_spans=50),
        )
        queries = list(ch.queries)
    assert result.spans > 0
    spans_sql = next(q for q in queries if "resourceSpans" in q["sql"])
    assert "ServiceName IN {services:Array(String)}" in spans_sql["sql"]
    assert spans_sql["params"]["services"] == "['checkout']"
    assert "cityHash64(TraceId) %" in spans_sql["sql"]
    with open_dataset("ch-env") as ds:
        assert {r[0] for r in ds.sql("SELECT DISTINCT service_name FROM spans").rows} == {"checkout"}


def test_a_wrong_password_fails_once_naming_the_fix_not_the_password(ch_store, home, capsys):
    from mcp_server.cli import main

    start, end = whole_range("network_delay")
    with ClickHouseHTTP(str(ch_store), user=USER, password="the-right-one") as ch:
        url = f"clickhouse://{USER}:{PASSWORD.replace('/', '%2F').replace('@', '%40')}@127.0.0.1:{ch.port}/s_network_delay"
        rc = main(
            ["ingest", url, "--start", str(start), "--end", str(end), "--dataset", "denied", "--retries", "1"]
        )
    err = capsys.readouterr().err
    assert rc == 1 and "Authentication failed" in err and "CLICKHOUSE_PASSWORD" in err
    assert PASSWORD not in err and "%2F" not in err and err.count("\n") == 1
    assert "denied" not in ingest.list_datasets()


def test_a_429_is_retried(ch_store, home):
    with ClickHouseHTTP(str(ch_store), user=USER, password=PASSWORD) as ch:
        ch.throttle["/"] = 2
        url = f"clickhouse://{USER}:pw@127.0.0.1:{ch.port}/s_network_delay"
        ch.password = "pw"
        result = ingest.ingest_paths([url], "ch-429", pull=opts("network_delay"))
        statuses = len(ch.requests)
    assert result.spans > 0 and statuses >= 3


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":  # CI installs what the tests need: a skip would hide the TLS path
            pytest.fail("openssl is needed to make the TLS test's certificate (Debian package openssl)")
        pytest.skip("no openssl to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True,
        capture_output=True,
    )
    return str(d / "cert.pem"), str(d / "key.pem")


def test_secure_1_speaks_tls_and_verifies_the_certificate(ch_store, home, certificate):
    with ClickHouseHTTP(str(ch_store), user=USER, password="pw", tls=certificate) as ch:
        base = f"clickhouse://{USER}:pw@127.0.0.1:{ch.port}/s_network_delay"
        # a self-signed certificate: refused unless verify=0
        with pytest.raises(ingest.StoreError, match="(?i)certificate|ssl") as exc:
            ingest.ingest_paths([base + "?secure=1"], "tls-refused", pull=opts("network_delay", retries=0))
        assert ":pw@" not in str(exc.value)
        result = ingest.ingest_paths([base + "?secure=1&verify=0"], "tls", pull=opts("network_delay"))
        # without secure=1 the client speaks plain HTTP to a TLS port: an error, said once
        with pytest.raises(ingest.StoreError):
            ingest.ingest_paths([base], "tls-plain", pull=opts("network_delay", retries=0, timeout_s=5))
    assert result.spans > 0
    assert ingest.open_handle("tls").manifest["sources"][-1]["path"].endswith("?secure=1&verify=0")


# ---- Jaeger ----------------------------------------------------------------------------------------


def _spans_only_cases(files) -> list[str]:
    """Scenarios whose ranking does not rest on logs: the same top from the files without them."""
    return [n for n in NAMES if files[n][0] == files[n][1]]


def test_jaeger_every_scenario_not_resting_on_logs_has_the_same_top(home, files):
    cases = _spans_only_cases(files)
    assert len(cases) >= len(NAMES) - 2, files  # most rankings stand on the spans
    for name in cases:
        with JaegerV3(docs(name)) as j:
            r = ingest.ingest_paths([f"jaeger+http://127.0.0.1:{j.port}"], f"j-{name}", pull=opts(name))
            params = [dict(q["params"]) for q in j.requests if q["path"] == "/api/v3/traces"]
        assert r.spans == len(
            [
                1
                for d in docs(name)
                for rs in d["resourceSpans"]
                for ss in rs["scopeSpans"]
                for _ in ss["spans"]
            ]
        )
        assert top(f"j-{name}", name) == files[name][0], name
        assert all("query.serviceName" in p and "query.service_name" not in p for p in params)


def test_jaeger_before_camelcase_gets_the_snake_case_names(home):
    name = "network_delay"
    with JaegerV3(docs(name), old=True) as j:
        r = ingest.ingest_paths([f"jaeger+http://127.0.0.1:{j.port}"], "j-old", pull=opts(name))
        searches = [dict(q["params"]) for q in j.requests if q["path"] == "/api/v3/traces"]
    assert (
        r.spans == ingest.dataset_summary(f"j-{name}")["spans"]
        if f"j-{name}" in ingest.list_datasets()
        else r.spans > 0
    )
    assert "query.startTimeMin" in searches[0]  # tried first
    assert all("query.start_time_min" in p and "query.num_traces" in p for p in searches[1:])
    st = ingest.open_handle("j-old").manifest["sources"][-1]["store"]
    assert st["parameter_names"] == "deprecated snake_case"


def test_jaeger_paging_splits_full_searches_until_every_trace_is_fetched(home):
    name = "retry_storm"
    with JaegerV3(docs(name)) as j:
        r = ingest.ingest_paths(
            [f"jaeger+http://127.0.0.1:{j.port}"],
            "j-paged",
            pull=opts(name, search_depth=5, services=("frontend",)),
        )
        traces = {
            t
            for t in j.index.traces
            if any(j.index.service(res) == "frontend" for res, _, _ in j.index.traces[t])
        }
    st = ingest.open_handle("j-paged").manifest["sources"][-1]["store"]
    assert st["splits"] > 0 and st["traces"] == len(traces)
    with open_dataset("j-paged") as ds:
        assert ds.sql("SELECT count(DISTINCT trace_id) FROM spans").rows[0][0] == len(traces)
    assert r.spans > 0


def test_jaeger_empty_is_a_404_and_nothing_found_is_said(home):
    with JaegerV3(docs("healthy")) as j:
        with pytest.raises(ingest.NoInput, match="nothing between .* for frontend"):
            ingest.ingest_paths(
                [f"jaeger+http://127.0.0.1:{j.port}"],
                "j-empty",
                pull=ingest.PullOptions(start_ns=10**18, end_ns=10**18 + 10**9, services=("frontend",)),
            )
        answers = [q for q in j.requests if q["path"] == "/api/v3/traces"]
    assert answers


def test_jaeger_429_retried_headers_sent_never_recorded_and_one_trace(home, capsys):
    from mcp_server.cli import main

    name = "dependency_failure"
    token = "Bearer tok-SECRET-123"
    tid = next(
        iter(
            exporter.read_lines(SCENARIOS / name / "traces.jsonl")[0]["resourceSpans"][0]["scopeSpans"][0][
                "spans"
            ]
        )
    )["traceId"]
    with JaegerV3(docs(name)) as j:
        j.throttle["/api/v3/traces"] = 2
        rc = main(
            [
                "ingest",
                f"jaeger+http://user:pass-SECRET@127.0.0.1:{j.port}",
                "--trace",
                tid,
                "--trace",
                "f" * 32,
            ]
            + ["--header", f"Authorization: {token}", "--dataset", "j-one", "--json"]
        )
        out, err = capsys.readouterr()
        auth = {q["headers"].get("authorization") for q in j.requests}
    assert rc == 0, err
    result = json.loads(out)
    assert result["spans"] > 0 and "not found: trace " + "f" * 32 in result["sources"][0]["problem"]
    assert auth == {token}  # the header wins over the URL's user; both sent, neither kept
    with open_dataset("j-one") as ds:
        assert [tuple(r) for r in ds.sql("SELECT DISTINCT trace_id FROM spans").rows] == [(tid,)]
    blob = written(dcr_home()) + out.encode() + err.encode()
    assert b"SECRET" not in blob


def test_jaeger_gives_up_after_its_retries_and_says_so(home):
    with JaegerV3(docs("healthy")) as j:
        j.throttle["/api/v3/"] = 100
        with pytest.raises(ingest.StoreError, match="HTTP 429 after 2 tries"):
            ingest.ingest_paths(
                [f"jaeger+http://127.0.0.1:{j.port}"],
                "j-429",
                pull=opts("healthy", retries=1, services=("frontend",)),
            )


def test_a_credential_the_server_echoes_in_its_error_is_never_shown(home, capsys, monkeypatch):
    import base64

    from mcp_server.cli import main

    token = "SUPERSECRET123"
    basic = base64.b64encode(b"bob:hunter2pw").decode()
    tid = "ab" * 16
    for server, source, env in [
        (JaegerV3(docs("healthy")), "jaeger+http://127.0.0.1:{}", f"Authorization: Bearer {token}"),
        (Tempo(docs("healthy")), "tempo+http://bob:hunter2pw@127.0.0.1:{}", ""),
        (Tempo(docs("healthy")), "tempo+http://127.0.0.1:{}", f"Authorization: Bearer {token}"),
    ]:
        monkeypatch.setenv(ingest.stores.HEADERS_ENV, env)
        with server as s:
            s.echo_auth = True
            rc = main(["ingest", source.format(s.port), "--trace", tid, "--dataset", "echoed"])
            out, err = capsys.readouterr()
            with pytest.raises(ingest.StoreError) as caught:
                ingest.ingest_paths(
                    [source.format(s.port)],
                    "echoed",
                    pull=ingest.PullOptions(trace_ids=(tid,), headers=ingest.env_headers()),
                )
            sent = {q["headers"].get("authorization") for q in s.requests}
        assert rc != 0 and "HTTP 401" in err and "HTTP 401" in str(caught.value), err
        assert sent & {f"Bearer {token}", f"Basic {basic}"}  # the server did get the credential
        blob = written(dcr_home()) + out.encode() + err.encode() + str(caught.value).encode()
        blob += repr(caught.value.args).encode() + caught.value.reason.encode()
        for secret in (token, basic, "hunter2pw"):
            assert secret.encode() not in blob, (source, secret)


# ---- Tempo -----------------------------------------------------------------------------------------


def test_tempo_every_scenario_not_resting_on_logs_has_the_same_top(home, files, monkeypatch):
    monkeypatch.setenv(ingest.stores.HEADERS_ENV, "X-Scope-OrgID: tenant-a")
    for name in _spans_only_cases(files):
        with Tempo(docs(name), tenant="tenant-a") as t:
            r = ingest.ingest_paths(
                [f"tempo+http://127.0.0.1:{t.port}"],
                f"t-{name}",
                pull=opts(name, headers=ingest.env_headers(), search_depth=50),
            )
        assert r.spans > 0 and r.rejected == 0
        assert top(f"t-{name}", name) == files[name][0], name


def test_tempo_tenant_header_paging_query_and_missing_traces(home):
    name = "network_delay"
    with Tempo(docs(name), tenant="t1") as t:
        with pytest.raises(ingest.StoreError, match="HTTP 401"):
            ingest.ingest_paths([f"tempo+http://127.0.0.1:{t.port}"], "t-noorg", pull=opts(name))
        t.throttle["/api/traces/"] = 1
        r = ingest.ingest_paths(
            [f"tempo+http://127.0.0.1:{t.port}"],
            "t-paged",
            pull=opts(name, headers={"X-Scope-OrgID": "t1"}, search_depth=4, services=("users",)),
        )
        searches = [dict(q["params"]) for q in t.requests if q["path"] == "/api/search"]
        users = {
            tid
            for tid, spans in t.index.traces.items()
            if any(t.index.service(res) == "users" for res, _, _ in spans)
        }
        missing = ingest.ingest_paths(
            [f"tempo+http://127.0.0.1:{t.port}"],
            "t-missing",
            pull=ingest.PullOptions(
                trace_ids=(next(iter(users)), "ab" * 16), headers={"X-Scope-OrgID": "t1"}
            ),
        )
    assert searches[-1]["q"] == '{ resource.service.name = "users" }'
    st = ingest.open_handle("t-paged").manifest["sources"][-1]["store"]
    assert st["splits"] > 0 and st["traces"] == len(users) and r.spans > 0
    assert "X-Scope-OrgID" not in json.dumps(ingest.open_handle("t-paged").manifest)
    assert missing.spans > 0 and "1 trace(s) listed but not found" in missing.sources[0].problem


def test_a_trace_id_not_hex_is_refused_naming_it_before_any_request(home):
    for server, scheme in [(JaegerV3(docs("healthy")), "jaeger"), (Tempo(docs("healthy")), "tempo")]:
        with server as s:
            for bad in ("../services", "ab/cd", "xyz", "a" * 33, ""):
                with pytest.raises(ingest.StoreError, match="is not a trace id") as caught:
                    ingest.ingest_paths(
                        [f"{scheme}+http://127.0.0.1:{s.port}"],
                        "bad-id",
                        pull=ingest.PullOptions(trace_ids=("ab" * 16, bad)),
                    )
                assert repr(bad) in str(caught.value) and "\n" not in str(caught.value)
            assert s.requests == []


def test_tempo_an_error_drops_the_queued_fetches_without_waiting_for_them(home):
    import threading
    import time

    from ingest.stores.tempo import FETCH_THREADS

    release = threading.Event()

    class Slow(Tempo):
        def handle(self, method, path, params, headers, body):
            if path.endswith("/" + "0" * 31 + "1"):
                return 400, b"bad trace\n", {"Content-Type": "text/plain"}
            release.wait(10)
            return super().handle(method, path, params, headers, body)

    ids = tuple(f"{i:032x}" for i in range(1, 41))
    with Slow(docs("healthy")) as t:
        begun = time.monotonic()
        with pytest.raises(ingest.StoreError, match="HTTP 400"):
            ingest.ingest_paths(
                [f"tempo+http://127.0.0.1:{t.port}"], "t-cancel", pull=ingest.PullOptions(trace_ids=ids)
            )
        took = time.monotonic() - begun
        release.set()
        time.sleep(0.3)
        fetched = [q for q in t.requests if q["path"].startswith("/api/traces/")]
    assert took < 5, took  # the fetches in flight were not waited for
    assert len(fetched) < 2 * FETCH_THREADS, len(fetched)  # the queued ones were dropped


# ---- the MCP tool --------------------------------------------------------------------------------


def test_ingest_traces_takes_a_store_source(home):
    from tests.mcp_helpers import MODES, call, error_text, ok

    name = "network_delay"
    start, end = whole_range(name)
    with JaegerV3(docs(name)) as j:
        res = ok(
            call(
                MODES[0],
                "ingest_traces",
                {
                    "paths": [f"jaeger+http://127.0.0.1:{j.port}"],
                    "dataset": "mcp-pull",
                    "start": str(start),
                    "end": str(end),
                    "services": ["frontend"],
                },
            )
        )
        assert res["spans"] > 0 and res["sources"][0]["format"] == "jaeger_api_v3"
        text = error_text(
            call(
                MODES[0],
                "ingest_traces",
                {"paths": [f"jaeger+http://127.0.0.1:{j.port}"], "dataset": "mcp-x"},
            )
        )
    assert "needs a start and an end" in text or "start" in text


def test_ingest_traces_sends_this_machines_credentials_only_to_hosts_the_user_listed(home, monkeypatch):
    """A store an agent names must be on loopback, chdb://, or in DCR_STORE_HOSTS: a prompt
    cannot send DCR_STORE_HEADERS or CLICKHOUSE_PASSWORD to a host of its choosing."""
    from tests.mcp_helpers import MODES, call, error_text

    monkeypatch.setenv("DCR_STORE_HEADERS", "Authorization: Bearer SUPERSECRET123")
    args = {"dataset": "x", "start": "2025-06-12T09:00:00Z", "end": "2025-06-12T09:30:00Z"}
    text = error_text(
        call(MODES[0], "ingest_traces", {"paths": ["tempo+http://collector.evil.example:3200"], **args})
    )
    assert "not in DCR_STORE_HOSTS" in text and "SUPERSECRET123" not in text
    monkeypatch.setenv("DCR_STORE_HOSTS", "127.0.0.2")  # listed (loopback: nothing leaves the machine)
    text = error_text(call(MODES[0], "ingest_traces", {"paths": ["tempo+http://127.0.0.2:9"], **args}))
    assert "not in DCR_STORE_HOSTS" not in text  # the pull is tried, and fails: nothing listens there
