import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { CommandSyntaxError, joinCommand, quoteArg, splitCommand } from '../../src/coordinator/command.js';

/** What /bin/sh makes of `words` (globbing off): the argv a command would get. */
function shellArgv(words: string): string[] {
  const out = execFileSync('sh', ['-c', `set -f; exec "$0" -e 'process.stdout.write(JSON.stringify(process.argv.slice(1)))' -- ${words}`, process.execPath]);
  return JSON.parse(out.toString()) as string[];
}

describe('command templates (library)', () => {
  describe('splitCommand', () => {
    const cases: [string, string[]][] = [
      ['a b  c', ['a', 'b', 'c']],
      [`run --json '{"a": 1}' "x y"`, ['run', '--json', '{"a": 1}', 'x y']],
      ['a\\ b', ['a b']],
      [`"a\\"b" 'c\\d' e"$"f`, ['a"b', 'c\\d', 'e$f']],
      [`x '' "" y`, ['x', '', '', 'y']],
      ['a \\\n b', ['a', 'b']],
      ['"a\\nb"', ['a\\nb']],
      ['\tmix"ed"\'quo\'tes ', ['mixedquotes']],
    ];
    for (const [input, expected] of cases) {
      it(`splits ${JSON.stringify(input)} like sh`, () => {
        assert.deepEqual(splitCommand(input), expected);
        assert.deepEqual(shellArgv(input), expected);
      });
    }

    it('treats # $ * | ; as ordinary characters (templates are not shell scripts)', () => {
      assert.deepEqual(splitCommand('a #ROLE $HOME *.js x|y a;b'), ['a', '#ROLE', '$HOME', '*.js', 'x|y', 'a;b']);
    });

    it('throws CommandSyntaxError for unterminated quotes', () => {
      assert.throws(() => splitCommand(`a 'b`), (e: unknown) => e instanceof CommandSyntaxError && e.offset === 2);
      assert.throws(() => splitCommand('a "b\\"'), CommandSyntaxError);
    });
  });

  describe('joinCommand / quoteArg', () => {
    it('leaves safe words alone and single-quotes the rest', () => {
      assert.equal(quoteArg('participants/Repeat.js'), 'participants/Repeat.js');
      assert.equal(quoteArg('--name=a:b@c%d+e,f'), '--name=a:b@c%d+e,f');
      assert.equal(quoteArg(''), "''");
      assert.equal(quoteArg('{"a": 1}'), `'{"a": 1}'`);
      assert.equal(quoteArg("it's"), `'it'\\''s'`);
      assert.equal(quoteArg('#ROLE'), "'#ROLE'");
    });

    it('gives a line that sh splits back into the same argv', () => {
      const argv = ['noflo-runtime-msgflo', '--iips', JSON.stringify({ in: "it's a \"test\"", n: [1, 2] }), '', 'a\nb', '$HOME', '*', '#x', '~', 'a\\b'];
      assert.deepEqual(shellArgv(joinCommand(argv)), argv);
      assert.deepEqual(splitCommand(joinCommand(argv)), argv);
    });
  });
});
