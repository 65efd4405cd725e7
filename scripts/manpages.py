#!/usr/bin/env python3
"""Generate the manual pages shipped in the package (src/hadirector/data/man/):

  hadirector.8       from the argument parser (argparse-manpage: every command and option),
                     plus EXIT STATUS, FILES, SIGNALS and ENVIRONMENT from docs/operations.md
  hadirector.conf.5  from docs/configuration.md (markdown -> roff, below)

Run `make man` (or `python scripts/manpages.py`) after changing a command, an option or either
document; tests/unit/test_manpages.py fails while a page is out of date. argparse-manpage is a
development tool (the `test` extra), not a runtime dependency: the pages are built here and
shipped as files. `--check` writes nothing and exits 1 when a page would change.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAN_DIR = ROOT / "src" / "hadirector" / "data" / "man"
DOCS = ROOT / "docs"
# sections of docs/operations.md that hadirector(8) carries, as (heading there, heading in the page)
OPERATIONS_SECTIONS = (("Exit status", "EXIT STATUS"), ("Files and directories", "FILES"),
                       ("Signals", "SIGNALS"), ("Environment", "ENVIRONMENT"))
SEE_ALSO = (r"\fBhadirector.conf\fR(5), \fBsystemctl\fR(1), \fBsystemd.service\fR(5), "
            r"\fBsd_notify\fR(3), \fBipvsadm\fR(8), \fBnft\fR(8), \fBheartbeat\fR(8), \fBldirectord\fR(8)")


# ------------------------------------------------------------------ markdown -> roff

def _escape(text: str) -> str:
    return text.replace("\\", "\\e").replace("-", "\\-")


_INLINE = re.compile(r"\*\*(.+?)\*\*|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def _inline_plain(text: str) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(f"\\fB{_inline(m.group(1))}\\fR")
        else:
            out.append(f"\\fI{_inline(m.group(2))}\\fR")
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _inline(text: str) -> str:
    """Markdown inline markup -> roff: `code` bold, **bold**, *italic*, links as their text (a web
    address kept after it; a link into the source tree or the page itself only as its text)."""
    text = text.replace("\\|", "|")
    text = _LINK.sub(lambda m: m.group(1) + (f" <{m.group(2)}>" if m.group(2).startswith(("http://", "https://"))
                                              else ""), text)
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            out.append(f"\\fB{_escape(p[1:-1])}\\fR")
        else:
            out.append(_inline_plain(p))
    return "".join(out)


def _text(line: str) -> str:
    """A text line: one that roff must not read as a request."""
    return "\\&" + line if line.startswith((".", "'")) else line


def _cells(row: str) -> list[str]:
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _table(rows: list[str]) -> list[str]:
    """A markdown table as a tagged list: the first column is the tag, the last the text, the
    others `header: value` in between (a man page has no room for wide columns)."""
    header = _cells(rows[0])
    out = []
    for row in rows[2:]:
        cells = _cells(row)
        cells += [""] * (len(header) - len(cells))
        out += [".TP", _text(_inline(cells[0]))]
        middle = [f"\\fI{_escape(h)}:\\fR {_inline(c)}" for h, c in zip(header[1:-1], cells[1:-1]) if c]
        if middle:
            out.append(_text("; ".join(middle)))
            if len(header) > 1 and cells[-1]:
                out.append(".br")
        if len(header) > 1 and cells[-1]:
            out.append(_text(_inline(cells[-1])))
    return out


def markdown_to_roff(md: str, skip_title: bool = True) -> list[str]:
    """The markdown our docs use (headings, paragraphs, `-` lists, tables, indented or fenced code)
    as man(7) roff lines. The first `#` heading (the page title) is dropped when `skip_title`."""
    lines = md.splitlines()
    out: list[str] = []
    i, seen_h1 = 0, 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(".PP")
            out.append(_text(_inline(" ".join(para))))  # inline code may span source lines
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        m = re.match(r"(#{1,6})\s+(.*)", line)
        if m:
            flush()
            level, title = len(m.group(1)), m.group(2).strip()
            if level == 1:
                seen_h1 += 1
                if seen_h1 == 1 and skip_title:
                    i += 1
                    continue
            plain = re.sub(r"`([^`]*)`", r"\1", title)
            plain = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", plain)
            if level == 1 or (level == 2 and seen_h1 <= 1):
                out.append(f'.SH "{_escape(plain.upper())}"')
            else:
                out.append(f'.SS "{_escape(plain)}"')
            i += 1
            continue
        if stripped.startswith("```"):
            flush()
            i += 1
            block = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            i += 1
            out += [".PP", ".RS 4", ".nf"] + [_text(_escape(b)) for b in block] + [".fi", ".RE"]
            continue
        if line.startswith("    ") and not para:
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += [".PP", ".RS 4", ".nf"] + [_text(_escape(b)) for b in block] + [".fi", ".RE"]
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and re.match(r"\s*\|?\s*:?-{3,}", lines[i + 1]):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += _table(rows)
            continue
        lm = re.match(r"(\s*)[-*]\s+(.*)", line)
        if lm and not para:
            item = [lm.group(2)]
            indent = len(lm.group(1))
            i += 1
            while i < len(lines) and lines[i].strip() and not re.match(r"\s*[-*]\s+", lines[i]) \
                    and len(lines[i]) - len(lines[i].lstrip()) > indent:
                item.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2", _text(_inline(" ".join(item)))]
            continue
        lm = re.match(r"(\s*)(\d+)\.\s+(.*)", line)
        if lm and not para:
            item = [lm.group(3)]
            i += 1
            while i < len(lines) and lines[i].strip() and not re.match(r"\s*(\d+\.|[-*])\s+", lines[i]) \
                    and lines[i].startswith(" "):
                item.append(lines[i].strip())
                i += 1
            out += [f".IP {lm.group(2)}. 4", _text(_inline(" ".join(item)))]
            continue
        para.append(stripped)
        i += 1
    flush()
    return out


def section_of(md: str, heading: str) -> str:
    """The body of the `##` section named `heading` (up to the next heading of that level or above)."""
    lines = md.splitlines()
    out, inside, level = [], False, 0
    for line in lines:
        m = re.match(r"(#{1,6})\s+(.*)", line)
        if m:
            if inside and len(m.group(1)) <= level:
                break
            if not inside and m.group(2).strip() == heading:
                inside, level = True, len(m.group(1))
                continue
        if inside:
            out.append(line)
    if not inside:
        raise SystemExit(f"docs/operations.md has no section '{heading}' (hadirector(8) needs it)")
    return "\n".join(out)


# ------------------------------------------------------------------ the pages

def _th_date() -> str:
    from argparse_manpage.compat import get_reproducible_date
    return get_reproducible_date()  # SOURCE_DATE_EPOCH when set, else today


def hadirector_8() -> str:
    from argparse_manpage.manpage import Manpage

    sys.path.insert(0, str(ROOT / "src"))
    from hadirector import __version__
    from hadirector.cli import build_parser

    ops = (DOCS / "operations.md").read_text(encoding="utf-8")
    page = Manpage(build_parser(), _data={
        "project_name": "hadirector", "version": __version__, "manual_section": 8,
        "manual_title": "System Administration", "date": _th_date(),
        "description": "high-availability load-balancer director (heartbeat, ldirectord and LVS in one)"})
    for heading, title in OPERATIONS_SECTIONS:
        body = markdown_to_roff(section_of(ops, heading), skip_title=False)
        page.add_section(title, ">", "\n".join(body))
    page.add_section("SEE ALSO", ">", SEE_ALSO)
    return str(page)


def hadirector_conf_5() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from hadirector import __version__

    md = (DOCS / "configuration.md").read_text(encoding="utf-8")
    head = [f'.TH HADIRECTOR.CONF "5" "{_th_date()}" "hadirector {__version__}" "File Formats"',
            ".SH NAME",
            "hadirector.conf \\- hadirector configuration: native TOML, or heartbeat's ha.cf, authkeys, "
            "haresources and ldirectord.cf",
            ".SH SYNOPSIS",
            "\\fBhadirector check\\fR \\fB\\-c\\fR \\fIcluster.toml\\fR",
            ".br",
            "\\fBhadirector check\\fR \\fB\\-\\-ha\\-dir\\fR \\fI/etc/ha.d\\fR",
            ".SH DESCRIPTION"]
    tail = [".SH \"SEE ALSO\"", "\\fBhadirector\\fR(8), \\fBha.cf\\fR(5), \\fBldirectord\\fR(8), \\fBipvsadm\\fR(8)"]
    body = markdown_to_roff(md)
    # the text before the first section belongs to DESCRIPTION; drop a leading .PP
    if body and body[0] == ".PP":
        body = body[1:]
    return "\n".join(head + body + tail) + "\n"


PAGES = {"hadirector.8": hadirector_8, "hadirector.conf.5": hadirector_conf_5}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a page is out of date; write nothing")
    ap.add_argument("--out", type=Path, default=MAN_DIR, help=f"directory (default {MAN_DIR})")
    args = ap.parse_args(argv)
    stale = []
    for name, make in PAGES.items():
        text = make()
        path = args.out / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old is not None and same_page(old, text):
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run `make man`)", file=sys.stderr)
        return 1
    return 0


def same_page(a: str, b: str) -> bool:
    """Equal but for the date in the .TH line."""
    def norm(t: str) -> str:
        return re.sub(r'^(\.TH \S+ "\d+") "[^"]*"', r"\1 DATE", t, flags=re.M)
    return norm(a) == norm(b)


if __name__ == "__main__":
    raise SystemExit(main())
