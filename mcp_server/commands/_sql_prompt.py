"""`dcr sql NAME` on a terminal: a SQL prompt over the dataset's sealed, read-only session.

    shop> SELECT service_name, count(*)
     ...> FROM spans GROUP BY 1;
    service_name  count_star()
    …
    11 rows in 0.004 s

A statement runs when its last line ends with ';'; a line that starts with '.' is a command
(.schema [VIEW], .views, .timing on|off, .help, .quit). Tab completes view, column and command
names. Ctrl-C while typing clears the input; while a query runs, it cancels the query and the
prompt stays. Ctrl-D (or .quit) leaves. History: $DCR_HOME/sql_history.

Queries go through `DatasetSession.sql`: the same guard, row cap and one-line errors as
`dcr sql NAME "…"`. The line editor is prompt_toolkit; `Shell` holds everything else, so it can
be driven without a terminal.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from correlate import views
from mcp_server.output import print_table

__all__ = ["Shell", "run_prompt", "statement_complete", "HISTORY_FILE"]

HISTORY_FILE = "sql_history"
COMMANDS = (".schema", ".views", ".timing", ".help", ".quit", ".exit")
# completed besides the views and their columns
KEYWORDS = (
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "HAVING",
    "JOIN",
    "USING",
    "WITH",
    "DISTINCT",
    "DESC",
    "count",
    "quantile_cont",
    "approx_quantile",
    "median",
    "avg",
    "max",
    "min",
    "sum",
    "time_bucket",
    "epoch_ns",
    "make_timestamp",
)
HELP = """\
.schema [VIEW]    columns and types of every view (or of one)
.views            the views and what they hold
.timing on|off    print the time of each query (on)
.help             this text
.quit             leave (also Ctrl-D)
A statement runs when it ends with ';'. Tab completes names. Ctrl-C cancels a running query."""


def statement_complete(text: str) -> bool:
    """Whether Enter runs `text`: empty, a dot command, or a statement ending in ';'."""
    stripped = text.strip()
    return not stripped or stripped.startswith(".") or stripped.endswith(";")


class Shell:
    """What the prompt does with one input, apart from the line editor."""

    def __init__(
        self,
        ds: Any,
        *,
        limit: int,
        timeout_s: float | None,
        out: Callable[[str], None] = print,
        err: Callable[[str], None] | None = None,
    ) -> None:
        self.ds = ds
        self.limit = limit
        self.timeout_s = timeout_s
        self.timing = True
        self.out = out
        self.err = err or (lambda line: print(line, file=sys.stderr))
        self.columns = ds.columns()

    def words(self) -> list[str]:
        """What Tab completes outside a command: views, their columns, a few keywords."""
        names = list(views.VIEW_NAMES)
        names += sorted({c for cols in self.columns.values() for c, _ in cols} - set(names))
        return names + list(KEYWORDS)

    def handle(self, text: str) -> bool:
        """Run one input; False when the prompt should end."""
        text = text.strip()
        if not text:
            return True
        if text.startswith("."):
            return self.command(text)
        self.query(text)
        return True

    def command(self, text: str) -> bool:
        name, _, arg = text.partition(" ")
        arg = arg.strip().rstrip(";").strip()
        if name in (".quit", ".exit"):
            return False
        if name == ".help":
            self.out(HELP)
        elif name == ".views":
            for view in views.VIEW_NAMES:
                self.out(f"{view:<14} {views.DESCRIPTIONS[view]}")
        elif name == ".schema":
            self._schema(arg)
        elif name == ".timing" and arg in ("on", "off"):
            self.timing = arg == "on"
        else:
            self.err(f"error: unknown command {text!r} (see .help)")
        return True

    def _schema(self, view: str) -> None:
        if view and view not in self.columns:
            self.err(f"error: no view {view!r}: one of {', '.join(views.VIEW_NAMES)}")
            return
        for name in [view] if view else views.VIEW_NAMES:
            cols = self.columns[name]
            width = max((len(c) for c, _ in cols), default=0)
            self.out(f"{name} ({len(cols)} columns)")
            for column, dtype in cols:
                self.out(f"  {column:<{width}}  {dtype}")

    def query(self, text: str) -> None:
        """Run `text` on a worker thread; Ctrl-C (KeyboardInterrupt here) interrupts the query."""
        import correlate

        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = self.ds.sql(text, limit=self.limit, timeout_s=self.timeout_s)
            except correlate.CorrelateError as exc:
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="dcr-sql-query", daemon=True).start()
        # an Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
        # marked as finished while it still runs
        while not done.is_set():
            try:
                done.wait(0.05)
            except KeyboardInterrupt:
                self.ds.interrupt()
        if "error" in box:
            from mcp_server.errors import cli_message

            self.err(f"error: {cli_message(box['error'])}")
            return
        result = box["result"]
        print_table(result.columns, result.rows)
        if self.timing:
            note = f"{len(result.rows)} rows in {result.seconds:.3f} s"
            if result.truncated:
                note += f" (truncated at {result.row_cap} rows: add LIMIT or start dcr sql with --limit)"
            self.err(note)


def run_prompt(ds: Any, *, limit: int, timeout_s: float | None) -> int:
    """The interactive loop on the terminal; returns the exit code (0)."""
    from prompt_toolkit import PromptSession

    shell = Shell(ds, limit=limit, timeout_s=timeout_s)
    session: PromptSession[str] = PromptSession(
        history=_history(),
        multiline=True,
        key_bindings=_bindings(),
        completer=_completer(shell.words()),
        complete_while_typing=False,
        prompt_continuation=lambda width, line_number, wrap_count: "...> ".rjust(width),
    )
    print(
        f"dataset {ds.name}: views {', '.join(views.VIEW_NAMES)}. End a statement with ';'. "
        ".help for commands, Ctrl-D to leave.",
        file=sys.stderr,
    )
    while True:
        try:
            text = session.prompt(f"{ds.name}> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        try:
            if not shell.handle(text):
                return 0
        except KeyboardInterrupt:  # a Ctrl-C that came as the query ended
            continue


def _history() -> Any:
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from ingest.dataset import dcr_home

    path = dcr_home() / HISTORY_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        print(
            f"warning: no history file ({exc.strerror}: {path}); history lasts this session only",
            file=sys.stderr,
        )
        return InMemoryHistory()
    return FileHistory(str(path))


def _bindings() -> Any:
    from prompt_toolkit.enums import DEFAULT_BUFFER
    from prompt_toolkit.filters import has_focus
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @kb.add("enter", filter=has_focus(DEFAULT_BUFFER))  # not in Ctrl-R's search field: Enter ends the search
    def _(event: Any) -> None:
        buf = event.current_buffer
        if statement_complete(buf.text):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n")

    return kb


def _completer(words: Iterable[str]) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    names = list(words)

    class Names(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Completion]:
            before = document.text_before_cursor
            if before.lstrip().startswith(".") and " " not in before.strip():
                word, candidates = before.strip(), list(COMMANDS)
            else:
                word, candidates = document.get_word_before_cursor(), names
            if not word or not (word[0].isalnum() or word[0] in "._"):
                return
            for c in candidates:
                if c.lower().startswith(word.lower()) and c != word:
                    yield Completion(c, start_position=-len(word))

    return Names()
