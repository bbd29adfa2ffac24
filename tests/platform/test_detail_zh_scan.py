"""Issue 14, "`detail_zh` contains no Latin words except codes", for every domain refusal the code can raise:
a scan of every `DomainError` construction (and of every call to a helper that passes its own `zh` parameter
on, such as the `_refuse(code, en, zh)` helpers) in shared/ and services/. The Chinese message must be given
(DomainError falls back to the English one when it is empty), and its literal text may hold Latin letters
only inside codes: dotted or underscored identifiers (`bank.event_conflict`), file extensions (`.xlsx`) and
upper-case names (`TMPDIR`) and the
values a client types (`csv`). Placeholders of f-strings are values, not words, and are not checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ERRORS = {"DomainError", "NotFound", "Conflict", "Forbidden", "Unauthorized", "RuleViolation", "Unavailable"}
CODE = re.compile(r"[A-Za-z0-9]+(?:[._/-][A-Za-z0-9]+)+|\.[A-Za-z0-9]+|\b[A-Z][A-Z0-9_]+\b")
# Values a client types as they are (the bank file `format` parameter): codes, though lower-case words.
VALUE_CODES = {"csv", "jsonl"}
ZH_INDEX = 2  # DomainError(code, message_en, message_zh)


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _zh_arg(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _opaque(call: ast.Call) -> bool:
    return any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords)


def _wrappers(tree: ast.AST) -> dict[str, tuple[int, str]]:
    """Functions that hand one of their own parameters on as an error's Chinese message: name → (index, param)."""
    found: dict[str, tuple[int, str]] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = [a.arg for a in fn.args.args]
        for call in ast.walk(fn):
            if isinstance(call, ast.Call) and _name(call) in ERRORS and not _opaque(call):
                zh = _zh_arg(call, ZH_INDEX, "message_zh")
                if isinstance(zh, ast.Name) and zh.id in params:
                    found[fn.name] = (params.index(zh.id) - (1 if params[:1] == ["self"] else 0), zh.id)
    return found


def _latin_words(zh: ast.expr) -> list[str]:
    if isinstance(zh, ast.Constant) and isinstance(zh.value, str):
        parts = [zh.value]
    elif isinstance(zh, ast.JoinedStr):
        parts = [v.value for v in zh.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    else:
        return []
    return [w for p in parts for w in re.findall(r"[A-Za-z]{2,}", CODE.sub("", p)) if w not in VALUE_CODES]


def _findings() -> tuple[int, list[str]]:
    checked, bad = 0, []
    for path in [*ROOT.joinpath("shared").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        wrappers = _wrappers(tree)
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or _opaque(call):
                continue
            name = _name(call)
            if name in ERRORS:
                zh = _zh_arg(call, ZH_INDEX, "message_zh")
            elif name in wrappers:
                zh = _zh_arg(call, *wrappers[name])
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if zh is None:
                bad.append(f"{where}: no Chinese message (detail_zh would be the English one)")
                continue
            checked += isinstance(zh, ast.Constant | ast.JoinedStr)
            if words := _latin_words(zh):
                bad.append(f"{where}: Latin words {words} in {ast.unparse(zh)}")
    return checked, bad


def test_every_domain_refusal_has_a_chinese_message_without_latin_words_except_codes() -> None:
    checked, bad = _findings()
    assert checked > 200, checked  # the scan really found the refusals
    assert not bad, "\n".join(bad)


def test_the_scan_catches_a_latin_word_and_a_missing_message() -> None:
    tree = ast.parse('RuleViolation("a.b", "en", "金额 too large")\nConflict("a.b", "en")\n'
                     'RuleViolation("a.b", "en", "请上传 .xlsx 文件,设置 TMPDIR,代码 bank.event_conflict")')
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    zh = [_zh_arg(c, ZH_INDEX, "message_zh") for c in calls]
    assert zh[1] is None
    assert zh[0] is not None
    assert _latin_words(zh[0]) == ["too", "large"]
    assert zh[2] is not None
    assert _latin_words(zh[2]) == []
