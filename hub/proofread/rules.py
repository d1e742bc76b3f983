"""Proofreading (错敏字校对) as pure functions: lexicons in, hits out.

A :class:`Lexicon` is compiled once from entries (the policy presets' lexicon files plus the
province's and org's own rows), the leaders registry and the org table's names, into one
Aho-Corasick automaton (pyahocorasick). :meth:`Lexicon.check` walks a text once with it and
turns what it finds into :class:`Hit` s:

- lexicon entries (``serious`` 规范表述, ``sensitive`` 敏感词, ``typo`` 错别字, ``wording``
  不规范用语): a hit unless an exception (a longer form containing the term, e.g. 「农业部门」
  for 「农业部」) or the entry's own correct form stands at that place; where hits overlap the
  longest wins;
- leaders: a registered name next to a title that is not theirs (block), a name one character
  off a registered name next to a title (block), leaders of one org named out of their protocol
  order in one sentence (warn);
- org names: near-miss variants of a name in the org table (warn): the full and the short form
  mixed (「贵州省人民政府新闻办」), or one character added, missing or changed in the middle.

Nothing here reads a file or the database: the service hands the data in.
"""

from __future__ import annotations

import csv
import io
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import ahocorasick

from hub.errors import Reason


class Category(StrEnum):
    serious = "serious"  # 规范表述 (严重表述错误)
    sensitive = "sensitive"  # 敏感词
    typo = "typo"  # 错别字
    wording = "wording"  # 不规范用语 (e.g. absolute terms)
    leader = "leader"  # 领导人姓名、职务、排序
    org_name = "org_name"  # 机构名称


def N_(message: str) -> str:
    """Mark a label for the catalog (``make i18n``); pages translate it when they show it."""
    return message


CATEGORY_LABELS: dict[Category, str] = {
    Category.serious: N_("规范表述"),
    Category.sensitive: N_("敏感词"),
    Category.typo: N_("错别字"),
    Category.wording: N_("不规范用语"),
    Category.leader: N_("领导人"),
    Category.org_name: N_("机构名称"),
}

# categories that live in lexicon files and entry rows (the other two come from tables)
TERM_CATEGORIES = (Category.serious, Category.sensitive, Category.typo, Category.wording)


class Severity(StrEnum):
    block = "block"  # refuses submit, approval and broadcast
    warn = "warn"  # shown; a reviewer acknowledges it with a reason


class LexiconError(ValueError):
    """A lexicon file or row that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    category: Category
    term: str
    correct: str = ""
    message: str = ""
    severity: Severity = Severity.warn
    exceptions: tuple[str, ...] = ()
    source: str = ""  # "national-2019/typo.csv:4", "org 520000 #12"


@dataclass(frozen=True)
class Leader:
    name: str
    title: str  # one or more titles separated by 、 (「省委书记、省人大常委会主任」)
    rank: int  # protocol order within the org: smaller comes first
    org: str = ""  # the org's name: leaders are ordered within one org

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in re.split(r"[、,，/]", self.title) if t.strip())


@dataclass(frozen=True)
class Hit:
    category: Category
    start: int
    end: int
    text: str
    message: str
    suggestion: str
    severity: Severity
    field: str = ""

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self.category]

    def describe(self) -> str:
        """One line an editor reads: what, where, and what to write instead."""
        where = f"{field_label(self.field)}第{self.start + 1}字" if self.field else ""
        head = f"「{self.text}」（{self.label}{'，' + where if where else ''}）"
        tail = f"，建议改为「{self.suggestion}」" if self.suggestion else ""
        if self.message == self.label:  # 「错别字」 says nothing the label does not
            return head + tail
        return f"{head}：{self.message}{tail}"


FIELD_LABELS = {"title": "标题", "body": "正文", "summary": "摘要", "text": "内容"}


def field_label(name: str) -> str:
    """「正文」, or for a channel's own text 「改写文案（<channel>.<field>）」."""
    if name.startswith("overrides."):
        return f"改写文案（{name.removeprefix('overrides.')}）"
    return FIELD_LABELS.get(name, name)


