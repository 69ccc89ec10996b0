/**
 * Where a JSON text goes wrong. `JSON.parse` reports a position only for some errors, and its messages differ
 * between Node versions, so when it fails we scan the text ourselves (RFC 8259) to find the offending offset.
 */

export interface JsonErrorLocation {
  /** 0-based offset of the first character that cannot be part of valid JSON (text.length for an early end). */
  offset: number;
  line: number;
  column: number;
  detail: string;
}

class JsonScanError extends Error {
  constructor(
    readonly offset: number,
    detail: string,
  ) {
    super(detail);
  }
}

function describe(text: string, i: number): string {
  if (i >= text.length) return 'end of input';
  const ch = text[i]!;
  const code = ch.charCodeAt(0);
  if (code < 0x20) return `control character U+${code.toString(16).padStart(4, '0').toUpperCase()}`;
  return `'${ch}'`;
}

/** Scans `text` as JSON; throws JsonScanError at the first problem. Iterative, so deep nesting cannot overflow. */
function scan(text: string): void {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };
  const fail = (expected: string): never => {
    throw new JsonScanError(i, `unexpected ${describe(text, i)}, expected ${expected}`);
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) {
      if (text[i] !== word[k]) fail(`'${word}'`);
      i++;
    }
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail('a closing \'"\'');
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c.charCodeAt(0) < 0x20) throw new JsonScanError(i, `${describe(text, i)} inside a string (escape it, e.g. \\n)`);
      if (c === '\\') {
        i++;
        const e = text[i];
        if (e === undefined) fail('an escape character');
        if (e === 'u') {
          i++;
          for (let k = 0; k < 4; k++) {
            if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail('a hex digit');
            i++;
          }
          continue;
        }
        if (!'"\\/bfnrt'.includes(e!)) throw new JsonScanError(i, `invalid escape '\\${e}' in a string`);
        i++;
        continue;
      }
      i++;
    }
  };
  const digits = () => {
    if (!/[0-9]/.test(text[i] ?? '')) fail('a digit');
    while (/[0-9]/.test(text[i] ?? '')) i++;
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') {
      i++;
      digits();
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
  };
  // Containers on a stack: 'o' expects key or '}', 'O' expects ',' or '}', 'a' expects value or ']', 'A' ',' or ']'.
  const stack: string[] = [];
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      stack.push('o');
      return;
    }
    if (c === '[') {
      i++;
      stack.push('a');
      return;
    }
    if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail('a value');
    afterValue();
  };
  const afterValue = () => {
    const top = stack.length - 1;
    if (top >= 0) stack[top] = stack[top] === 'o' || stack[top] === 'k' ? 'O' : 'A';
  };
  value();
  while (stack.length) {
    ws();
    const state = stack[stack.length - 1];
    if (state === 'o' || state === 'k') {
      // 'k': after a comma, a key is required
      if (state === 'o' && text[i] === '}') {
        i++;
        stack.pop();
        afterValue();
        continue;
      }
      if (text[i] !== '"') fail(state === 'o' ? "a property name in double quotes or '}'" : 'a property name in double quotes');
      string();
      ws();
      if (text[i] !== ':') fail("':'");
      i++;
      value();
    } else if (state === 'O') {
      if (text[i] === ',') {
        i++;
        stack[stack.length - 1] = 'k';
      } else if (text[i] === '}') {
        i++;
        stack.pop();
        afterValue();
      } else fail("',' or '}'");
    } else if (state === 'a') {
      if (text[i] === ']') {
        i++;
        stack.pop();
        afterValue();
        continue;
      }
      value();
    } else if (state === 'b') {
      value();
    } else {
      // 'A'
      if (text[i] === ',') {
        i++;
        stack[stack.length - 1] = 'b';
      } else if (text[i] === ']') {
        i++;
        stack.pop();
        afterValue();
      } else fail("',' or ']'");
    }
  }
  ws();
  if (i < n) fail('end of input');
}

/** 1-based line and column of a 0-based offset (lines end at \n, \r\n or a lone \r). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Locate the first JSON syntax error in `text`, or undefined when `text` is valid JSON.
 * @example locateJsonError('{"a": }') // { offset: 6, line: 1, column: 7, detail: "unexpected '}', expected a value" }
 */
export function locateJsonError(text: string): JsonErrorLocation | undefined {
  try {
    scan(text);
    return undefined;
  } catch (err) {
    if (!(err instanceof JsonScanError)) throw err;
    return { offset: err.offset, ...lineColumn(text, err.offset), detail: err.message };
  }
}
