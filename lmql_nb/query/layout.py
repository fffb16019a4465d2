"""The clauses of an LMQL program, found with Python's tokenizer.

LMQL programs are Python plus four constructs Python's parser does not know: a leading
decoder clause (`argmax`, `sample(n=2)`), `where` and `distribution` after a prompt
string, and the standalone form's trailing `from` / `where` / `distribution` clauses.
`split` finds them on the token stream and returns the program as Python source in which
those clauses are blanked out with spaces (so every line and column of the rest stays
where the user wrote it), together with the clauses' own source and position.
"""

from __future__ import annotations

import dataclasses
import io
import tokenize
from typing import Optional

from ..core.options import QUERY_DECODERS

#: decoders LMQL has that lmql_nb does not run (`incontext`: none standalone, in LMQL too)
UNSUPPORTED_DECODERS = ("incontext",)
_CLAUSES = ("where", "distribution")
_TAIL_CLAUSES = ("from", "where", "distribution")
# a decoder keyword starts the program only if it is not used as a Python name
_NOT_A_CLAUSE = {"=", ".", ",", "[", "+=", "-=", "*=", "/=", ":", "==", "!=", "+", "-", "*"}


@dataclasses.dataclass(frozen=True)
class Clause:
    """A clause's source (an expression) and where it starts (1-based line, 0-based col)."""

    keyword: str
    source: str
    line: int
    col: int


@dataclasses.dataclass
class Layout:
    """`python` is the program with the LMQL clauses blanked; `statement_clauses` maps the
    line of a prompt statement's first string token to its `where`/`distribution`."""

    python: str
    decoder: Optional[Clause] = None  # source: the keyword arguments, e.g. "n=2"
    statement_clauses: dict[tuple[int, int], list[Clause]] = dataclasses.field(default_factory=dict)
    tail: list[Clause] = dataclasses.field(default_factory=list)
    body_indented: bool = False
    #: lines before the decoder clause (imports, definitions: the query's globals, as in
    #: LMQL); 0 when the decoder clause comes first or there is none
    prologue_lines: int = 0


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    try:
        return [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type != tokenize.ENCODING]
    except tokenize.TokenError as error:
        message, (line, col) = error.args
        raise SyntaxError(message.replace("EOF", "end of query"),
                          ("<lmql>", line, col + 1, None)) from None


def _logical_lines(tokens: list[tokenize.TokenInfo]) -> list[list[tokenize.TokenInfo]]:
    lines: list[list[tokenize.TokenInfo]] = [[]]
    for token in tokens:
        if token.type in (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER):
            continue
        if token.type == tokenize.NEWLINE:
            if lines[-1]:
                lines.append([])
            continue
        lines[-1].append(token)
    return [line for line in lines if line]


