"""One CSV line split as Ruby's `CSV.parse_line` splits it (the Logstash csv filter's reader).

Python's csv module forgives what Ruby refuses (a quote inside an unquoted field, text after a
closing quote, an unclosed quote), and those are the lines Logstash tags `_csvparsefailure`, so
the rules are kept here: an empty unquoted field is None, `""` is an empty string, a doubled
quote inside quotes is one quote, and only the first row of the text counts. A separator may
be several characters; a quote_char of NUL disables quoting.
"""

from __future__ import annotations


class CsvLineError(ValueError):
    """The line is not valid CSV under Ruby's rules."""


def parse_csv_line(text: str, separator: str = ",", quote: str = '"') -> list[str | None] | None:
    """The fields of the first row of text; None for an empty line (Ruby returns nil)."""
    if not text:
        return None
    if not separator:
        raise CsvLineError("empty separator")
    fields: list[str | None] = []
    i, n, sep_len = 0, len(text), len(separator)
    quoting = bool(quote) and quote != "\x00"
    while True:
        if quoting and text.startswith(quote, i):
            i += 1
            chunk: list[str] = []
            while True:
                close = text.find(quote, i)
                if close < 0:
                    raise CsvLineError(f"unclosed quoted field at column {i}")
                chunk.append(text[i:close])
                i = close + 1
                if text.startswith(quote, i):
                    chunk.append(quote)
                    i += 1
                    continue
                break
            fields.append("".join(chunk))
            if i >= n or text.startswith(separator, i):
                pass
            elif text[i] in "\r\n":
                return fields
            else:
                raise CsvLineError(f"text after a closing quote at column {i}")
        else:
            end = text.find(separator, i)
            newline = _line_end(text, i)
            if newline >= 0 and (end < 0 or newline < end):
                fields.append(_unquoted(text[i:newline], quote if quoting else "", i))
                return fields
            if end < 0:
                fields.append(_unquoted(text[i:], quote if quoting else "", i))
                return fields
            fields.append(_unquoted(text[i:end], quote if quoting else "", i))
            i = end
        if i >= n:
            return fields
        i += sep_len
        if i >= n:
            fields.append(None)
            return fields


def _line_end(text: str, start: int) -> int:
    ends = [p for p in (text.find("\r", start), text.find("\n", start)) if p >= 0]
    return min(ends) if ends else -1


def _unquoted(value: str, quote: str, column: int) -> str | None:
    if quote and quote in value:
        raise CsvLineError(f"illegal quoting in an unquoted field at column {column}")
    return value if value else None