# Titles a leader can be named with (the registry's own titles are added to these).
DEFAULT_TITLES = (
    "书记",
    "副书记",
    "省委书记",
    "省委副书记",
    "市委书记",
    "州委书记",
    "县委书记",
    "省长",
    "副省长",
    "常务副省长",
    "州长",
    "副州长",
    "市长",
    "副市长",
    "县长",
    "副县长",
    "区长",
    "副区长",
    "主任",
    "副主任",
    "主席",
    "副主席",
    "秘书长",
    "副秘书长",
    "厅长",
    "副厅长",
    "局长",
    "副局长",
    "部长",
    "副部长",
    "院长",
    "副院长",
    "检察长",
    "副检察长",
    "新闻发言人",
)

LEADER_TITLE_SEVERITY = Severity.block
LEADER_NAME_SEVERITY = Severity.block
LEADER_ORDER_SEVERITY = Severity.warn
ORG_NAME_SEVERITY = Severity.warn
ORG_NAME_MIN_LENGTH = 8  # shorter names (「贵州省财政厅」) differ from each other by one character
_ORG_SHORT = (("人民政府", "政府"), ("办公室", "办"))
_SENTENCE_END = re.compile(r"[。！？；!?;\n]")
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")

DEFAULT_MESSAGES: dict[Category, str] = {
    Category.serious: "表述不规范，属严重表述错误",
    Category.sensitive: "敏感词，请核实语境",
    Category.typo: "错别字",
    Category.wording: "不规范用语",
}


# -- lexicon files ---------------------------------------------------------------------------------

CSV_COLUMNS = ("term", "correct", "message", "severity", "exceptions")


