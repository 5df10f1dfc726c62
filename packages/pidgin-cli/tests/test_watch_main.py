"""The root command: version, help, lazy imports, exit statuses, completion."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RunCli = Callable[..., subprocess.CompletedProcess[str]]
Env = Callable[..., dict[str, str]]

HEAVY = ("rich", "duckdb", "pidgin_state", "pidgin_load")


def test_version_prints_the_package_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pidgin 0.1.0"


README = Path(__file__).resolve().parents[1] / "README.md"


def _help_commands(run_cli: RunCli, *group: str) -> set[str]:
    """The commands ``pidgin GROUP --help`` lists (wrapped descriptions skipped)."""
    result = run_cli(*group, "--help")
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("Commands:\n")[1].split("\n\n")[0]  # not the epilog
    return {line.split()[0] for line in listing.splitlines() if line[:2] == "  " != line[:3]}


def _readme_tree() -> dict[tuple[str, ...], set[str]]:
    """The command tree of the package README: group path -> the commands under it."""
    text = README.read_text("utf-8")
    block = text.split("## The commands\n\n```\npidgin\n", 1)[1].split("```", 1)[0]
    tree: dict[tuple[str, ...], set[str]] = {(): set()}
    path: list[str] = []
    for line in block.splitlines():
        prefix, _, rest = line.partition("\u2500\u2500 ")  # the box drawing before a name
        depth = len(prefix) // 4
        name = rest.split()[0]
        if "(hidden)" in rest:
            continue
        del path[depth:]
        tree.setdefault(tuple(path), set()).add(name)
        path.append(name)
        if depth == 0:
            tree.setdefault((name,), set())
    return {group: names for group, names in tree.items() if names}


def test_the_readme_tree_is_what_help_lists(run_cli: RunCli) -> None:
    tree = _readme_tree()
    assert {"branch", "models", "spec", "load-db"} <= tree[()]
    assert "resume" in tree[("experiment",)]
    for group, names in tree.items():
        assert _help_commands(run_cli, *group) == names, group
    groups = {name for name in _help_commands(run_cli) if (name,) in tree}
    assert groups == {"experiment", "spec"}  # every group of --help is in the tree


def test_help_lists_load_db_which_every_not_loaded_message_names(run_cli: RunCli) -> None:
    assert "load-db" in _help_commands(run_cli)
    result = run_cli("load-db", "--help")
    assert result.returncode == 0, result.stderr
    assert "--force" in result.stdout


def _modules_after(cli_env: Env, args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = ['pidgin', *{args!r}]\n"
        "from pidgin_cli._main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


def test_help_imports_nothing_heavy(cli_env: Env, output_root: Path) -> None:
    for args in (["--help"], ["experiment", "--help"], ["--version"], ["monitor", "--help"]):
        loaded = _modules_after(cli_env, args)
        heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
        assert heavy == [], (args, heavy)
    # The probe sees heavy modules when a command really needs them.
    loaded = _modules_after(cli_env, ["-o", str(output_root), "experiment", "list"])
    assert "pidgin_state" in loaded


def test_python_dash_m_imports_nothing_heavy(cli_env: Env) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pidgin_cli", "--help"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "click" in imported  # the probe works
    assert not {name for name in imported if name.split(".")[0] in HEAVY}


def test_unknown_command_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("experiment", "lst")
    assert result.returncode == 2
    assert "No such command 'lst'" in result.stderr
    assert "list" in result.stderr  # a suggestion


def test_unknown_option_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("experiment", "list", "--no-such-option")
    assert result.returncode == 2
    assert "--no-such-option" in result.stderr


def test_completion_script_is_offered(run_cli: RunCli, cli_env: Env, output_root: Path) -> None:
    result = run_cli(env=cli_env(output_root, _PIDGIN_COMPLETE="bash_source"))
    assert result.returncode == 0, result.stderr
    assert "_pidgin_completion" in result.stdout


def test_completion_of_commands_and_run_ids(
    run_cli: RunCli, cli_env: Env, output_root: Path, make_experiment: Any
) -> None:
    make_experiment("greetings", experiment_id="exp_complete1")
    words = cli_env(output_root, _PIDGIN_COMPLETE="bash_complete", COMP_WORDS="pidgin ex")
    result = run_cli(env={**words, "COMP_CWORD": "1"})
    assert result.returncode == 0, result.stderr
    assert "experiment" in result.stdout
    words = cli_env(
        output_root,
        _PIDGIN_COMPLETE="bash_complete",
        COMP_WORDS="pidgin experiment status gr",
        COMP_CWORD="3",
    )
    result = run_cli(env=words)
    assert result.returncode == 0, result.stderr
    assert "plain,greetings" in result.stdout.splitlines()
