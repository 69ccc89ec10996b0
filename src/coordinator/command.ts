/**
 * Command templates as argv arrays: POSIX-shell-like word splitting without a shell, and quoting back for
 * places that do go through a shell (a Procfile).
 *
 * msgflo split commands on single spaces, so a `#IIPS` JSON with a space in it broke the command (§2.5).
 * Here a template is split into words first and the values are put into the words afterwards, so a value
 * never changes how the command is split.
 */

export class CommandSyntaxError extends Error {
  constructor(
    readonly template: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`${detail} at character ${offset + 1} of: ${template}`);
    this.name = 'CommandSyntaxError';
  }
}

/**
 * Split a command line into words like a POSIX shell does, and do nothing else (no variables, globs,
 * comments, redirections or operators: `#`, `$`, `*`, `|` and `;` are ordinary characters):
 * - blanks (space, tab, newline) separate words;
 * - `'…'` is literal; `"…"` is literal except `\"`, `\\`, `\$`, `` \` `` and backslash-newline;
 * - outside quotes a backslash takes the next character literally, backslash-newline is removed;
 * - `''` and `""` give an empty word.
 * @throws CommandSyntaxError for an unterminated quote.
 * @example splitCommand(`run --json '{"a": 1}' "x y"`) // ['run', '--json', '{"a": 1}', 'x y']
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const n = command.length;
  while (i < n) {
    const c = command[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    const wasInWord: boolean = inWord;
    inWord = true;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end === -1) throw new CommandSyntaxError(command, i, 'unterminated single quote');
      word += command.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      const start = i;
      i++;
      for (;;) {
        if (i >= n) throw new CommandSyntaxError(command, start, 'unterminated double quote');
        const d = command[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < n && '"\\$`\n'.includes(command[i + 1]!)) {
          if (command[i + 1] !== '\n') word += command[i + 1];
          i += 2;
          continue;
        }
        word += d;
        i++;
      }
    } else if (c === '\\') {
      if (i + 1 >= n) {
        word += '\\';
        i++;
      } else {
        if (command[i + 1] !== '\n') word += command[i + 1];
        else inWord = wasInWord; // a line continuation does not start a word
        i += 2;
      }
    } else {
      word += c;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Characters that never need quoting in a POSIX shell word. */
const SAFE_WORD = /^[A-Za-z0-9_\-.,:/@%+=]+$/;

/**
 * Quote one argument for a POSIX shell (bash, dash, sh): unchanged when it only has safe characters,
 * else in single quotes with `'` written as `'\''`.
 * @example quoteArg(`{"a": 1}`) // `'{"a": 1}'`
 */
export function quoteArg(arg: string): string {
  if (arg !== '' && SAFE_WORD.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argv array as one shell command line that a shell splits back into the same argv. */
export function joinCommand(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}
