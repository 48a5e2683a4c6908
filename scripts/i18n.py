#!/usr/bin/env python3
"""The message catalog: extract marked messages, update the Chinese catalog, check it,
compile it. Standard library only (the build runs :func:`compile_catalogs` through
``hatch_build.py``); the files are ordinary gettext ``.pot``/``.po``/``.mo`` files that GNU
gettext and Babel read as well.

    python scripts/i18n.py extract                 # src/llmsetup/locale/llmsetup.pot
    python scripts/i18n.py update [--fill PART.po ...]
                                                   # .po <- .pot: new messages added empty,
                                                   # gone ones dropped; --fill takes
                                                   # translations from other .po files
    python scripts/i18n.py check [--extra PART.po]... [PATH...]
                                                   # every message translated, placeholders
                                                   # alike; exit 1 otherwise
    python scripts/i18n.py compile [--extra PART.po]...    # .po -> .mo
    python scripts/i18n.py part OUT.po PATH...     # a .po of the messages of some files
                                                   # (translations kept from OUT.po and
                                                   # the catalog), for work in parallel

What counts as a message (see llmsetup/i18n.py):

- the first argument of ``_()`` and ``N_()``, the first two of ``ngettext()``: each must
  be a plain string literal (not an f-string, not a variable);
- the docstring of a command function in ``llmsetup/cli/`` (a function named ``*_cmd``, or
  one decorated with ``.command(...)`` or ``.callback(...)``): Typer shows it as the
  command's help, and the CLI passes it through ``_()`` (as ``inspect.cleandoc`` gives it).
"""

from __future__ import annotations

import argparse
import ast
import re
import string
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "llmsetup"
LOCALE = PACKAGE / "locale"
POT = LOCALE / "llmsetup.pot"
LANGUAGES = {"zh_CN": "nplurals=1; plural=0;"}


def po_path(lang: str = "zh_CN") -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "llmsetup.po"


def mo_path(lang: str = "zh_CN") -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "llmsetup.mo"


@dataclass
class Entry:
    msgid: str
    plural: str | None = None
    msgstr: list[str] = field(default_factory=lambda: [""])
    where: list[str] = field(default_factory=list)
    fuzzy: bool = False

    @property
    def key(self) -> str:
        return self.msgid if self.plural is None else f"{self.msgid}\0{self.plural}"

    @property
    def translated(self) -> bool:
        return not self.fuzzy and all(self.msgstr) and bool(self.msgstr)


# ---- extraction ---------------------------------------------------------------------------

class ExtractError(Exception):
    pass


def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _built(node: ast.AST) -> bool:
    """A string made at run time, which no catalog can hold: f"...", "a" + b, "...".format()."""
    if isinstance(node, (ast.JoinedStr, ast.BinOp)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and _literal(node.func.value) is not None


def _is_command(fn: ast.FunctionDef) -> bool:
    if fn.name.endswith("_cmd"):
        return True
    for deco in fn.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr in ("command", "callback"):
            return True
    return False


def extract_file(path: Path) -> tuple[list[Entry], list[str]]:
    """The messages of one file, and the problems found (a non-literal ``_()``...)."""
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Entry] = []
    problems: list[str] = []
    in_cli = "llmsetup/cli/" in rel
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("_", "N_", "ngettext"):
            where = f"{rel}:{node.lineno}"
            want = 2 if node.func.id == "ngettext" else 1
            texts = [_literal(a) for a in node.args[:want]]
            if len(node.args) < want or any(_built(a) for a in node.args[:want]):
                problems.append(f"{where}: {node.func.id}() needs a plain string literal "
                                f"(not an f-string, a sum or a .format()): "
                                f"{ast.unparse(node)[:80]}")
                continue
            if any(t is None for t in texts):
                # A variable: a message marked with N_() where it is defined.
                continue
            found.append(Entry(texts[0], texts[1] if want == 2 else None,
                               [""], [where]))
        elif in_cli and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and _is_command(node):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append(Entry(doc, None, [""], [f"{rel}:{node.lineno}"]))
    return found, problems


def source_files(paths: list[Path] | None = None) -> list[Path]:
    if paths:
        files: list[Path] = []
        for p in paths:
            p = p if p.is_absolute() else (Path.cwd() / p)
            files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
        return files
    return sorted(PACKAGE.rglob("*.py"))


def extract(paths: list[Path] | None = None) -> tuple[dict[str, Entry], list[str]]:
    entries: dict[str, Entry] = {}
    problems: list[str] = []
    for path in source_files(paths):
        found, bad = extract_file(path.resolve())
        problems.extend(bad)
        for e in found:
            if e.key in entries:
                entries[e.key].where.extend(e.where)
            else:
                entries[e.key] = e
    return entries, problems


# ---- .po reading and writing --------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v"}


