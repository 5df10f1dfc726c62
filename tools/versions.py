"""Keep the Pidgin distributions in lockstep: one version, exact sibling pins, matching tag.

The four distributions under ``packages/`` are released together, so each one pins
its siblings with ``==``. A single mismatched pin makes a release uninstallable, so
this one tool both rewrites every version and pin (``bump``) and guards them in CI
(``check``).

Usage::

    python tools/versions.py show
    python tools/versions.py check [--tag vX.Y.Z]
    python tools/versions.py bump X.Y.Z

All commands take ``--root DIR`` to work on another checkout (the tests use it).
Stdlib only: it has to run before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path(__file__).resolve().parent.parent

# PEP 440 public version (canonical form is not required, but it must parse).
_VERSION_RE = re.compile(
    r"""
    ^v?
    (?:(?:[0-9]+)!)?                              # epoch
    (?:[0-9]+(?:\.[0-9]+)*)                        # release
    (?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?  # pre-release
    (?:(?:-[0-9]+)|(?:[-_.]?(?:post|rev|r)[-_.]?[0-9]*))?       # post-release
    (?:[-_.]?dev[-_.]?[0-9]*)?                     # dev release
    $
    """,
    re.VERBOSE | re.IGNORECASE,
)

# A PEP 508 requirement, split into name, extras, version specifier and marker.
_REQUIREMENT_RE = re.compile(
    r"""
    ^\s*
    (?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)
    \s*(?P<extras>\[[^\]]*\])?
    \s*(?P<spec>[^;]*?)
    \s*(?P<marker>;.*)?
    $
    """,
    re.VERBOSE,
)

_TABLE_HEADER_RE = re.compile(r"^\s*\[\[?\s*(?P<name>[^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_VERSION_LINE_RE = re.compile(r"""^(?P<head>\s*version\s*=\s*)(?P<q>["'])(?P<value>[^"']*)(?P=q)""")
_STRING_RE = re.compile(r""""(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'""")
_KEY_RE = re.compile(r"""^\s*(?P<key>[A-Za-z0-9_.-]+|"[^"]*"|'[^']*')\s*=""")

# Where requirement strings live: table -> keys holding them (None: every key).
_REQUIREMENT_KEYS: dict[str, set[str] | None] = {
    "project": {"dependencies", "optional-dependencies"},
    "project.optional-dependencies": None,
    "dependency-groups": None,
}


class ToolError(Exception):
    """A problem that stops the command before it changes anything."""


def normalize(name: str) -> str:
    """PEP 503 name normalization, so ``Pidgin_Events`` and ``pidgin-events`` match."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Package:
    """One distribution's ``pyproject.toml``, as read by tomllib."""

    path: Path
    rel: str
    name: str
    version: str | None
    dynamic_version: bool
    requirements: list[tuple[str, str]] = field(default_factory=list)
    """(where, requirement string) for every runtime and optional dependency."""


def find_packages(root: Path) -> list[Package]:
    """Read every ``packages/*/pyproject.toml`` under ``root``."""
    paths = sorted((root / "packages").glob("*/pyproject.toml"))
    if not paths:
        raise ToolError(f"{root}: no packages/*/pyproject.toml found")
    packages = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ToolError(f"{rel}: invalid TOML: {exc}") from exc
        project: dict[str, Any] = data.get("project", {})
        name = project.get("name")
        if not isinstance(name, str):
            raise ToolError(f"{rel}: [project] has no name")
        version = project.get("version")
        packages.append(
            Package(
                path=path,
                rel=rel,
                name=name,
                version=version if isinstance(version, str) else None,
                dynamic_version="version" in project.get("dynamic", []),
                requirements=_requirements(data),
            )
        )
    return packages


def _requirements(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, requirement) for every dependency string in a parsed pyproject."""
    project: dict[str, Any] = data.get("project", {})
    reqs = [("project.dependencies", r) for r in project.get("dependencies", [])]
    for extra, extra_reqs in project.get("optional-dependencies", {}).items():
        reqs.extend((f"project.optional-dependencies.{extra}", r) for r in extra_reqs)
    for group, entries in data.get("dependency-groups", {}).items():
        # Entries may also be {include-group = "..."} tables; only strings are requirements.
        reqs.extend((f"dependency-groups.{group}", r) for r in entries if isinstance(r, str))
    return reqs


def parse_requirement(text: str) -> tuple[str, str, str, str] | None:
    """Split a requirement into (name, extras, specifier, marker); None if it is not one."""
    match = _REQUIREMENT_RE.match(text)
    if match is None:
        return None
    return (
        match["name"],
        match["extras"] or "",
        re.sub(r"\s+", "", match["spec"]),
        (match["marker"] or "").strip(),
    )


def lockstep_version(packages: list[Package]) -> str | None:
    """The version most packages agree on (ties go to the first package), or None."""
    counts: dict[str, int] = {}
    for pkg in packages:
        if pkg.version is not None:
            counts[pkg.version] = counts.get(pkg.version, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda v: counts[v])


def tag_from_environment() -> str | None:
    """The release tag when running in GitHub Actions on a ``v*`` tag, else None."""
    ref_name = os.environ.get("GITHUB_REF_NAME", "")
    ref_type = os.environ.get("GITHUB_REF_TYPE", "tag")
    if ref_type == "tag" and ref_name.startswith("v"):
        return ref_name
    return None


def find_problems(packages: list[Package], tag: str | None) -> list[str]:
    """Every lockstep violation, each as ``path: reason``."""
    problems: list[str] = []
    siblings = {normalize(p.name) for p in packages}
    expected = lockstep_version(packages)

    for pkg in packages:
        if pkg.dynamic_version:
            problems.append(f"{pkg.rel}: version is dynamic; it must be static in [project]")
        elif pkg.version is None:
            problems.append(f"{pkg.rel}: [project] has no version")
        elif not _VERSION_RE.match(pkg.version) or pkg.version.lower().startswith("v"):
            problems.append(f"{pkg.rel}: version {pkg.version!r} is not a PEP 440 version")
        elif pkg.version != expected:
            problems.append(
                f"{pkg.rel}: version {pkg.version} differs from the other packages' {expected}"
            )

    if expected is not None:
        for pkg in packages:
            for where, text in pkg.requirements:
                parsed = parse_requirement(text)
                if parsed is None or normalize(parsed[0]) not in siblings:
                    continue
                if normalize(parsed[0]) == normalize(pkg.name):
                    continue  # a self-reference such as "pidgin-events[zstd]"
                if parsed[2] != f"=={expected}":
                    problems.append(
                        f"{pkg.rel}: {where} pins sibling {text!r}; "
                        f"expected {parsed[0]}=={expected}"
                    )

    if tag is not None:
        if expected is None:
            problems.append(f"tag {tag}: no package has a version to compare with")
        for pkg in packages:
            if pkg.version is not None and tag != f"v{pkg.version}":
                problems.append(f"{pkg.rel}: version {pkg.version} does not match tag {tag}")
    return problems


def _rewrite_text(text: str, siblings: set[str], new_version: str) -> str:
    """Rewrite the project version and sibling pins in one pyproject's text.

    Works line by line on the raw text so comments, ordering and layout survive;
    only the ``version = "..."`` line of ``[project]`` and quoted requirement strings
    naming a sibling (in dependency tables) are touched.
    """
    out: list[str] = []
    table = ""
    key = ""
    in_multiline_string = False
    for raw in text.splitlines(keepends=True):
        line = raw
        # Skip content of multi-line strings ("""...""") so nothing inside is edited.
        triple_count = line.count('"""') + line.count("'''")
        if in_multiline_string:
            if triple_count % 2 == 1:
                in_multiline_string = False
            out.append(line)
            continue
        if triple_count % 2 == 1:
            in_multiline_string = True
            out.append(line)
            continue

        header = _TABLE_HEADER_RE.match(line)
        if header is not None and not line.lstrip().startswith("#"):
            table = re.sub(r"\s+", "", header["name"]).strip('"')
            key = ""
            out.append(line)
            continue

        key_match = _KEY_RE.match(line)
        if key_match is not None:
            key = key_match["key"].strip("\"'")

        if table == "project":
            version_match = _VERSION_LINE_RE.match(line)
            if version_match is not None:
                start, end = version_match.span("value")
                line = line[:start] + new_version + line[end:]
                out.append(line)
                continue

        if table in _REQUIREMENT_KEYS and _holds_requirements(table, key):
            if key_match is not None:  # only the value side of `key = [...]`
                head, value = line[: key_match.end()], line[key_match.end() :]
            else:
                head, value = "", line
            code, sep, comment = _split_comment(value)
            code = _STRING_RE.sub(lambda m: _repin(m, siblings, new_version), code)
            line = head + code + sep + comment
        out.append(line)
    return "".join(out)


def _holds_requirements(table: str, key: str) -> bool:
    """Whether strings under ``key`` of ``table`` are requirements."""
    keys = _REQUIREMENT_KEYS[table]
    return keys is None or key in keys


def _split_comment(line: str) -> tuple[str, str, str]:
    """Split a TOML line into code, ``#`` and comment, ignoring ``#`` inside strings."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i], "#", line[i + 1 :]
    return line, "", ""


def _repin(match: re.Match[str], siblings: set[str], new_version: str) -> str:
    """Replace one quoted requirement's specifier with ``==new_version`` if it names a sibling."""
    double = match["dq"] is not None
    body = match["dq"] if double else match["sq"]
    parsed = parse_requirement(body)
    if parsed is None or normalize(parsed[0]) not in siblings:
        return match.group(0)
    name, extras, spec, marker = parsed
    if spec.startswith("@"):
        return match.group(0)  # a direct reference (name @ url) is left alone
    new_body = f"{name}{extras}=={new_version}"
    if marker:
        new_body += f" {marker}"
    q = '"' if double else "'"
    return f"{q}{new_body}{q}"


def bump(root: Path, new_version: str) -> list[Path]:
    """Set every package's version and sibling pin to ``new_version``; all files or none."""
    if not _VERSION_RE.match(new_version) or new_version.lower().startswith("v"):
        raise ToolError(f"{new_version!r} is not a PEP 440 version (write 1.2.3, not v1.2.3)")
    packages = find_packages(root)
    siblings = {normalize(p.name) for p in packages}
    new_texts: dict[Path, str] = {}
    for pkg in packages:
        old = pkg.path.read_text(encoding="utf-8")
        new = _rewrite_text(old, siblings - {normalize(pkg.name)}, new_version)
        try:
            tomllib.loads(new)
        except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a bug in _rewrite_text
            raise ToolError(f"{pkg.rel}: rewrite produced invalid TOML: {exc}") from exc
        new_texts[pkg.path] = new

    # Verify the result in memory before writing anything.
    staged = [_reparse(pkg, new_texts[pkg.path]) for pkg in packages]
    problems = find_problems(staged, tag=None)
    missing = [p.rel for p in staged if p.version != new_version]
    if problems or missing:
        lines = problems + [f"{rel}: version line not found" for rel in missing]
        raise ToolError("bump would leave problems:\n  " + "\n  ".join(lines))

    changed = []
    for path, new in new_texts.items():
        if path.read_text(encoding="utf-8") != new:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new, encoding="utf-8", newline="")
            tmp.replace(path)
            changed.append(path)
    return changed


def _reparse(pkg: Package, text: str) -> Package:
    """A Package as it would be with ``text`` as its pyproject."""
    data = tomllib.loads(text)
    project: dict[str, Any] = data.get("project", {})
    version = project.get("version")
    if project.get("name") != pkg.name:  # pragma: no cover - a bug in _rewrite_text
        raise ToolError(f"{pkg.rel}: rewrite changed the project name")
    return Package(
        path=pkg.path,
        rel=pkg.rel,
        name=pkg.name,
        version=version if isinstance(version, str) else None,
        dynamic_version=pkg.dynamic_version,
        requirements=_requirements(data),
    )


def cmd_show(root: Path) -> int:
    """Print each package's version and its sibling pins."""
    packages = find_packages(root)
    siblings = {normalize(p.name) for p in packages}
    width = max(len(p.name) for p in packages)
    for pkg in packages:
        pins = [
            text
            for _, text in pkg.requirements
            if (parsed := parse_requirement(text)) is not None
            and normalize(parsed[0]) in siblings
            and normalize(parsed[0]) != normalize(pkg.name)
        ]
        print(f"{pkg.name:<{width}}  {pkg.version or '?'}  {', '.join(pins) or '-'}")
    versions = {p.version for p in packages}
    if len(versions) == 1:
        print(f"lockstep version: {versions.pop()}")
    else:
        print("versions disagree; run `python tools/versions.py check` for details")
    return 0


def cmd_check(root: Path, tag: str | None) -> int:
    """Report every lockstep problem; exit status 1 if there are any."""
    packages = find_packages(root)
    if tag is None:
        tag = tag_from_environment()
    problems = find_problems(packages, tag)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"versions: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    suffix = f", tag {tag}" if tag else ""
    print(f"versions: {len(packages)} packages in lockstep at {packages[0].version}{suffix}")
    return 0


def cmd_bump(root: Path, new_version: str) -> int:
    """Rewrite every version and sibling pin, then print what changed."""
    changed = bump(root, new_version)
    for path in changed:
        print(f"updated {path.relative_to(root).as_posix()}")
    if not changed:
        print(f"already at {new_version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="versions.py", description="Lockstep versions for the Pidgin packages."
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="repository root holding packages/*/pyproject.toml (default: this checkout)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("show", help="print versions and sibling pins")
    check = sub.add_parser("check", help="verify versions, pins and (optionally) the tag agree")
    check.add_argument(
        "--tag",
        help="release tag that must equal v<version> (default: $GITHUB_REF_NAME on a v* tag)",
    )
    bump_parser = sub.add_parser("bump", help="set every version and sibling pin")
    bump_parser.add_argument("version", help="new version, e.g. 0.2.0")
    # --root is also accepted after the command, which reads more naturally in scripts.
    for p in sub.choices.values():
        p.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    root: Path = args.root.resolve()
    try:
        if args.command == "show":
            return cmd_show(root)
        if args.command == "check":
            return cmd_check(root, args.tag)
        return cmd_bump(root, args.version)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