def parse_csv(source: str, text: str, category: Category) -> list[Entry]:
    """A lexicon file: a header ``term,correct,message,severity,exceptions`` and one entry a
    line; exceptions are separated by ``|``. Lines starting with ``#`` are comments."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise LexiconError(f"{source}: 表头应为 {','.join(CSV_COLUMNS)}")
    entries = []
    for number, row in enumerate(reader, start=2):
        where = f"{source}:{number}"
        entries.append(
            make_entry(
                category=category,
                term=row["term"] or "",
                correct=row["correct"] or "",
                message=row["message"] or "",
                severity=row["severity"] or "warn",
                exceptions=[e for e in (row["exceptions"] or "").split("|") if e.strip()],
                source=where,
            )
        )
    return entries


def make_entry(
    *,
    category: Category | str,
    term: str,
    correct: str = "",
    message: str = "",
    severity: Severity | str = Severity.warn,
    exceptions: Iterable[str] = (),
    source: str = "",
) -> Entry:
    """A checked entry; :class:`LexiconError` says in Chinese what is wrong."""
    term = term.strip()
    prefix = f"{source}: " if source else ""
    try:
        cat = Category(category)
    except ValueError:
        raise LexiconError(f"{prefix}未知类别「{category}」") from None
    if cat not in TERM_CATEGORIES:
        raise LexiconError(f"{prefix}类别「{CATEGORY_LABELS[cat]}」由领导人名录或机构表维护")
    if not term:
        raise LexiconError(f"{prefix}词条不能为空")
    if len(term) > 50:
        raise LexiconError(f"{prefix}词条「{term[:20]}…」超过50个字")
    try:
        sev = Severity(severity)
    except ValueError:
        raise LexiconError(f"{prefix}级别应为 block 或 warn，而不是「{severity}」") from None
    cleaned = tuple(dict.fromkeys(e.strip() for e in exceptions if e.strip()))
    for exception in cleaned:
        if term not in exception:
            raise LexiconError(f"{prefix}例外「{exception}」应包含词条「{term}」")
    return Entry(cat, term, correct.strip(), message.strip(), sev, cleaned, source)


def merge_entries(
    base: Iterable[Entry], layers: Iterable[Iterable[tuple[Entry, bool]]]
) -> list[Entry]:
    """The entries in force: the presets' entries, then each scope's rows in order (province
    first, the org last). A row replaces the entry of the same category and term; a disabled
    row removes it."""
    merged: dict[tuple[Category, str], Entry] = {(e.category, e.term): e for e in base}
    for layer in layers:
        for entry, enabled in layer:
            key = (entry.category, entry.term)
            if enabled:
                merged[key] = entry
            else:
                merged.pop(key, None)
    return list(merged.values())


# -- the compiled lexicon --------------------------------------------------------------------------

_ENTRY, _LEADER, _TITLE, _ORG = 0, 1, 2, 3

# pyahocorasick finds a node's next state by a linear scan of its children: with thousands of
# distinct first characters (any Chinese lexicon) the root alone costs microseconds per
# character. Every character is therefore spelt as three symbols of a 41-symbol alphabet
# (41**3 > 65,536) before it goes into the automaton, so no node has more than 41 children;
# a match counts only where it ends on a character boundary. 10x faster on a 50,000-entry
# lexicon (bench/proofread.py).
_BASE, _WIDTH = 41, 3
_SYMBOLS = [chr(0x100 + i) for i in range(_BASE)]
_NEVER = "\x00" * _WIDTH  # characters beyond the BMP: matched by no key


class _Spelling(dict[int, str]):
    def __missing__(self, code: int) -> str:
        if code >= _BASE**_WIDTH:
            return _NEVER
        digits = []
        rest = code
        for _ in range(_WIDTH):
            rest, digit = divmod(rest, _BASE)
            digits.append(_SYMBOLS[digit])
        spelt = "".join(reversed(digits))
        self[code] = spelt
        return spelt


_SPELLING = _Spelling()


def _spell(text: str) -> str:
    return text.translate(_SPELLING)


def org_short_form(name: str) -> str:
    for full, short in _ORG_SHORT:
        name = name.replace(full, short)
    return name


def _within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance of at most one (a != b is checked by the caller)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def _title_matches(registered: str, found: str) -> bool:
    """「书记」 names a 「省委书记」; 「省长」 does not name a 「副省长」."""
    if registered == found:
        return True
    if not registered.endswith(found):
        return False
    return registered[-len(found) - 1] != "副"


@dataclass
class Lexicon:
    entries: Sequence[Entry]
    leaders: Sequence[Leader] = ()
    org_names: Sequence[str] = ()
    _automaton: ahocorasick.Automaton = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._entries = list(self.entries)
        self._exceptions = [
            tuple(e.exceptions) + ((e.correct,) if e.correct and e.term in e.correct else ())
            for e in self._entries
        ]
        self._leaders = list(self.leaders)
        self._leader_names = {leader.name for leader in self._leaders}
        titles = set(DEFAULT_TITLES)
        for leader in self._leaders:
            titles.update(leader.titles)
        self._titles = titles
        # a name one character off: keyed by the name with one position blanked
        self._near: dict[str, list[int]] = {}
        for index, leader in enumerate(self._leaders):
            for pos in range(len(leader.name)):
                blank = leader.name[:pos] + "\0" + leader.name[pos + 1 :]
                self._near.setdefault(blank, []).append(index)
        # two-character names one character off are mostly other people: only longer names
        self._name_lengths = sorted({len(x.name) for x in self._leaders if len(x.name) >= 3})
        self._orgs = sorted({n for n in self.org_names if n})
        self._org_set = set(self._orgs)
        keys: dict[str, list[tuple[int, int]]] = {}
        for index, entry in enumerate(self._entries):
            keys.setdefault(entry.term, []).append((_ENTRY, index))
        for index, leader in enumerate(self._leaders):
            keys.setdefault(leader.name, []).append((_LEADER, index))
        if self._leaders:
            for title in titles:
                keys.setdefault(title, []).append((_TITLE, 0))
        for index, name in enumerate(self._orgs):
            if len(name) >= ORG_NAME_MIN_LENGTH:
                keys.setdefault(name[:3], []).append((_ORG, index))
        automaton = ahocorasick.Automaton()
        for key, payload in keys.items():
            automaton.add_word(_spell(key), (len(key), tuple(payload)))
        if keys:
            automaton.make_automaton()
        self._automaton = automaton
        self._empty = not keys

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, text: str, *, field: str = "") -> list[Hit]:
        """Every hit in ``text``, in text order (one pass of the automaton)."""
        if self._empty or not text:
            return []
        entry_hits: list[tuple[int, int, int]] = []
        leader_hits: list[tuple[int, int, int]] = []
        title_hits: list[tuple[int, int]] = []
        org_anchors: list[tuple[int, int]] = []
        for end, (length, payload) in self._automaton.iter(_spell(text)):
            if (end + 1) % _WIDTH:
                continue  # ends inside a character
            last = (end + 1) // _WIDTH - 1
            start = last - length + 1
            for kind, index in payload:
                if kind == _ENTRY:
                    entry_hits.append((start, last + 1, index))
                elif kind == _LEADER:
                    leader_hits.append((start, last + 1, index))
                elif kind == _TITLE:
                    title_hits.append((start, last + 1))
                else:
                    org_anchors.append((start, index))
        hits = self._entry_hits(text, entry_hits)
        if leader_hits or title_hits:
            hits += self._leader_hits(text, leader_hits, title_hits)
        if org_anchors:
            hits += self._org_hits(text, org_anchors)
        if field:
            hits = [
                Hit(h.category, h.start, h.end, h.text, h.message, h.suggestion, h.severity, field)
                for h in hits
            ]
        hits.sort(key=lambda h: (h.start, -h.end))
        return hits

    # -- entries

    def _excepted(self, text: str, start: int, index: int) -> bool:
        term = self._entries[index].term
        for exception in self._exceptions[index]:
            offset = exception.find(term)
            while offset >= 0:
                at = start - offset
                if at >= 0 and text.startswith(exception, at):
                    return True
                offset = exception.find(term, offset + 1)
        return False

    def _entry_hits(self, text: str, found: list[tuple[int, int, int]]) -> list[Hit]:
        found.sort(key=lambda f: (f[0], -f[1]))
        out: list[Hit] = []
        kept_end = -1
        for start, end, index in found:
            if end <= kept_end:
                continue  # inside a longer hit
            if self._exceptions[index] and self._excepted(text, start, index):
                continue
            entry = self._entries[index]
            kept_end = end
            message = entry.message or DEFAULT_MESSAGES[entry.category]
            out.append(
                Hit(entry.category, start, end, entry.term, message, entry.correct, entry.severity)
            )
        return out

    # -- leaders

    def _title_at(self, text: str, *, before: int = -1, after: int = -1) -> str:
        best = ""
        for title in self._titles:
            if len(title) <= len(best):
                continue
            at = before - len(title) if before >= len(title) else after
            if at >= 0 and text.startswith(title, at):
                best = title
        return best

    def _leader_hits(
        self,
        text: str,
        leader_hits: list[tuple[int, int, int]],
        title_hits: list[tuple[int, int]],
    ) -> list[Hit]:
        out: list[Hit] = []
        leader_hits.sort(key=lambda f: (f[0], -f[1]))
        named: list[tuple[int, int, int]] = []
        kept_end = -1
        for start, end, index in leader_hits:
            if end <= kept_end:
                continue
            kept_end = end
            named.append((start, end, index))
        covered = {(s, e) for s, e, _ in named}
        for start, end, index in named:
            leader = self._leaders[index]
            for title in (self._title_at(text, before=start), self._title_at(text, after=end)):
                if title and not any(_title_matches(t, title) for t in leader.titles):
                    out.append(
                        Hit(
                            Category.leader,
                            start,
                            end,
                            leader.name,
                            f"「{leader.name}」的职务是「{leader.title}」，不是「{title}」",
                            leader.title,
                            LEADER_TITLE_SEVERITY,
                        )
                    )
                    break
        out += self._near_names(text, title_hits, covered)
        out += self._order(text, named)
        return out

    def _near_names(
        self, text: str, title_hits: list[tuple[int, int]], covered: set[tuple[int, int]]
    ) -> list[Hit]:
        out: list[Hit] = []
        seen: set[int] = set()
        # a title inside a longer one (「省长」 in 「副省长」) adds nothing
        titles = sorted(title_hits, key=lambda t: (t[0], -t[1]))
        outer: list[tuple[int, int]] = []
        for start, end in titles:
            if outer and start >= outer[-1][0] and end <= outer[-1][1]:
                continue
            outer.append((start, end))
        for t_start, t_end in outer:
            for n in self._name_lengths:
                for w_start in (t_end, t_start - n):
                    w_end = w_start + n
                    if w_start < 0 or w_end > len(text) or w_start in seen:
                        continue
                    window = text[w_start:w_end]
                    if window in self._leader_names or not _CJK.match(window):
                        continue
                    if any(s < w_end and w_start < e for s, e in covered):
                        continue
                    for pos in range(n):
                        blank = window[:pos] + "\0" + window[pos + 1 :]
                        matches = self._near.get(blank)
                        if matches:
                            leader = self._leaders[matches[0]]
                            seen.add(w_start)
                            out.append(
                                Hit(
                                    Category.leader,
                                    w_start,
                                    w_end,
                                    window,
                                    f"「{window}」与登记的「{leader.name}」（{leader.title}）"
                                    "只差一个字，请核对姓名",
                                    leader.name,
                                    LEADER_NAME_SEVERITY,
                                )
                            )
                            break
                    if w_start in seen:
                        break
        return out

    def _order(self, text: str, named: list[tuple[int, int, int]]) -> list[Hit]:
        if len(named) < 2:
            return []
        ends = [m.start() for m in _SENTENCE_END.finditer(text)]
        groups: dict[tuple[int, str], list[tuple[int, int, int]]] = {}
        for start, end, index in named:
            sentence = bisect_right(ends, start)
            groups.setdefault((sentence, self._leaders[index].org), []).append((start, end, index))
        out: list[Hit] = []
        for members in groups.values():
            distinct: list[tuple[int, int, int]] = []
            for member in members:
                if all(member[2] != d[2] for d in distinct):
                    distinct.append(member)
            ranks = [self._leaders[i].rank for _, _, i in distinct]
            if len(distinct) < 2 or ranks == sorted(ranks):
                continue
            ordered = sorted(distinct, key=lambda d: self._leaders[d[2]].rank)
            names = "、".join(self._leaders[i].name for _, _, i in ordered)
            start, end = distinct[0][0], distinct[-1][1]
            out.append(
                Hit(
                    Category.leader,
                    start,
                    end,
                    text[start:end],
                    "领导排序与登记的顺序不一致",
                    names,
                    LEADER_ORDER_SEVERITY,
                )
            )
        return out

    # -- org names

    def _org_hits(self, text: str, anchors: list[tuple[int, int]]) -> list[Hit]:
        out: list[Hit] = []
        by_start: dict[int, list[str]] = {}
        for start, index in anchors:
            by_start.setdefault(start, []).append(self._orgs[index])
        for start, names in sorted(by_start.items()):
            if any(text.startswith(name, start) for name in names):
                continue
            for name in names:
                hit = self._org_near_miss(text, start, name)
                if hit is not None:
                    out.append(hit)
                    break
        return out

    def _org_near_miss(self, text: str, start: int, name: str) -> Hit | None:
        short = org_short_form(name)
        if short != name:
            target = short
            for length in range(len(name), len(short) - 1, -1):
                window = text[start : start + length]
                if org_short_form(window) == target:
                    if window in (name, short) or window in self._org_set:
                        return None
                    return Hit(
                        Category.org_name,
                        start,
                        start + length,
                        window,
                        f"机构名称全称与简称混用：全称「{name}」，简称「{short}」",
                        name,
                        ORG_NAME_SEVERITY,
                    )
        for length in (len(name), len(name) + 1, len(name) - 1):
            window = text[start : start + length]
            if (
                window[-2:] == name[-2:]
                and window not in self._org_set
                and org_short_form(window) not in self._org_set
                and window != name
                and _within_one_edit(window, name)
            ):
                return Hit(
                    Category.org_name,
                    start,
                    start + length,
                    window,
                    f"与机构「{name}」相差一个字，请核对名称",
                    name,
                    ORG_NAME_SEVERITY,
                )
        return None


def compile_lexicon(
    entries: Iterable[Entry], leaders: Iterable[Leader] = (), org_names: Iterable[str] = ()
) -> Lexicon:
    return Lexicon(list(entries), list(leaders), list(org_names))


def blocking(hits: Iterable[Hit]) -> list[Hit]:
    return [h for h in hits if h.severity is Severity.block]


def warnings(hits: Iterable[Hit]) -> list[Hit]:
    return [h for h in hits if h.severity is Severity.warn]


def refusal(hits: Iterable[Hit], what: str = "提交") -> str:
    """The 422 message for ``block`` hits (empty: nothing blocks)."""
    blocked = blocking(hits)
    if not blocked:
        return ""
    return Reason(
        "校对发现%(n)s处必须修改的问题，修改后才能%(what)s：%(hits)s",
        n=len(blocked),
        what=what,
        hits="；".join(h.describe() for h in blocked),
    )


def missing_acknowledgements(hits: Iterable[Hit], acknowledged: Iterable[str]) -> list[Hit]:
    """``warn`` hits whose text no acknowledgement (with a reason) names."""
    done = set(acknowledged)
    out: list[Hit] = []
    for hit in warnings(hits):
        if hit.text not in done and all(hit.text != h.text for h in out):
            out.append(hit)
    return out
