import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, LibraryInvalidError, UnknownComponentError } from '../../src/errors.js';
import { DEFAULT_HANDLERS, loadLibrary } from '../../src/coordinator/library.js';

const cwd = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'library');

describe('component library', () => {
  describe('loading (package.json, "msgflo" key)', () => {
    it('lists library components and every participant file that has a handler', async () => {
      const lib = await loadLibrary({ cwd });
      assert.equal(lib.file, path.join(cwd, 'package.json'));
      assert.deepEqual(lib.components(), [
        'Bulb',
        'Custom',
        'Job', // .rb, through the library's own handler
        'Legacy',
        'Print',
        'Repeat',
        'Sub',
        'Titled',
        'Worker',
        'acme/Api',
      ]);
      assert.equal(lib.has('README'), false, 'no handler for .md');
      assert.equal(lib.has('.hidden'), false, 'hidden files are skipped');
      assert.equal(lib.has('types.d'), false, 'type declarations are skipped');
    });

    it('does not take the package name as namespace (msgflo default that crashed), and reads repository.url', async () => {
      const lib = await loadLibrary({ cwd });
      assert.equal(lib.namespace, '');
      assert.equal(lib.repository, 'https://example.com/library-fixture.git');
    });

    it('describes components: origin, file relative to cwd, language', async () => {
      const lib = await loadLibrary({ cwd });
      assert.deepEqual(lib.get('Worker'), {
        name: 'Worker',
        template: '#PY #FILENAME #ROLE',
        origin: 'file',
        file: path.join('participants', 'Worker.py'),
        language: 'python',
      });
      assert.deepEqual(lib.get('Custom'), { name: 'Custom', template: 'custom-runner --role #ROLE --component #COMPONENT', origin: 'config' });
      assert.equal(lib.get('Nope'), undefined);
    });

    it('reads a config at the top level, and uses the defaults when the default package.json is missing', async () => {
      const top = await loadLibrary({ cwd, file: 'toplevel.json' });
      assert.deepEqual(top.commandFor('Repeat', 'r'), ['my-repeat', 'r'], 'library components win over files');
      assert.equal(top.repository, 'https://example.com/top.git');

      const empty = mkdtempSync(path.join(tmpdir(), 'msgflo-lib-'));
      try {
        const lib = await loadLibrary({ cwd: empty });
        assert.equal(lib.file, undefined);
        assert.deepEqual(lib.components(), []);
        assert.deepEqual(lib.handlers, DEFAULT_HANDLERS);
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });

    it('takes an inline config and another component directory', async () => {
      const lib = await loadLibrary({ cwd, config: { components: { X: 'x #ROLE' } }, componentDir: 'nowhere' });
      assert.deepEqual(lib.components(), ['X']);
      assert.equal(lib.file, undefined);
    });

    it('lets a library remove a default handler with null', async () => {
      const lib = await loadLibrary({ cwd, config: { msgflo: { handlers: { '.fbp': null, '.yml': null } } } });
      assert.equal(lib.has('Sub'), false);
      assert.equal(lib.has('Bulb'), false);
      assert.equal(lib.has('Repeat'), true);
    });
  });

  describe('commandFor', () => {
    it('expands the default handlers into argv arrays', async () => {
      const lib = await loadLibrary({ cwd });
      assert.deepEqual(lib.commandFor('Repeat', 'repeater'), ['msgflo-participant', '--name', 'repeater', path.join('participants', 'Repeat.js')]);
      assert.deepEqual(lib.commandFor('Print', 'printer'), ['msgflo-participant', '--name', 'printer', path.join('participants', 'Print.ts')]);
      assert.deepEqual(lib.commandFor('Legacy', 'old'), ['msgflo-nodejs', '--name', 'old', path.join('participants', 'Legacy.coffee')]);
      assert.deepEqual(lib.commandFor('Bulb', 'bulb1'), ['msgflo-register', '--role', `bulb1:${path.join('participants', 'Bulb.yml')}`]);
      assert.deepEqual(lib.commandFor('Job', 'job'), ['ruby', path.join('participants', 'Job.rb'), 'job']);
    });

    it('keeps #IIPS JSON with spaces as one argument', async () => {
      const lib = await loadLibrary({ cwd });
      const iips = { config: { greeting: 'hello world', n: [1, 2] }, in: "it's" };
      const argv = lib.commandFor('Sub', 'sub', iips);
      assert.deepEqual(argv, ['noflo-runtime-msgflo', '--name', 'sub', '--graph', 'Sub', '--iips', JSON.stringify(iips)]);
      assert.deepEqual(JSON.parse(argv.at(-1)!), iips);
      assert.deepEqual(lib.commandFor('Sub', 'sub'), ['noflo-runtime-msgflo', '--name', 'sub', '--graph', 'Sub', '--iips', '{}']);
    });

    it('fills #COMPONENT and #COMPONENTNAME (after the slash)', async () => {
      const lib = await loadLibrary({ cwd });
      assert.deepEqual(lib.commandFor('Custom', 'c'), ['custom-runner', '--role', 'c', '--component', 'Custom']);
      assert.deepEqual(lib.commandFor('acme/Api', 'api', [1, 'a b']), ['api-server', 'Api', 'api', '--iips', '[1,"a b"]']);
    });

    it('expands #VARIABLES as template text: several words unquoted, one word quoted', async () => {
      const lib = await loadLibrary({ cwd });
      assert.deepEqual(lib.commandFor('Worker', 'w'), ['python3', '-u', path.join('participants', 'Worker.py'), 'w']);
      assert.deepEqual(lib.commandFor('Titled', 't'), ['show', '--title', 'my title', '--name=t']);
    });

    it('never lets a value change the splitting: roles and file names with spaces or quotes stay one word', async () => {
      const lib = await loadLibrary({ cwd, config: { components: { Q: "run '#ROLE' #ROLE \"#IIPS\"" } } });
      assert.deepEqual(lib.commandFor('Q', `a 'b'`, { x: '"y z"' }), ['run', `a 'b'`, `a 'b'`, '{"x":"\\"y z\\""}']);
    });

    it('matches the longest marker: #COMPONENTNAME is not #COMPONENT + "NAME", user variables too', async () => {
      const lib = await loadLibrary({
        cwd,
        config: { variables: { COMP: 'short', COMPX: 'long' }, components: { 'n/C': '#COMPONENTNAME #COMPONENT #COMPX #COMP #UNKNOWN' } },
      });
      assert.deepEqual(lib.commandFor('n/C', 'r'), ['C', 'n/C', 'long', 'short', '#UNKNOWN']);
    });

    it('throws UnknownComponentError listing the known components', async () => {
      const lib = await loadLibrary({ cwd, config: { components: { A: 'a', B: 'b' } }, componentDir: 'nowhere' });
      assert.throws(
        () => lib.commandFor('Missing', 'role1'),
        (err: unknown) => {
          assert.ok(err instanceof UnknownComponentError);
          assert.equal(err.code, ErrorCodes.UNKNOWN_COMPONENT);
          assert.equal(err.component, 'Missing');
          assert.deepEqual(err.known, ['A', 'B']);
          assert.match(err.message, /Unknown component 'Missing' \(used by node 'role1'\)\. Known components: A, B/);
          return true;
        },
      );
    });
  });

  describe('namespaces', () => {
    it('prefixes file components with the namespace, not library components', async () => {
      const lib = await loadLibrary({ cwd, file: 'namespaced.json' });
      assert.equal(lib.namespace, 'proj');
      assert.ok(lib.components().includes('proj/Repeat'));
      assert.ok(lib.components().includes('Extra'));
      assert.ok(!lib.components().includes('Repeat'));
    });

    it('finds a namespaced component by its bare name and the other way round (msgflo crashed on this)', async () => {
      const lib = await loadLibrary({ cwd, file: 'namespaced.json' });
      assert.equal(lib.resolve('Repeat'), 'proj/Repeat');
      assert.equal(lib.resolve('proj/Repeat'), 'proj/Repeat');
      assert.equal(lib.resolve('proj/Extra'), 'Extra');
      assert.equal(lib.resolve('other/Extra'), 'Extra');
      assert.equal(lib.resolve('Tool'), 'vendor/Tool', 'the only component named */Tool');
      assert.equal(lib.resolve('other/Repeat'), undefined, 'no jumping between namespaces');
      assert.deepEqual(lib.commandFor('Repeat', 'r'), ['msgflo-participant', '--name', 'r', path.join('participants', 'Repeat.js')]);
      assert.deepEqual(lib.commandFor('Sub', 's').slice(3, 5), ['--graph', 'proj/Sub'], '#COMPONENT is the canonical name');
    });

    it('does not guess between several */Name components', async () => {
      const lib = await loadLibrary({ cwd, config: { components: { 'a/X': 'a', 'b/X': 'b' } }, componentDir: 'nowhere' });
      assert.equal(lib.resolve('X'), undefined);
      assert.throws(() => lib.commandFor('X', 'x'), UnknownComponentError);
    });
  });

  describe('invalid libraries', () => {
    it('reports invalid JSON with line and column', async () => {
      await assert.rejects(loadLibrary({ cwd, file: 'broken.json' }), (err: unknown) => {
        assert.ok(err instanceof LibraryInvalidError);
        assert.equal(err.code, ErrorCodes.LIBRARY_INVALID);
        assert.match(err.message, /broken\.json': invalid JSON at line 5, column 7: unexpected '"', expected ',' or '\}'/);
        return true;
      });
    });

    it('lists every problem of a wrongly shaped config', async () => {
      await assert.rejects(loadLibrary({ cwd, file: 'wrong-shape.json' }), (err: unknown) => {
        assert.ok(err instanceof LibraryInvalidError);
        for (const problem of [
          `"msgflo.namespace" must be a string without spaces or '/'`,
          `"msgflo.components.A" must be a non-empty command string`,
          `"msgflo.handlers" key 'py' must be a file extension like ".py"`,
          `"msgflo.variables.ROLE" clashes with the built-in #ROLE`,
          `"msgflo.variables" name 'bad-name' must be letters, digits and '_'`,
          `component "B": unterminated single quote at character 14`,
        ]) {
          assert.ok(err.message.includes(problem), `missing: ${problem}\nin: ${err.message}`);
        }
        return true;
      });
    });

    it('fails for a library file that was asked for but does not exist', async () => {
      await assert.rejects(loadLibrary({ cwd, file: 'missing.json' }), (err: unknown) => {
        return err instanceof LibraryInvalidError && /missing\.json': cannot read it \(ENOENT\)/.test(err.message);
      });
    });

    it('rejects a library that is not an object', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-lib-'));
      try {
        writeFileSync(path.join(dir, 'package.json'), '[1]');
        await assert.rejects(loadLibrary({ cwd: dir }), /the library must be a JSON object/);
        await assert.rejects(loadLibrary({ cwd: dir, config: { msgflo: 3 } }), /"msgflo" must be an object/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