def _significant(line: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    return [t for t in line if t.type not in (tokenize.INDENT, tokenize.DEDENT)]


class _Text:
    """The source as editable lines, addressed by tokenize's (line, col) positions."""

    def __init__(self, source: str):
        self.lines = source.split("\n")

    def blank(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        (l0, c0), (l1, c1) = start, end
        for line in range(l0, l1 + 1):
            text = self.lines[line - 1]
            a = c0 if line == l0 else 0
            b = c1 if line == l1 else len(text)
            self.lines[line - 1] = text[:a] + " " * (b - a) + text[b:]

    def segment(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        (l0, c0), (l1, c1) = start, end
        if l0 == l1:
            return self.lines[l0 - 1][c0:c1]
        parts = [self.lines[l0 - 1][c0:]] + self.lines[l0:l1 - 1] + [self.lines[l1 - 1][:c1]]
        return "\n".join(parts)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _is_keyword(line: list[tokenize.TokenInfo], i: int, names: tuple[str, ...]) -> bool:
    """Whether `line[i]` is one of the clause keywords `names`, in any case (LMQL reads
    `WHERE`, `FROM` as `where`, `from`); a name in another case that is assigned to, or
    whose attribute or item is read, is Python's."""
    token = line[i]
    if token.type != tokenize.NAME or token.string.lower() not in names:
        return False
    if token.string in names:
        return True
    follower = line[i + 1] if i + 1 < len(line) else None
    return follower is None or follower.string not in _NOT_A_CLAUSE | {"(", ")"}


def _depth_zero(line: list[tokenize.TokenInfo], start: int,
                names: tuple[str, ...]) -> Optional[int]:
    """The index of the first clause keyword in `names` at bracket depth 0 from `start`
    on."""
    depth = 0
    for i in range(start, len(line)):
        token = line[i]
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif depth == 0 and _is_keyword(line, i, names):
            return i
    return None


def _all_depth_zero(line: list[tokenize.TokenInfo], start: int,
                    names: tuple[str, ...]) -> list[int]:
    """The indices of every NAME in `names` at bracket depth 0 from `start` on."""
    found = []
    index = _depth_zero(line, start, names)
    while index is not None:
        found.append(index)
        index = _depth_zero(line, index + 1, names)
    return found


def _strings_end(line: list[tokenize.TokenInfo], start: int) -> int:
    """The index after the run of string tokens starting at `start`."""
    i = start
    while i < len(line) and line[i].type == tokenize.STRING:
        i += 1
    return i


def split(source: str) -> Layout:
    """Find the LMQL clauses in `source` (see the module docstring)."""
    tokens = _tokens(source)
    lines = [_significant(line) for line in _logical_lines(tokens)]
    lines = [line for line in lines if line]
    text = _Text(source)
    layout = Layout(python="")
    first_body = 0
    start = _decoder_line(lines)
    if start is not None:
        first_body = _decoder(lines[start], text, layout)
        if start > 0:  # a prologue before the decoder clause: the clause opens the body
            _open_body(lines[start], first_body, text, layout)
    start = start or 0
    # the standalone form's trailing clauses: the first logical line at column 0 (after an
    # indented body) that starts with from/where/distribution, or such a keyword after the
    # prompt string of a one-line program
    tail_start: Optional[tuple[int, int]] = None
    for index, line in enumerate(lines):
        if index < start:
            _statement_clauses(line, 0, text, layout)
            continue
        index -= start
        head = line[first_body] if index == 0 and first_body < len(line) else line[0]
        if index == 0 and first_body >= len(line):
            continue
        if (_is_keyword(line, line.index(head), _TAIL_CLAUSES) and head.start[1] == 0
                and not (head.string == "from" and any(t.string == "import" for t in line))):
            tail_start = head.start
            break
        if layout.decoder is not None and index == 0 and head.type == tokenize.STRING:
            at = _depth_zero(line, _strings_end(line, first_body), _TAIL_CLAUSES)
            if at is not None and line[at].string.lower() == "from":
                tail_start = line[at].start
                break
        _statement_clauses(line, first_body if index == 0 else 0, text, layout)
    if tail_start is not None:
        layout.tail = _tail(source, tail_start)
        end_line = len(text.lines)
        text.blank(tail_start, (end_line, len(text.lines[end_line - 1])))
    python = str(text)
    body = [line for line in lines[start:]
            if line and line[0].start < (tail_start or (1 << 30, 0))]
    if layout.decoder is not None and not layout.prologue_lines:
        starts = [line[first_body].start if i == 0 else line[0].start for i, line in enumerate(body)
                  if not (i == 0 and first_body >= len(line))]
        layout.body_indented = bool(starts) and starts[0][1] > 0
    layout.python = python
    return layout


def _decoder_line(lines: list[list[tokenize.TokenInfo]]) -> Optional[int]:
    """The index of the logical line holding the decoder clause: the first line, or the
    first line at column 0 after a prologue (imports, definitions) that opens an
    indented body or carries the prompt string."""
    if not lines:
        return None
    if _is_decoder_clause(lines[0]):
        return 0
    for index, line in enumerate(lines[1:], start=1):
        if line[0].start[1] != 0 or not _is_decoder_clause(line):
            continue
        after = lines[index + 1] if index + 1 < len(lines) else None
        if any(t.type == tokenize.STRING for t in line) or (
                after is not None and after[0].start[1] > 0):
            return index
    return None


def _open_body(line: list[tokenize.TokenInfo], first_body: int, text: _Text,
               layout: Layout) -> None:
    """The blanked decoder clause after a prologue becomes `if 1:`, which opens the
    indented body (or the prompt string on the same line) without moving any column."""
    head = line[0]
    end = line[first_body - 1].end
    width = end[1] - head.start[1] if end[0] == head.start[0] else 0
    if width < len("if 1:"):
        raise SyntaxError(f"write a space after the decoder clause {head.string!r}",
                          ("<lmql>", head.start[0], head.start[1] + 1, head.line))
    row = text.lines[head.start[0] - 1]
    text.lines[head.start[0] - 1] = "if 1:" + row[len("if 1:"):]
    layout.prologue_lines = head.start[0] - 1


def _is_decoder_clause(line: list[tokenize.TokenInfo]) -> bool:
    head = line[0]
    if head.type != tokenize.NAME or head.start[1] != 0:
        return False
    if head.string.lower() not in QUERY_DECODERS + UNSUPPORTED_DECODERS:
        return False
    if len(line) == 1:
        return True
    follower = line[1]
    if follower.type == tokenize.STRING:
        return True
    if follower.type == tokenize.OP and follower.string == "(":
        closing = _matching(line, 1)
        return closing is not None and (closing == len(line) - 1
                                        or line[closing + 1].type == tokenize.STRING)
    return follower.string not in _NOT_A_CLAUSE and follower.type != tokenize.OP


def _matching(line: list[tokenize.TokenInfo], open_index: int) -> Optional[int]:
    depth = 0
    for i in range(open_index, len(line)):
        if line[i].type == tokenize.OP and line[i].string in "([{":
            depth += 1
        elif line[i].type == tokenize.OP and line[i].string in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _decoder(line: list[tokenize.TokenInfo], text: _Text, layout: Layout) -> int:
    """Record and blank the decoder clause; return the index of the first body token."""
    head = line[0]
    if head.string in UNSUPPORTED_DECODERS:
        raise SyntaxError(f"the decoder {head.string!r} is not supported by lmql_nb; "
                          f"supported decoders: {', '.join(QUERY_DECODERS)}",
                          ("<lmql>", head.start[0], head.start[1] + 1, head.line))
    end, arguments, after = head.end, "", 1
    if len(line) > 1 and line[1].string == "(":
        closing = _matching(line, 1)
        assert closing is not None
        arguments = text.segment(line[1].end, line[closing].start)
        end, after = line[closing].end, closing + 1
    layout.decoder = Clause(head.string.lower(), arguments, head.start[0], head.start[1])
    text.blank(head.start, end)
    return after


def _statement_clauses(line: list[tokenize.TokenInfo], start: int, text: _Text,
                       layout: Layout) -> None:
    """A prompt statement's `where` / `distribution`: blank them, record their source."""
    if start >= len(line) or line[start].type != tokenize.STRING:
        return
    at = _depth_zero(line, _strings_end(line, start), _CLAUSES)
    if at is None:
        return
    key = line[start].start
    clauses: list[Clause] = []
    end = line[-1].end
    positions = _all_depth_zero(line, at, _CLAUSES)
    positions.append(len(line))
    for a, b in zip(positions, positions[1:]):
        stop = line[b].start if b < len(line) else end
        source = text.segment(line[a].end, stop).strip()
        first = line[a + 1] if a + 1 < len(line) else line[a]
        clauses.append(Clause(line[a].string.lower(), source, first.start[0], first.start[1]))
    layout.statement_clauses[key] = clauses
    text.blank(line[at].start, end)


def _tail(source: str, start: tuple[int, int]) -> list[Clause]:
    """Split the trailing clauses (from `start` to the end) by their keywords."""
    tokens = _tokens(source)
    depth = 0
    marks: list[tokenize.TokenInfo] = []
    tokens = [t for t in tokens if t.start >= start
              and t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT,
                                 tokenize.INDENT, tokenize.DEDENT)]
    for i, token in enumerate(tokens):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif depth == 0 and _is_keyword(tokens, i, _TAIL_CLAUSES) and (
                token.start == start or token.start[1] == 0 or token.start[0] == start[0]):
            marks.append(token)
    text = _Text(source)
    last_line = len(text.lines)
    clauses = []
    for i, mark in enumerate(marks):
        stop = marks[i + 1].start if i + 1 < len(marks) else (last_line, len(text.lines[-1]))
        body = text.segment(mark.end, stop)
        stripped = body.lstrip()
        skipped = body[:len(body) - len(stripped)]
        line = mark.end[0] + skipped.count("\n")
        col = ((mark.end[1] + len(skipped)) if "\n" not in skipped
               else len(skipped.rsplit("\n", 1)[1]))
        clauses.append(Clause(mark.string.lower(), stripped.rstrip(), line, col))
    return clauses
