"""``pidgin serve`` over HTTP: GraphQL, pages, the event stream, tokens, headers, DuckDB.

Every test runs the real command in a subprocess against a real output root.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, Server, Writer, request

EXPERIMENTS = (
    "{ experiments(first: 50) { totalCount items { id name status"
    " progress { planned finished } } } }"
)


def test_print_schema_is_the_sdl(run_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = run_cli("serve", "--print-schema")
    assert result.returncode == 0, result.stderr
    for needed in ("type Query", "experiments(", "type Conversation", "history(", "type Message"):
        assert needed in result.stdout
    # docs/serve-schema.graphql is what the command prints (regenerate it with the command)
    assert (REPO / "docs" / "serve-schema.graphql").read_text() == result.stdout


def test_graphql_lists_experiments_and_reads_a_transcript(
    output_root: Path, make_experiment: Callable[..., Any], serve: Callable[..., Server]
) -> None:
    made = [
        make_experiment(f"run-{n}", outcomes=("completed",) * (n + 1), turns=n + 2)
        for n in range(3)
    ]
    server = serve(output_root)
    status, body = server.graphql(EXPERIMENTS)
    assert status == 200
    assert "errors" not in body, body
    page = body["data"]["experiments"]
    assert page["totalCount"] == len(made)
    assert {item["id"] for item in page["items"]} == {e.id for e in made}
    for item in page["items"]:
        n = int(item["name"].split("-")[1])
        assert item["progress"] == {"planned": n + 1, "finished": n + 1}

    query = """query ($id: String!) { experiment(id: $id) { conversations { id turnsCompleted
        convergence turns { number convergence messages { agentId turn content } } } } }"""
    status, body = server.graphql(query, {"id": made[2].id})
    conversations = body["data"]["experiment"]["conversations"]
    assert len(conversations) == 3
    for conversation in conversations:
        assert conversation["turnsCompleted"] == 4
        turns = conversation["turns"]
        assert [t["number"] for t in turns] == [1, 2, 3, 4]
        # write_experiment's scores cycle through (0.2, 0.5, 0.8) and its texts name the turn
        assert [t["convergence"] for t in turns] == [0.2, 0.5, 0.8, 0.2]
        assert conversation["convergence"] == [0.2, 0.5, 0.8, 0.2]
        for turn in turns:
            assert [m["content"] for m in turn["messages"]] == [
                f"a says {turn['number'] - 1}",
                f"b says {turn['number'] - 1}",
            ]
            assert {m["turn"] for m in turn["messages"]} == {turn["number"]}


def test_bad_queries_get_graphql_errors_never_tracebacks(
    output_root: Path, make_experiment: Callable[..., Any], serve: Callable[..., Server]
) -> None:
    make_experiment("one", outcomes=("completed",) * 3)
    server = serve(output_root)
    nested = (
        "{ a: experiments { items { id } } "
        + " ".join(f"a{n}: experiments {{ totalCount }}" for n in range(30))
        + " }"
    )
    costly = (
        "{ experiments(first: 500) { items { conversations(first: 500) { "
        "messages(first: 500) { content } } } } }"
    )
    cases = {
        "{ experiments { items { nosuchfield } } }": "nosuchfield",
        "{ experiments(first: 0) { totalCount } }": "between 1 and",
        '{ experiments(after: "x") { totalCount } }': "cursor",
        "{ experiments { ": "Syntax Error",
        nested: "aliases",
        "{ experiments { totalCount } }": None,
    }
    for query, expected in cases.items():
        status, body = server.graphql(query)
        assert status == 200
        if expected is None:
            assert "errors" not in body
            continue
        messages = " ".join(e["message"] for e in body["errors"])
        assert expected.lower() in messages.lower(), (query, body)
        assert "Traceback" not in json.dumps(body)
    status, body = server.graphql(costly)
    assert "errors" not in body  # nothing to return: the budget counts what is returned
    # A body that is not JSON, a form post, a missing query: HTTP errors with a JSON message
    for data, kind, code in (
        (b"{not json", "application/json", 400),
        (b"query=x", "application/x-www-form-urlencoded", 415),
        (b"{}", "application/json", 400),
    ):
        status, _, text = request(server.url + "graphql", data=data, headers={"Content-Type": kind})
        assert status == code, text
        assert json.loads(text)["errors"], text
    assert "Traceback" not in server.stop()


def test_query_depth_limit(
    output_root: Path, make_experiment: Callable[..., Any], serve: Callable[..., Server]
) -> None:
    from pidgin_cli._serve._types import MAX_DEPTH

    make_experiment("one")
    server = serve(output_root)

    def nested(depth: int) -> str:
        """experiments.items.conversations.experiment... at ``depth`` (top-level fields: 0)."""
        names = ["experiments", "items"] + ["conversations", "experiment"] * depth
        inner = "id"
        for name in reversed(names[:depth]):
            inner = f"{name} {{ {inner} }}"
        return "{ " + inner + " }"

    status, body = server.graphql(nested(MAX_DEPTH))
    assert status == 200
    assert "errors" not in body, body
    status, body = server.graphql(nested(MAX_DEPTH + 1))
    assert status == 200
    assert body["data"] is None
    assert any("exceeds maximum operation depth" in e["message"] for e in body["errors"]), body


def test_cost_limit_refuses_a_query_returning_too_much(
    output_root: Path, make_experiment: Callable[..., Any], serve: Callable[..., Server]
) -> None:
    from pidgin_cli._serve._types import MAX_ALIASES, MAX_COST

    conversations, turns = 20, 30
    make_experiment("big", outcomes=("completed",) * conversations, turns=turns, max_turns=turns)
    one = "experiments { items { conversations { messages(first: 500) { index } } } }"
    returned = 1 + conversations + conversations * turns * 2  # by one copy of `one`
    copies = MAX_COST // returned + 1
    assert copies <= MAX_ALIASES
    server = serve(output_root)
    status, body = server.graphql("{ " + " ".join(f"c{n}: {one}" for n in range(copies)) + " }")
    assert status == 200
    assert any("too costly" in e["message"] for e in body["errors"]), body
    status, body = server.graphql("{ " + " ".join(f"c{n}: {one}" for n in range(copies - 1)) + " }")
    assert "errors" not in body
    small = (
        "{ experiments(first: 1) { items { conversations(first: 2)"
        " { messages(first: 3) { index } } } } }"
    )
    status, body = server.graphql(small)
    assert "errors" not in body
    items = body["data"]["experiments"]["items"]
    assert [len(c["messages"]) for c in items[0]["conversations"]] == [3, 3]


def test_pages_escape_and_link_by_stable_urls(
    output_root: Path,
    make_experiment: Callable[..., Any],
    writer: Callable[..., Writer],
    serve: Callable[..., Server],
) -> None:
    experiment = make_experiment("plain", outcomes=("completed",) * 2)
    live = writer(output_root, "hostile")
    hostile = live.conversation(a="<b>bold</b>:model")
    live.turn("<i>tilt</i> & \x1b]0;title\x07", "fine", 0.5)
    server = serve(output_root)
    status, headers, html = server.get("/")
    assert status == 200
    assert f'href="/experiments/{experiment.id}"' in html
    assert f'href="/experiments/{live.experiment_id}"' in html
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, page = server.get(f"/experiments/{live.experiment_id}")
    assert "&lt;b&gt;bold&lt;/b&gt;:model" in page
    assert "<b>bold" not in page
    status, _, chat = server.get(f"/experiments/{live.experiment_id}/conversations/{hostile}")
    assert "&lt;i&gt;tilt&lt;/i&gt; &amp; \\x1b]0;title\\x07" in chat, chat
    assert "<i>" not in chat
    assert "\x1b" not in chat
    status, _, page = server.get(f"/experiments/{experiment.id}")
    assert status == 200
    conversations = sorted(
        p.name.split("_events")[0]
        for p in (output_root / "experiments" / experiment.id).glob("conv_*")
    )
    assert page.count('class="curve"') == len(conversations) == 2
    for conversation_id in conversations:
        url = f"/experiments/{experiment.id}/conversations/{conversation_id}"
        assert f'href="{url}"' in page
        status, _, chat = server.get(url)
        assert status == 200
        assert "a says 0" in chat
        assert "Turn 3" in chat
    assert server.get("/experiments/nope")[0] == 404
    assert server.get(f"/experiments/{experiment.id}/conversations/nope")[0] == 404
    live.finish()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../../etc/passwd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/_http.py",
        "/static/..%2f_http.py",
        "/experiments/..%2f..%2f..%2fetc",
        "/experiments/%2e%2e/conversations/%2e%2e",
        "//etc/passwd",
        "/experiments.duckdb",
        "/experiments/experiments.duckdb",
    ],
)
def test_request_paths_never_reach_the_filesystem(
    output_root: Path, make_experiment: Callable[..., Any], serve: Callable[..., Server], path: str
) -> None:
    make_experiment("one")
    server = serve(output_root)
    status, _, body = server.get(path)
    assert status == 404, (path, status)
    assert "root:" not in body
    assert "import" not in body


def test_static_assets_are_the_packaged_files(
    output_root: Path, serve: Callable[..., Server]
) -> None:
    from importlib.resources import files

    server = serve(output_root)
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = server.get(f"/static/{name}")
        assert status == 200
        assert headers["Content-Type"].startswith(kind)
        assert body == (files("pidgin_cli._serve") / "static" / name).read_text()
        assert "http://" not in body
        assert "https://" not in body


def test_other_address_requires_the_token_on_every_request(
    output_root: Path, make_experiment: Callable[..., Any], serve: Callable[..., Server]
) -> None:
    experiment = make_experiment("guarded")
    server = serve(output_root, "--host", "0.0.0.0")
    assert server.token, server.banner
    url = server.url.replace("0.0.0.0", "127.0.0.1")
    conversation = next((output_root / "experiments" / experiment.id).glob("conv_*")).name.split(
        "_events"
    )[0]
    paths = [
        "",
        f"experiments/{experiment.id}",
        f"experiments/{experiment.id}/conversations/{conversation}",
        f"experiments/{experiment.id}/conversations/{conversation}/events",
        "search?q=says",
        "static/app.js",
        "graphql?query=%7Bexperiments%7BtotalCount%7D%7D",
    ]
    for path in paths:
        assert request(url + path)[0] == 401, path
        assert request(url + path, headers={"Authorization": "Bearer wrong"})[0] == 401, path
        assert request(url + path, headers={"Cookie": "pidgin_token=wrong"})[0] == 401, path
    bearer = {"Authorization": f"Bearer {server.token}"}
    for path in paths[:3] + paths[4:]:
        assert request(url + path, headers=bearer)[0] == 200, path
    status, body = Server.graphql(_at(server, url), EXPERIMENTS, headers=bearer)
    assert body["data"]["experiments"]["totalCount"] == 1
    status, headers, _ = request(url + f"?token={server.token}")
    assert status == 303
    assert headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    assert request(url, headers={"Cookie": cookie})[0] == 200
    # the event stream checks it too (first bytes with the token, 401 without)
    with urllib.request.urlopen(
        urllib.request.Request(url + paths[3], headers=bearer), timeout=10
    ) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")


def _at(server: Server, url: str) -> Server:
    server.url = url
    return server


def test_loopback_server_refuses_foreign_host_names(
    output_root: Path, serve: Callable[..., Server]
) -> None:
    server = serve(output_root)
    assert server.token is None
    assert server.get("/", headers={"Host": "evil.example:80"})[0] == 403
    assert server.get("/", headers={"Host": "localhost"})[0] == 200


@pytest.mark.parametrize("token", ["short", "has space in it", "semi;colon=1", "x" * 257])
def test_unusable_tokens_are_refused(
    run_cli: Callable[..., subprocess.CompletedProcess[str]], token: str
) -> None:
    result = run_cli("serve", "--port", "0", "--token", token, timeout=30)
    assert result.returncode == 1
    assert "--token must be 8 to 256 characters" in result.stderr


def test_token_given_is_required_even_on_loopback(
    output_root: Path, serve: Callable[..., Server]
) -> None:
    server = serve(output_root, "--token", "s3cret-token")
    assert server.token == "s3cret-token"
    assert server.get("/")[0] == 401
    assert server.get("/", headers={"Authorization": "Bearer s3cret-token"})[0] == 200


def test_event_stream_sends_new_turns_as_they_are_written(
    output_root: Path, writer: Callable[..., Writer], serve: Callable[..., Server]
) -> None:
    live = writer(output_root, "streamed")
    conversation = live.conversation(max_turns=5)
    live.turn("first words", "first reply", 0.1)
    server = serve(output_root)
    url = (
        f"{server.url}experiments/{live.experiment_id}/conversations/{conversation}/events?after=0"
    )
    with urllib.request.urlopen(url, timeout=30) as stream:
        events = _EventReader(stream)
        seen = events.until(lambda e: e[0] == "turn" and e[1]["turn"] == 1 and e[1]["completed"])
        assert [e[1]["content"] for e in seen if e[0] == "message"] == [
            "first words",
            "first reply",
        ]
        written = time.monotonic()
        live.turn("second words", "second \x1b[31mreply", 0.7)
        seen = events.until(lambda e: e[0] == "turn" and e[1]["turn"] == 2 and e[1]["completed"])
        assert time.monotonic() - written < 2.0
        messages = [e[1] for e in seen if e[0] == "message"]
        assert [m["content"] for m in messages] == ["second words", "second \\x1b[31mreply"]
        assert [m["index"] for m in messages] == [2, 3]
        assert seen[-1][1]["convergence"] == 0.7
        live.order("end")
        seen = events.until(lambda e: e[0] == "end")
        assert seen[-1][1]["status"] == "completed"
    live.finish()


class _EventReader:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def until(
        self, done: Callable[[tuple[str, dict[str, Any]]], bool]
    ) -> list[tuple[str, dict[str, Any]]]:
        seen: list[tuple[str, dict[str, Any]]] = []
        name = ""
        while True:
            line = self.stream.readline().decode()
            if not line:
                raise AssertionError(f"stream ended; saw {seen}")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                seen.append((name, json.loads(line[6:])))
                if done(seen[-1]):
                    return seen


def test_search_finds_messages_by_words(
    output_root: Path,
    writer: Callable[..., Writer],
    make_experiment: Callable[..., Any],
    serve: Callable[..., Server],
) -> None:
    make_experiment("other")
    live = writer(output_root, "searched")
    conversation = live.conversation()
    live.turn("Nothing here", 'The Zebra crossing is "quoted"', 0.3)
    server = serve(output_root)
    query = (
        "query ($t: String!) { search(text: $t)"
        " { experimentId conversationId turn agentId content url } }"
    )
    for words in ("zebra crossing", 'is "quoted"', "ZEBRA"):
        status, body = server.graphql(query, {"t": words})
        hits = body["data"]["search"]
        assert len(hits) == 1, (words, body)
        assert hits[0]["conversationId"] == conversation
        assert hits[0]["turn"] == 1
        assert hits[0]["agentId"] == "agent_b"
    assert server.graphql(query, {"t": "no such words"})[1]["data"]["search"] == []
    status, _, html = server.get("/search?q=zebra")
    assert status == 200
    assert "The Zebra crossing is &quot;quoted&quot;" in html
    assert f"/conversations/{conversation}#m1" in html
    live.finish()


def test_history_reads_duckdb_and_reports_a_locked_database(
    output_root: Path,
    make_experiment: Callable[..., Any],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    serve: Callable[..., Server],
) -> None:
    made = [
        make_experiment(f"loaded-{n}", outcomes=("completed",) * (n + 1), turns=3) for n in range(2)
    ]
    loaded = run_cli("load-db", "--all")
    assert loaded.returncode == 0, loaded.stderr
    server = serve(output_root)
    query = "{ history { experimentId conversations turns } }"
    _, body = server.graphql(query)
    assert "errors" not in body, body
    rows = {r["experimentId"]: r for r in body["data"]["history"]}
    assert set(rows) == {e.id for e in made}
    for n, experiment in enumerate(made):
        assert rows[experiment.id]["conversations"] == n + 1
        assert rows[experiment.id]["turns"] == 3 * (n + 1)
    by_turn = (
        "query ($id: String!) { experiment(id: $id)"
        " { convergenceByTurn { turn mean conversations } } }"
    )
    _, body = server.graphql(by_turn, {"id": made[1].id})
    aggregates = body["data"]["experiment"]["convergenceByTurn"]
    assert [(a["turn"], a["mean"], a["conversations"]) for a in aggregates] == [
        (1, 0.2, 2),
        (2, 0.5, 2),
        (3, 0.8, 2),
    ]
    # Another process holds the database for writing, as a load does: reported at once.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); sys.stdin.read()",
            str(output_root / "experiments" / "experiments.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        _status, body = server.graphql(query)
        assert time.monotonic() - started < 5
        assert body["data"] is None
        assert "locked by a load in progress" in body["errors"][0]["message"]
        # the live views do not touch the database: they still answer
        assert server.graphql(EXPERIMENTS)[1]["data"]["experiments"]["totalCount"] == 2
    finally:
        holder.communicate("", timeout=30)


def test_without_the_extra_serve_says_how_to_install_it(output_root: Path, tmp_path: Path) -> None:
    hider = tmp_path / "hide" / "strawberry"
    hider.mkdir(parents=True)
    (hider / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {
        "PYTHONPATH": f"{hider.parent}{__import__('os').pathsep}"
        + __import__("os").pathsep.join(p for p in sys.path if p),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pidgin_cli", "-o", str(output_root), "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert 'pip install "pidgin-cli[serve]"' in result.stderr
    assert "Traceback" not in result.stderr


def test_help_does_not_import_the_server() -> None:
    code = (
        "import sys; from pidgin_cli._main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('strawberry', 'graphql', 'pidgin_cli._serve')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "serve" in result.stdout.split("Commands")[1]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_port_in_use_is_a_clear_error(
    output_root: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), timeout=30)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_pidgin_ai_experiments_read_like_ours(
    legacy_root: Path, serve: Callable[..., Server]
) -> None:
    """Logs written by pidgin-ai 1.1: every message of every conversation is shown."""
    server = serve(legacy_root)
    _, body = server.graphql(
        "{ experiments(first: 100) { items { id directory"
        " conversations(first: 500) { id messages(first: 500) { turn content } } } } }"
    )
    assert "errors" not in body, body
    items = body["data"]["experiments"]["items"]
    assert len(items) == len([p for p in (legacy_root / "experiments").iterdir() if p.is_dir()])
    checked = 0
    for item in items:
        directory = legacy_root / "experiments" / item["directory"]
        for conversation in item["conversations"]:
            log = next(directory.glob(f"*{conversation['id']}*.jsonl"))
            written = [
                json.loads(line)["message"]["content"]
                for line in log.read_text().splitlines()
                if '"event_type":"MessageCompleteEvent"' in line.replace(" ", "")
            ]
            assert [m["content"] for m in conversation["messages"]] == written
            assert all(m["turn"] >= 1 for m in conversation["messages"])
            checked += len(written)
            status, _, html = server.get(
                f"/experiments/{item['id']}/conversations/{conversation['id']}"
            )
            assert status == 200
            assert html.count('class="msg ') == len(written)
    assert checked > 0


def test_cost_is_summed_from_the_messages_for_runs_and_conversations(
    output_root: Path, writer: Callable[..., Writer], serve: Callable[..., Server]
) -> None:
    live = writer(output_root, "priced")
    conversation = live.conversation(max_turns=3)
    costs = [0.0125, 0.25, 0.0375]
    for n, cost in enumerate(costs):
        live.turn(f"words {n}", f"reply {n}", 0.5, cost=cost)
    server = serve(output_root)
    query = """query ($id: String!) { experiment(id: $id) { tokens { costUsd }
        conversations { id tokens { costUsd messages } } } }"""
    status, body = server.graphql(query, {"id": live.experiment_id})
    assert status == 200
    assert "errors" not in body, body
    experiment = body["data"]["experiment"]
    assert experiment["tokens"]["costUsd"] == pytest.approx(sum(costs))
    [only] = experiment["conversations"]
    assert only["id"] == conversation
    assert only["tokens"] == {"costUsd": pytest.approx(sum(costs)), "messages": 2 * len(costs)}
    status, _, page = request(server.url)
    assert status == 200
    assert f"${sum(costs):.4f}" in page


def test_messages_of_a_discarded_turn_are_not_shown(
    output_root: Path, serve: Callable[..., Server]
) -> None:
    """A turn half done when a run was killed is discarded by the resume and run again:
    its message stays in the log but is no part of the conversation serve shows."""
    import pidgin_events as pe

    with (
        pe.Experiment.create(output_root, name="resumed", total_conversations=1) as exp,
        exp.conversation(agent_a="local:a", agent_b="local:b", max_turns=2) as conv,
    ):
        conv.turn_start()
        conv.message("agent_a", "first from a", prompt_tokens=1, completion_tokens=3)
        conv.message("agent_b", "first from b", prompt_tokens=1, completion_tokens=3)
        conv.turn_complete(convergence_score=0.5)
        conv.turn_start()
        conv.message("agent_a", "half said", prompt_tokens=1, completion_tokens=2)
        conv.emit(
            pe.TurnDiscardedEvent(conversation_id=conv.id, turn_number=1, messages_discarded=1)
        )
        conv.turn_start()
        conv.message("agent_a", "said again", prompt_tokens=1, completion_tokens=2)
        conv.message("agent_b", "answered", prompt_tokens=1, completion_tokens=1)
        conv.turn_complete(convergence_score=0.6)
    server = serve(output_root)
    query = """query ($id: String!) { experiment(id: $id) { conversations {
        messages { content } turns { number messages { content } } } } }"""
    _, body = server.graphql(query, {"id": exp.id})
    (conversation,) = body["data"]["experiment"]["conversations"]
    said = ["first from a", "first from b", "said again", "answered"]
    assert [m["content"] for m in conversation["messages"]] == said
    assert [[m["content"] for m in t["messages"]] for t in conversation["turns"]] == [
        said[:2],
        said[2:],
    ]
    search = "query ($t: String!) { search(text: $t) { content } }"
    assert server.graphql(search, {"t": "half said"})[1]["data"]["search"] == []
    status, _, html = server.get(f"/experiments/{exp.id}/conversations/{conv.id}")
    assert status == 200
    assert "said again" in html
    assert "half said" not in html
