"""One error contract (issue 13, seam 4): the packages say an error's kind and its remedy as data;
`mcp_server/errors.py` alone turns a kind into an exit code and a remedy into a `dcr` command for
the command line or an MCP tool for the agent (issue 17: no `dcr …` over MCP)."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

import correlate.errors as ce
import escalation.errors as ee
import ingest.errors as ie
from ingest.errors import ACTIONS, Kind, PackageError, Remedy
from ingest.migrations import DatasetTooNew
from ingest.stores import StoreError
from mcp_server import errors as face
from mcp_server.cli import main
from tests.mcp_helpers import MODES, call, error_text, ingest_fixture

REPO = Path(__file__).resolve().parent.parent

# Every package error class, one instance each, and the exit code `dcr` gave it before the
# contract (the three hand-written mappings it replaced): these must not change.
CLASSES = [
    (ie.IngestError("x"), Kind.INVALID_INPUT, 2),
    (ie.NoInput("no such file or folder: /nope"), Kind.INVALID_INPUT, 2),
    (ie.DatasetNotFound("nope", []), Kind.NOT_FOUND, 2),
    (ie.DatasetLocked("dataset 'c' is being written by another process"), Kind.LOCKED, 2),
    (ie.BadDatasetName("bad dataset name '../x'"), Kind.INVALID_INPUT, 2),
    (ie.DatasetWriteFailed("could not write dataset 'x' (/d/x): No space left on device"), Kind.FAILED, 1),
    (DatasetTooNew("dataset 'x' was written by a newer dcr"), Kind.UNUSABLE, 2),
    (StoreError("clickhouse://ch:8123/otel: connecting failed: Connection refused"), Kind.FAILED, 1),
    (ce.CorrelateError("cannot start DuckDB"), Kind.FAILED, 1),
    (ce.DatasetNotFound("nope", ["shop"]), Kind.NOT_FOUND, 2),
    (ce.DatasetUnusable("dataset 'x' was written by a newer dcr"), Kind.UNUSABLE, 2),
    (ce.SqlError("Parser Error: syntax error (at position 3)", 3), Kind.INVALID_INPUT, 2),
    (ce.QueryTimeout(30.0), Kind.TIMED_OUT, 1),
    (ce.QueryCancelled(), Kind.CANCELLED, 2),
    (ce.TraceNotFound("ab" * 16, "shop"), Kind.NOT_FOUND, 2),
    (ee.EscalationError("cannot open the escalation database"), Kind.FAILED, 1),
    (ee.BadRequest("unknown analysis type 'x'"), Kind.INVALID_INPUT, 2),
    (ee.DatasetUnavailable("cannot open dataset 'x'"), Kind.UNUSABLE, 2),
    (ee.DatasetUnavailable.of(ce.DatasetNotFound("x", [])), Kind.NOT_FOUND, 2),
    (ee.MissingApiKey(), Kind.NOT_CONFIGURED, 2),
    (ee.ProviderError("Gemini answered 500 after 4 attempts"), Kind.PROVIDER_FAILED, 1),
    (ee.ProviderTimeout("no answer within 300 s"), Kind.PROVIDER_FAILED, 1),
    (ee.MalformedReply("not the JSON the schema asks for"), Kind.PROVIDER_FAILED, 1),
    (ee.ConversationNotFound("conv_nope"), Kind.NOT_FOUND, 2),
    (ee.ConversationExpired("conversation c expired"), Kind.UNUSABLE, 2),
    (ee.ConversationFull("conversation c reached its 20 turns"), Kind.OVER_LIMIT, 2),
    (ee.ConversationBusy("conversation c is busy with another turn"), Kind.BUSY, 1),
]


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_package_error_class_is_in_the_table():
    listed = {type(e) for e, _, _ in CLASSES}
    ours = {
        c
        for c in _subclasses(PackageError)
        if c.__module__.split(".")[0] in ("ingest", "correlate", "escalation")
    }
    assert ours - listed == set(), "a new error class: give it a kind and add it to CLASSES"


@pytest.mark.parametrize(
    ("exc", "kind", "code"), CLASSES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v)
)
def test_exit_codes_are_unchanged(exc, kind, code):
    assert exc.kind == kind
    assert face.exit_code(exc) == code == face.EXIT_CODES[kind]


def test_every_kind_has_an_exit_code_and_a_class():
    assert set(face.EXIT_CODES) == {k.value for k in Kind}
    assert {kind for _, kind, _ in CLASSES} == set(Kind)


# For each kind: an error of that kind with a remedy, as each face words it.
REMEDY_BY_KIND = {
    Kind.INVALID_INPUT: Remedy("escalate", {"dataset": "shop", "dry_run": True}),
    Kind.NOT_FOUND: Remedy("run_sql", {"dataset": "shop", "sql": "SELECT trace_id FROM traces LIMIT 10"}),
    Kind.UNUSABLE: Remedy("start_conversation", {"dataset": "shop"}),
    Kind.LOCKED: Remedy("ingest", {"dataset": "other"}),
    Kind.OVER_LIMIT: Remedy("finalize_conversation", {"session_id": "conv_1"}),
    Kind.NOT_CONFIGURED: Remedy("escalate", {"provider": "offline"}),
    Kind.CANCELLED: Remedy("run_sql", {"dataset": "shop", "sql": "SELECT 1"}),
    Kind.TIMED_OUT: Remedy("run_sql", {"dataset": "shop", "sql": "SELECT count(*) FROM spans"}),
    Kind.PROVIDER_FAILED: Remedy("conversation_status", {"session_id": "conv_1"}),
    Kind.BUSY: Remedy("conversation_status", {"session_id": "conv_1"}),
    Kind.FAILED: Remedy("remove_dataset", {"dataset": "shop"}),
}
TOOL_OF = {
    "escalate": "escalate_analysis",
    "run_sql": "query_spans",
    "start_conversation": "start_conversation",
    "ingest": "ingest_traces",
    "finalize_conversation": "finalize_conversation",
    "conversation_status": "get_conversation_status",
    "list_conversations": "list_conversations",
    "list_datasets": "list_datasets",
}


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_each_kind_names_a_dcr_command_on_the_cli_and_a_tool_over_mcp(kind, capsys, monkeypatch):
    remedy = REMEDY_BY_KIND[kind]
    exc = PackageError("it went wrong in /tmp/x.json", ": try {}", remedy=remedy, kind=kind)
    cli, mcp = face.cli_message(exc), face.tool_message(exc)
    assert cli.startswith("it went wrong in /tmp/x.json: try 'dcr ") and "\n" not in cli
    assert mcp.startswith("it went wrong in /tmp/x.json: try ") and "\n" not in mcp
    assert "dcr" not in mcp and "--" not in mcp
    if remedy.action in TOOL_OF:
        assert TOOL_OF[remedy.action] in mcp
    else:  # no tool does it: the agent is told to ask its user, in words
        assert "no tool" in mcp
    # `dcr` prints it so, one line, with the kind's exit code, whichever command raised it
    import mcp_server.commands.datasets as command

    def boom(args):
        raise exc

    monkeypatch.setattr(command, "run", boom)
    assert main(["datasets"]) == face.EXIT_CODES[kind]
    assert capsys.readouterr().err == f"dcr: {cli}\n"


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_has_a_command_and_a_tool_wording(action):
    remedy = Remedy(action, {k: "x" for k in ACTIONS[action] if k not in ("paths", "dry_run")})
    assert face.cli_remedy(remedy).strip("'").startswith("dcr ")
    worded = face.tool_remedy(remedy)
    assert "dcr" not in worded and "--" not in worded
    assert worded.split(" ", 1)[0] in {*TOOL_OF.values(), "ask"}


def test_remedy_arguments_are_checked_and_rendered_for_pasting():
    with pytest.raises(ValueError, match="unknown remedy action"):
        Remedy("format_disk")
    with pytest.raises(ValueError, match="takes dataset, sql, not limit"):
        Remedy("run_sql", {"limit": 3})
    r = Remedy("run_sql", {"dataset": "my shop", "sql": "SELECT 'a'"})
    assert face.cli_remedy(r) == 'dcr sql "my shop" "SELECT \'a\'"'  # quoted as a whole only when it can be
    assert face.tool_remedy(r) == 'query_spans {"dataset": "my shop", "sql": "SELECT \'a\'"}'
    assert str(r) == "run_sql(dataset='my shop', sql=\"SELECT 'a'\")"  # the package's own, neutral form


def test_package_errors_keep_kind_and_remedy_through_pickle():
    for exc, _, _ in CLASSES:
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
        assert (back.kind, back.remedy, back.reason) == (exc.kind, exc.remedy, exc.reason)


def test_a_saved_bundle_is_named_by_both_faces():
    exc = ee.ProviderError("Gemini answered 503 after 4 attempts")
    exc.bundle_path = "/tmp/esc_1.md"
    assert face.cli_message(exc).endswith("(bundle saved: /tmp/esc_1.md)")
    assert face.tool_message(exc).endswith("(bundle saved: /tmp/esc_1.md)")


# ---- the packages name no face ------------------------------------------------------------------

_FACE_WORDS = re.compile(r"\bdcr [a-z]|(?:^|[\s(])--[a-z]")


def _raise_texts(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield node.lineno, sub.value


def test_package_errors_name_no_dcr_command_or_flag():
    found = []
    for pkg in ("ingest", "correlate", "escalation"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            for line, text in _raise_texts(path):
                if _FACE_WORDS.search(text):
                    found.append(f"{path.relative_to(REPO)}:{line}: {text!r}")
    assert found == [], "a package error names a face's command or flag: use a Remedy\n" + "\n".join(found)


# ---- end to end: the same error through `dcr` and through the MCP server ----------------------


def test_cli_unknown_trace_names_dcr_sql(capsys, dcr_home):
    ingest_fixture()
    assert main(["trace", "jaeger", "deadbeef" * 4]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"dcr: no spans of trace {'deadbeef' * 4!r} in dataset 'jaeger' "
        "(list some with: 'dcr sql jaeger \"SELECT trace_id FROM traces LIMIT 10\"')\n"
    )


@pytest.mark.parametrize("mode", MODES)
def test_mcp_unknown_trace_names_query_spans(mode, dcr_home):
    ingest_fixture()
    text = error_text(call(mode, "get_trace", {"dataset": "jaeger", "trace_id": "deadbeef" * 4}))
    assert text == (
        f"Error executing tool get_trace: no spans of trace {'deadbeef' * 4!r} in dataset 'jaeger' "
        '(list some with: query_spans {"dataset": "jaeger", "sql": "SELECT trace_id FROM traces LIMIT 10"})'
    )


def test_cli_no_datasets_names_dcr_ingest_and_unknown_conversation_dcr_conversation_list(capsys):
    assert main(["sql", "nope", "SELECT 1"]) == 2
    assert capsys.readouterr().err == (
        "dcr: no dataset named 'nope' (no datasets yet: run 'dcr ingest PATH --dataset nope' first)\n"
    )
    assert main(["conversation", "status", "conv_nope"]) == 2
    assert capsys.readouterr().err == (
        "dcr: no conversation 'conv_nope': list them with 'dcr conversation list' or start one\n"
    )


@pytest.mark.parametrize("mode", MODES)
def test_mcp_no_datasets_names_ingest_traces_and_unknown_conversation_list_conversations(mode):
    text = error_text(call(mode, "query_spans", {"dataset": "nope", "sql": "SELECT 1"}))
    assert text == (
        "Error executing tool query_spans: no dataset named 'nope' (no datasets yet: run "
        'ingest_traces {"paths": ["PATH"], "dataset": "nope"} first)'
    )
    text = error_text(call(mode, "get_conversation_status", {"session_id": "conv_nope"}))
    assert text == (
        "Error executing tool get_conversation_status: no conversation 'conv_nope': "
        "list them with list_conversations or start one"
    )


@pytest.mark.parametrize("mode", MODES)
def test_mcp_errors_of_every_package_are_tool_errors_without_dcr(mode):
    ingest_fixture()
    texts = [
        error_text(call(mode, "ingest_traces", {"paths": ["/no/such/file.json"], "dataset": "x"})),  # ingest
        error_text(call(mode, "query_spans", {"dataset": "jaeger", "sql": "DELETE FROM spans"})),  # correlate
        error_text(
            call(mode, "continue_conversation", {"session_id": "conv_nope", "message": "hi"})
        ),  # escalation
        error_text(call(mode, "list_datasets", {"cursor": "junk"})),  # the face's own: a bad cursor
    ]
    for text in texts:
        assert text.startswith("Error executing tool ") and "\n" not in text
        assert not re.search(r"\bdcr [a-z]", text), text


def test_cli_exit_codes_of_real_errors(capsys, dcr_home):
    ingest_fixture()
    assert main(["sql", "jaeger", "DELETE FROM spans"]) == 2  # invalid_input
    assert main(["ingest", "/no/such/file.json", "--dataset", "x"]) == 2  # invalid_input (ingest)
    assert main(["dataset", "show", "ghost"]) == 2  # not_found (ingest)
    assert main(["conversation", "continue", "conv_nope", "hi"]) == 2  # not_found (escalation)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and all(ln.startswith("dcr: ") for ln in lines), lines
