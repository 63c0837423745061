// A JSON reader that remembers where each value is in the text, so that an error the API
// reports for "process.steps[2].then[0]" can be shown at that step in the editor.

export class JsonSyntaxError extends Error {
  constructor(message, offset, text) {
    const { line, column } = lineColumn(text, offset);
    super(`${message} at line ${line}, column ${column}`);
    this.offset = offset;
    this.line = line;
    this.column = column;
  }
}

export function lineColumn(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return { line, column };
}

/** Parse ``text``; returns {value, spans} where spans maps a path key to {start, end}. */
export function parseWithPositions(text) {
  let i = 0;
  const spans = new Map();
  const fail = (message) => {
    throw new JsonSyntaxError(message, i, text);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i += 1;
  };
  const value = (path) => {
    ws();
    const start = i;
    let result;
    const c = text[i];
    if (c === "{") {
      result = {};
      i += 1;
      ws();
      if (text[i] === "}") i += 1;
      else {
        for (;;) {
          ws();
          if (text[i] !== '"') fail("expected a property name in double quotes");
          const key = string();
          ws();
          if (text[i] !== ":") fail("expected ':'");
          i += 1;
          if (Object.hasOwn(result, key)) fail(`duplicate key ${JSON.stringify(key)}`);
          result[key] = value([...path, key]);
          ws();
          if (text[i] === ",") i += 1;
          else if (text[i] === "}") {
            i += 1;
            break;
          } else fail("expected ',' or '}'");
        }
      }
    } else if (c === "[") {
      result = [];
      i += 1;
      ws();
      if (text[i] === "]") i += 1;
      else {
        for (;;) {
          result.push(value([...path, result.length]));
          ws();
          if (text[i] === ",") i += 1;
          else if (text[i] === "]") {
            i += 1;
            break;
          } else fail("expected ',' or ']'");
        }
      }
    } else if (c === '"') {
      result = string();
    } else {
      const match = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!match) fail(i >= text.length ? "unexpected end of the text" : "expected a JSON value");
      result = JSON.parse(match[0]);
      i += match[0].length;
    }
    spans.set(pathKey(path), { start, end: i });
    return result;
  };
  const string = () => {
    const start = i;
    i += 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i += 1;
      else if (text.charCodeAt(i) < 0x20) fail("control character in a string");
      i += 1;
    }
    if (i >= text.length) fail("unterminated string");
    i += 1;
    try {
      return JSON.parse(text.slice(start, i));
    } catch {
      i = start;
      return fail("invalid escape in a string");
    }
  };
  const result = value([]);
  ws();
  if (i < text.length) fail("unexpected text after the JSON value");
  return { value: result, spans };
}

export function pathKey(path) {
  return JSON.stringify(path);
}

/**
 * The step an API message names, as a path inside the process object:
 * "scenario.process.steps[1].then[0].value: ..." -> ["steps", 1, "then", 0].
 */
export function stepPathOf(message) {
  const match = /(?:^|\s|scenario\.)process\.(steps(?:\[\d+\](?:\.(?:then|else)\[\d+\])*))/.exec(message || "");
  if (!match) return null;
  const path = [];
  for (const part of match[1].matchAll(/([a-z]+)|\[(\d+)\]/g)) {
    path.push(part[1] !== undefined ? part[1] : Number(part[2]));
  }
  return typeof path[path.length - 1] === "number" ? path : null;
}
