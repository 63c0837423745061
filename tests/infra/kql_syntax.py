"""Parse Kusto queries with the Kusto grammar, for tests/infra/test_operations.py.

Runs in .venv-infra (requirements-infra.txt: kusto-query-language-parser, Microsoft's ANTLR
grammar of the Kusto Query Language, and the ANTLR runtime it pins), beside checkov, so that
runtime pin stays out of the app's environment. Reads a JSON list of queries on stdin and prints
a JSON list with each query's syntax errors ("line L:C message"; empty when it parses).
"""

from __future__ import annotations

import json
import sys

from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from kusto_query_language_parser.parse_tools.KqlLexer import KqlLexer
from kusto_query_language_parser.parse_tools.KqlParser import KqlParser


class _Errors(ErrorListener):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e) -> None:  # noqa: N802, N803 - ANTLR's names
        self.found.append(f"line {line}:{column} {msg}")


def syntax_errors(query: str) -> list[str]:
    errors = _Errors()
    lexer = KqlLexer(InputStream(query))
    lexer.removeErrorListeners()
    lexer.addErrorListener(errors)
    parser = KqlParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    parser.top()
    return errors.found


if __name__ == "__main__":
    print(json.dumps([syntax_errors(query) for query in json.load(sys.stdin)]))
