"""``pidgin serve`` in a real browser: Debian's headless Chromium, through selenium.

Runs are written by a separate process while the pages are open, so what the pages show
live is what a researcher would see. Screenshots go to ``test-artifacts/serve/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, Writer

LIVE_LIMIT = 2.0
"""Seconds within which an event written to a log must show on an open page (the issue's)."""

HOSTILE = (
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "<a href=\"javascript:window.__pwned = 'link'\">click me</a>",
    "\x1b[31mRED\x1b[0m \x1b]0;title\x07",
)


def _wait(browser: Any, css: str, timeout: float) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.05).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _all(browser: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, css))


def test_list_renders_a_run_started_during_the_test(
    output_root: Path,
    serve: Callable[..., Server],
    writer: Callable[..., Writer],
    browser: Any,
    screenshot: Callable[[str], Path],
) -> None:
    server = serve(output_root)
    browser.get(server.url)
    assert "No runs under this output root yet" in browser.page_source
    live = writer(output_root, "started-later", planned=2)
    live.conversation(max_turns=4)
    live.turn("hello", "hi", 0.4)
    row = _wait(browser, f'tr[data-id="{live.experiment_id}"]', 15)
    assert "started-later" in row.text
    assert "running" in row.text
    assert "0/2" in row.text
    screenshot("list")
    live.order("end")
    live.finish()
    row = _wait(browser, f'tr[data-id="{live.experiment_id}"] .status-completed', 15)
    assert row.text == "completed"


def test_conversation_page_shows_new_turns_while_the_run_goes_on(
    output_root: Path,
    serve: Callable[..., Server],
    writer: Callable[..., Writer],
    browser: Any,
    screenshot: Callable[[str], Path],
) -> None:
    live = writer(output_root, "live-chat")
    conversation = live.conversation(
        a="local:drift", b="local:echo", max_turns=6, prompt="Talk about rivers."
    )
    lines = [
        ("Rivers carve canyons over ages.", "Slowly, like patient sculptors."),
        ("Do rivers remember their sources?", "Only in the minerals they carry."),
        ("Then every delta is a memory.", "A memory spread thin across the sea."),
    ]
    live.turn(*lines[0], 0.21, thinking="Start with geology.")
    server = serve(output_root)
    browser.get(f"{server.url}experiments/{live.experiment_id}/conversations/{conversation}")
    first = _wait(browser, "#m0", 10)
    assert lines[0][0] in first.text
    assert "local:drift" in first.text
    assert "turn 1" in first.text
    assert "5 in · 9 out" in first.text
    thinking = _wait(browser, "#m0 details.thinking", 1)
    assert thinking.get_attribute("open") is None  # collapsed
    assert "Thinking (7 tokens)" in thinking.text
    assert "convergence 0.21" in _wait(browser, "#t1", 1).text
    for number, (a_text, b_text) in enumerate(lines[1:], start=2):
        score = round(0.2 * number, 2)
        live.turn(a_text, b_text, score)
        written = time.monotonic()
        reply = _wait(browser, f"#m{2 * number - 1}", LIVE_LIMIT)
        shown_after = time.monotonic() - written
        assert shown_after < LIVE_LIMIT
        assert b_text in reply.text
        assert f"turn {number}" in reply.text
        _wait(browser, f"#t{number}", LIVE_LIMIT)
        deadline = time.monotonic() + LIVE_LIMIT
        while f"{score:.2f}" not in _all(browser, f"#t{number}")[0].text:
            assert time.monotonic() < deadline, "convergence of the new turn not shown"
            time.sleep(0.05)
    texts = [m.text for m in _all(browser, "#transcript article.msg")]
    assert len(texts) == 2 * len(lines)
    for index, (a_text, b_text) in enumerate(lines):
        assert a_text in texts[2 * index]
        assert b_text in texts[2 * index + 1]
    assert _all(browser, "#turns-done")[0].text == "3"
    screenshot("conversation")
    live.order("end")
    _wait(browser, "#conv-status .status-completed", 5)
    live.finish()


def test_experiment_page_draws_one_curve_per_conversation(
    output_root: Path,
    serve: Callable[..., Server],
    writer: Callable[..., Writer],
    browser: Any,
    screenshot: Callable[[str], Path],
) -> None:
    live = writer(output_root, "curves", planned=3)
    conversations = []
    for n in range(3):
        conversations.append(live.conversation(max_turns=5))
        for turn in range(5):
            live.turn(f"a{n}{turn}", f"b{n}{turn}", round(0.1 * turn + 0.05 * n, 3))
        live.order("end")
    live.finish()
    server = serve(output_root)
    browser.get(f"{server.url}experiments/{live.experiment_id}")
    curves = _all(browser, "svg#curves polyline.curve")
    assert sorted(c.get_attribute("data-conversation") for c in curves) == sorted(conversations)
    for curve in curves:
        assert len(curve.get_attribute("points").split()) == 5
    assert len(_all(browser, "#conversations svg.spark")) == 3
    screenshot("experiment")


