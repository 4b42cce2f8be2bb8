"""`dcr conversation start|continue|finalize|status|list`: multi-turn escalation, kept across restarts."""

from __future__ import annotations

import argparse
from typing import Any

from mcp_server.commands._escalation import add_request_arguments, request_from_args
from mcp_server.output import emit_json, info, warn

NAME = "conversation"
HELP = (
    "multi-turn escalation: start, continue (an empty message retries a failed turn), finalize, status, list"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_request_arguments(sub.add_parser("start", help="open a conversation on a dataset"))
    c = sub.add_parser("continue", help="ask a follow-up; an empty MESSAGE retries a failed turn")
    c.add_argument("session_id", metavar="SESSION")
    c.add_argument("message", metavar="MESSAGE", nargs="?", default="")
    c.add_argument("--json", action="store_true")
    f = sub.add_parser("finalize", help="close it with a summary")
    f.add_argument("session_id", metavar="SESSION")
    f.add_argument("--format", choices=("detailed", "concise", "actionable"), default="detailed")
    f.add_argument("--json", action="store_true")
    s = sub.add_parser("status", help="one conversation's state")
    s.add_argument("session_id", metavar="SESSION")
    s.add_argument("--json", action="store_true")
    L = sub.add_parser("list", help="all conversations")
    L.add_argument("--json", action="store_true")


def _turn(turn: Any, as_json: bool) -> None:
    if as_json:
        emit_json(turn)
    else:
        print(turn.report_markdown, end="")
    for w in turn.warnings:
        warn(w)
    info(f"session {turn.session_id}, turn {turn.turn}, {turn.turns_left} turns left")


def run(args: argparse.Namespace) -> int:
    import escalation

    if args.action == "start":
        _turn(escalation.start_conversation(request_from_args(args)), args.json)
    elif args.action == "continue":
        _turn(escalation.continue_conversation(args.session_id, args.message), args.json)
    elif args.action == "finalize":
        summary = escalation.finalize_conversation(args.session_id, args.format)
        if args.json:
            emit_json(summary)
        else:
            print(summary.summary_markdown, end="")
    elif args.action == "status":
        st = escalation.conversation_status(args.session_id)
        if args.json:
            emit_json(st)
        else:
            print(_status_line(st))
    else:
        rows = escalation.list_conversations()
        if args.json:
            emit_json({"conversations": rows, "total_count": len(rows)})
        elif not rows:
            info("no conversations yet: start one with 'dcr conversation start NAME --question …'")
        else:
            for st in rows:
                print(_status_line(st))
    return 0


def _status_line(s: Any) -> str:
    return (
        f"{s.session_id}  {s.state:<9} {s.turns}/{s.max_turns} turns"
        f"{f' ({s.failed_turns} failed)' if s.failed_turns else ''}  {s.provider} {s.model}  "
        f"{s.dataset or '-'}  {s.analysis_type}  expires {s.expires_at}  {s.question[:60]!r}"
    )