def _unquote(text: str) -> str:
    text = text.strip()
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"not a quoted string: {text}")
    body = text[1:-1]
    return re.sub(r'\\(.)', lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") \
        .replace("\r", "\\r").replace("\n", "\\n") + '"'


def read_po(path: Path) -> tuple[str, dict[str, Entry]]:
    """The header's msgstr and the entries (obsolete ``#~`` ones skipped)."""
    header = ""
    entries: dict[str, Entry] = {}
    cur: dict[str, object] = {}
    last: str | None = None

    def flush() -> None:
        nonlocal header
        if "msgid" not in cur:
            cur.clear()
            return
        msgid = cur["msgid"]
        strs = cur.get("msgstr", {0: ""})
        ordered = [strs[i] for i in sorted(strs)]  # type: ignore[index]
        if msgid == "" and cur.get("msgid_plural") is None:
            header = ordered[0]
        else:
            e = Entry(msgid, cur.get("msgid_plural"), ordered,  # type: ignore[arg-type]
                      list(cur.get("where", [])), bool(cur.get("fuzzy")))
            entries[e.key] = e
        cur.clear()

    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        try:
            if not line:
                flush()
                last = None
            elif line.startswith("#~"):
                continue
            elif line.startswith("#"):
                if "msgid" in cur and last is not None:
                    flush()
                if line.startswith("#:"):
                    cur.setdefault("where", []).extend(line[2:].split())  # type: ignore[union-attr]
                elif line.startswith("#,") and "fuzzy" in line:
                    cur["fuzzy"] = True
            elif line.startswith("msgctxt"):
                raise ValueError("msgctxt is not used by this catalog")
            elif line.startswith("msgid_plural"):
                cur["msgid_plural"] = _unquote(line[len("msgid_plural"):])
                last = "msgid_plural"
            elif line.startswith("msgid"):
                if "msgstr" in cur:
                    flush()
                cur["msgid"] = _unquote(line[len("msgid"):])
                last = "msgid"
            elif line.startswith("msgstr["):
                index = int(line[7:line.index("]")])
                cur.setdefault("msgstr", {})[index] = _unquote(line[line.index("]") + 1:])  # type: ignore[index]
                last = f"msgstr{index}"
            elif line.startswith("msgstr"):
                cur.setdefault("msgstr", {})[0] = _unquote(line[len("msgstr"):])  # type: ignore[index]
                last = "msgstr0"
            elif line.startswith('"'):
                piece = _unquote(line)
                if last in ("msgid", "msgid_plural"):
                    cur[last] = cur[last] + piece  # type: ignore[operator]
                elif last and last.startswith("msgstr"):
                    strs = cur["msgstr"]
                    strs[int(last[6:])] += piece  # type: ignore[index]
                else:
                    raise ValueError("a string continues nothing")
            else:
                raise ValueError(f"unknown line: {line[:40]}")
        except ValueError as exc:
            raise SystemExit(f"{path}:{lineno}: {exc}") from None
    flush()
    return header, entries


def _lines(keyword: str, text: str) -> list[str]:
    if "\n" not in text.rstrip("\n") and len(text) < 70:
        return [f"{keyword} {_quote(text)}"]
    pieces = text.splitlines(keepends=True)
    return [f'{keyword} ""', *(_quote(p) for p in pieces)]


def header_text(lang: str | None) -> str:
    lines = ["Project-Id-Version: llmsetup", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    if lang:
        lines += [f"Language: {lang}", f"Plural-Forms: {LANGUAGES[lang]}"]
    return "".join(line + "\n" for line in lines)


def placeholders(text: str) -> list[str]:
    """The ``{name}`` fields of a message, sorted; the braces themselves where they do not
    parse as a format string."""
    try:
        return sorted(f"{{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}"
                      for _, name, spec, conv in string.Formatter().parse(text)
                      if name is not None)
    except ValueError:
        return sorted(re.findall(r"\{[^{}]*\}", text))


def write_po(path: Path, entries: dict[str, Entry], lang: str | None) -> None:
    out = ['# The messages of llmsetup' + (f", in {lang}" if lang else " (template)") + ".",
           "# Terms: docs/zh-glossary.md. Update with: python scripts/i18n.py update",
           'msgid ""', *_lines("msgstr", header_text(lang))]
    nplurals = 1 if lang == "zh_CN" else 2
    for e in sorted(entries.values(), key=lambda e: (e.where[0] if e.where else "~", e.msgid)):
        out.append("")
        for i in range(0, len(e.where), 4):
            out.append("#: " + " ".join(e.where[i:i + 4]))
        flags = []
        if e.fuzzy:
            flags.append("fuzzy")
        if placeholders(e.msgid):
            flags.append("python-brace-format")
        if flags:
            out.append("#, " + ", ".join(flags))
        out += _lines("msgid", e.msgid)
        if e.plural is not None:
            out += _lines("msgid_plural", e.plural)
            forms = (e.msgstr + [""] * nplurals)[:nplurals] if lang else ["", ""]
            for i, s in enumerate(forms):
                out += _lines(f"msgstr[{i}]", s)
        else:
            out += _lines("msgstr", e.msgstr[0] if lang else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


# ---- .mo ----------------------------------------------------------------------------------

def mo_bytes(header: str, entries: dict[str, Entry]) -> bytes:
    """A GNU .mo file of the translated entries (fuzzy and empty ones left out)."""
    pairs = {"": header}
    for e in entries.values():
        if e.translated:
            pairs[e.key] = "\0".join(e.msgstr)
    keys = sorted(pairs, key=lambda k: k.encode("utf-8"))
    ids = [k.encode("utf-8") for k in keys]
    strs = [pairs[k].encode("utf-8") for k in keys]
    n = len(keys)
    start = 7 * 4 + 16 * n
    id_table, str_table, blob = [], [], b""
    for data, table in ((ids, id_table), (strs, str_table)):
        for item in data:
            table.append((len(item), start + len(blob)))
            blob += item + b"\0"
    head = struct.pack("<7I", 0x950412de, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, start)
    tables = b"".join(struct.pack("<2I", *p) for p in id_table + str_table)
    return head + tables + blob


def compile_catalogs(extra: list[Path] | None = None) -> list[Path]:
    """Compile every language's .po (with translations from ``extra`` .po files filling
    the gaps) to its .mo; return the .mo paths written. Used by the build."""
    written = []
    for lang in LANGUAGES:
        src = po_path(lang)
        if not src.exists():
            continue
        header, entries = read_po(src)
        for part in extra or []:
            _, more = read_po(part)
            for key, e in more.items():
                if e.translated and (key not in entries or not entries[key].translated):
                    entries[key] = e
        target = mo_path(lang)
        target.write_bytes(mo_bytes(header or header_text(lang), entries))
        written.append(target)
    return written


# ---- checks -------------------------------------------------------------------------------

def problems_of(entries: dict[str, Entry], catalog: dict[str, Entry]) -> list[str]:
    """What keeps ``catalog`` from translating ``entries``: a message missing or not
    translated, placeholders that differ."""
    found = []
    for key, e in entries.items():
        where = e.where[0] if e.where else "?"
        t = catalog.get(key)
        if t is None:
            found.append(f"{where}: not in the catalog (run scripts/i18n.py update): {e.msgid!r}")
        elif not t.translated:
            found.append(f"{where}: not translated: {e.msgid!r}")
        else:
            want = placeholders(e.msgid)
            if e.plural is not None:
                want = sorted(set(want) | set(placeholders(e.plural)))
            for s in t.msgstr:
                if placeholders(s) != want:
                    found.append(f"{where}: placeholders differ: {e.msgid!r} has {want}, "
                                 f"the translation {placeholders(s)}: {s!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("extract")
    up = sub.add_parser("update")
    up.add_argument("--fill", nargs="*", type=Path, default=[])
    chk = sub.add_parser("check")
    chk.add_argument("--extra", action="append", type=Path, default=[], metavar="PART.po",
                     help="a fragment whose translations fill gaps (repeatable)")
    chk.add_argument("paths", nargs="*", type=Path)
    comp = sub.add_parser("compile")
    comp.add_argument("--extra", action="append", type=Path, default=[], metavar="PART.po",
                      help="a fragment whose translations fill gaps (repeatable)")
    part = sub.add_parser("part")
    part.add_argument("out", type=Path)
    part.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)

    if args.command == "compile":
        for p in compile_catalogs(args.extra):
            print(f"wrote {p.relative_to(ROOT)}")
        return 0

    entries, bad = extract(getattr(args, "paths", None) or None)
    for line in bad:
        print(line, file=sys.stderr)

    if args.command == "extract":
        write_po(POT, entries, None)
        print(f"{len(entries)} messages in {POT.relative_to(ROOT)}")
        return 1 if bad else 0

    if args.command == "part":
        known: dict[str, Entry] = {}
        for source in (po_path(), args.out):
            if source.exists():
                known.update(read_po(source)[1])
        for key, e in entries.items():
            if key in known and known[key].translated:
                e.msgstr = known[key].msgstr
        write_po(args.out, entries, "zh_CN")
        left = sum(not e.translated for e in entries.values())
        print(f"{len(entries)} messages in {args.out}, {left} to translate")
        return 1 if bad else 0

    po = po_path()
    _header, catalog = read_po(po) if po.exists() else ("", {})

    if args.command == "update":
        fills: dict[str, Entry] = {}
        for f in args.fill:
            for key, e in read_po(f)[1].items():
                if e.translated:
                    fills.setdefault(key, e)
        merged = {}
        for key, e in entries.items():
            old = catalog.get(key) or fills.get(key)
            if old is not None and old.translated:
                e.msgstr, e.fuzzy = old.msgstr, old.fuzzy
            elif key in fills:
                e.msgstr = fills[key].msgstr
            merged[key] = e
        write_po(POT, entries, None)
        write_po(po, merged, "zh_CN")
        gone = len(set(catalog) - set(entries))
        left = sum(not e.translated for e in merged.values())
        print(f"{len(merged)} messages, {left} untranslated, {gone} dropped: {po.relative_to(ROOT)}")
        return 1 if bad else 0

    # check
    for part in args.extra:
        for key, e in read_po(part)[1].items():
            if e.translated and not (key in catalog and catalog[key].translated):
                catalog[key] = e
    found = bad + problems_of(entries, catalog)
    for line in found:
        print(line)
    print(f"{len(entries)} messages; {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