def test_search_finds_a_message(
    output_root: Path,
    serve: Callable[..., Server],
    writer: Callable[..., Writer],
    browser: Any,
) -> None:
    from selenium.webdriver.common.by import By

    live = writer(output_root, "searchable")
    conversation = live.conversation()
    live.turn("An ordinary sentence.", "The heron waits in the reeds.", 0.5)
    live.turn("Another one.", "And one more.", 0.6)
    server = serve(output_root)
    browser.get(server.url)
    box = browser.find_element(By.CSS_SELECTOR, "header input[name=q]")
    box.send_keys("HERON waits")
    box.submit()
    hit = _wait(browser, "#results li.hit", 10)
    assert "The heron waits in the reeds." in hit.text
    hit.find_element(By.TAG_NAME, "a").click()
    target = _wait(browser, "#m1", 10)
    assert browser.current_url.endswith(f"/conversations/{conversation}#m1")
    assert "The heron waits in the reeds." in target.text
    live.finish()


def test_graphql_and_the_event_stream_work_from_the_page(
    output_root: Path,
    serve: Callable[..., Server],
    writer: Callable[..., Writer],
    browser: Any,
) -> None:
    live = writer(output_root, "api")
    conversation = live.conversation()
    live.turn("graph", "ql", 0.3)
    server = serve(output_root)
    browser.get(server.url)
    browser.set_script_timeout(20)
    result = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch("/graphql", {method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify({query: "{ experiments { totalCount items { id name } } }"})})
          .then((r) => r.json()).then(done, (e) => done(String(e)));
        """
    )
    assert result["data"]["experiments"] == {
        "totalCount": 1,
        "items": [{"id": live.experiment_id, "name": "api"}],
    }
    stream = f"/experiments/{live.experiment_id}/conversations/{conversation}/events?after=0"
    browser.execute_script(
        """
        window.__events = [];
        const source = new EventSource(arguments[0]);
        source.addEventListener("message", (e) => window.__events.push(JSON.parse(e.data).content));
        """,
        stream,
    )
    deadline = time.monotonic() + 10
    while browser.execute_script("return window.__events.length") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.turn("streamed", "live", 0.4)
    while browser.execute_script("return window.__events.length") < 4:
        assert time.monotonic() < deadline + 10
        time.sleep(0.05)
    assert browser.execute_script("return window.__events") == ["graph", "ql", "streamed", "live"]
    live.finish()


@pytest.mark.parametrize("arrives", ["before the page opens", "while the page is open"])
def test_hostile_messages_never_execute_and_show_literally(  # noqa: PLR0917 - fixtures
    output_root: Path,
    serve: Callable[..., Server],
    writer: Callable[..., Writer],
    browser: Any,
    screenshot: Callable[[str], Path],
    arrives: str,
) -> None:
    live = writer(output_root, "hostile")
    conversation = live.conversation(a="<img src=x onerror=\"window.__pwned='model'\">:m")
    server = serve(output_root)
    page = f"{server.url}experiments/{live.experiment_id}/conversations/{conversation}"
    if arrives == "before the page opens":
        for text in HOSTILE:
            live.turn(text, text, 0.5, thinking=text)
        browser.get(page)
    else:
        live.turn("calm", "calm", 0.5)
        browser.get(page)
        _wait(browser, "#m1", 10)
        for text in HOSTILE:
            live.turn(text, text, 0.5, thinking=text)
    last = 2 * (len(HOSTILE) + (arrives != "before the page opens")) - 1
    _wait(browser, f"#m{last}", 10)
    shown = [
        e.get_attribute("textContent") for e in _all(browser, "#transcript article.msg > .text")
    ]
    expected = [_visible(text) for text in HOSTILE for _ in (0, 1)]
    assert shown[-len(expected) :] == expected
    thinking = [e.get_attribute("textContent") for e in _all(browser, "#transcript details .text")]
    assert thinking[-len(HOSTILE) :] == [_visible(t) for t in HOSTILE]
    for css in ("#transcript img", "#transcript script", "#transcript a", "script:not([src])"):
        assert _all(browser, css) == [], css
    links = [e for e in _all(browser, "#transcript article.msg > .text") if "click me" in e.text]
    assert links
    for element in links:
        element.click()  # were it a link, this would run its javascript: URL
    assert browser.current_url.startswith(page)
    time.sleep(0.3)  # give an injected handler the chance to run, were there one
    assert browser.execute_script("return window.__pwned === undefined")
    screenshot(arrives.replace(" ", "-"))
    for other in (
        f"{server.url}experiments/{live.experiment_id}",
        f"{server.url}search?q=onerror",
        server.url,
    ):
        browser.get(other)
        _wait(browser, "main", 10)
        assert _all(browser, "main img") == []
        assert _all(browser, "main script") == []
        assert browser.execute_script("return window.__pwned === undefined"), other
    live.finish()


def _visible(text: str) -> str:
    """How the page shows a message: control characters as escapes (like the terminal)."""
    from pidgin_cli._output import safe_text

    return safe_text(text, multiline=True)
