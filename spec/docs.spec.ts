import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Markdown without fenced code blocks and inline code spans: what a reader sees as links and headings. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** The anchors of a markdown file's headings (a repeated heading gets -1, -2, … as on GitHub). */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Link targets of a markdown text that point into the repository (not http:, mailto:, …). */
function relativeLinks(markdown: string): string[] {
  const out: string[] = [];
  for (const m of prose(markdown).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    out.push(target);
  }
  return out;
}

/** Every relative link of `file` whose file, or whose heading, does not exist: "file: target (why)". */
function brokenLinks(file: string): string[] {
  const markdown = readFileSync(file, 'utf8');
  const problems: string[] = [];
  for (const target of relativeLinks(markdown)) {
    const hash = target.indexOf('#');
    const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = pathPart === '' ? file : path.resolve(path.dirname(file), pathPart);
    const where = `${path.relative(root, file)}: ${target}`;
    if (!existsSync(resolved)) {
      problems.push(`${where} (no such file)`);
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) {
      problems.push(`${where} (an anchor into a file that is not markdown)`);
      continue;
    }
    if (!anchors(readFileSync(resolved, 'utf8')).has(anchor)) problems.push(`${where} (no heading #${anchor})`);
  }
  return problems;
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join(dir, f))
    .sort();
}

/** Everything under src/ (folders with a trailing slash), relative to src/. */
function sourceTree(): string[] {
  const src = path.join(root, 'src');
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .map((f) => (statSync(path.join(src, f)).isDirectory() ? `${f}/` : f))
    .filter((f) => f.endsWith('/') || f.endsWith('.ts'))
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

/** Folders the architecture map describes as a whole (issue 10 splits them into files with the same names). */
const MAPPED_AS_FOLDERS = ['transport/amqp/', 'transport/mqtt/', 'transport/direct/'];

describe('docs', () => {
  const files = [path.join(root, 'README.md'), ...markdownFiles(path.join(root, 'docs'))];

  it('links, in README.md and docs/, only to files and headings that exist', () => {
    assert.ok(files.length > 2, 'README.md and docs/*.md are read');
    const links = files.flatMap((f) => relativeLinks(readFileSync(f, 'utf8')));
    assert.ok(links.length > 50, `the link checker finds the links (${links.length})`);
    assert.deepEqual(files.flatMap(brokenLinks), []);
  });

  it('maps every folder and file under src/ in docs/architecture.md', () => {
    const architecture = path.join(root, 'docs', 'architecture.md');
    const mapped = new Set(
      relativeLinks(readFileSync(architecture, 'utf8'))
        .map((t) => path.resolve(path.dirname(architecture), t.split('#')[0]!))
        .filter((p) => p.startsWith(path.join(root, 'src') + path.sep))
        .map((p) => {
          const rel = path.relative(path.join(root, 'src'), p).split(path.sep).join('/');
          return existsSync(p) && statSync(p).isDirectory() ? `${rel}/` : rel;
        }),
    );
    const unmapped = sourceTree().filter(
      (f) => !mapped.has(f) && !MAPPED_AS_FOLDERS.some((folder) => f !== folder && f.startsWith(folder)),
    );
    assert.deepEqual(unmapped, [], 'add a row for each to the map of src/ in docs/architecture.md');
  });

  it('the link checker reports a missing file, a missing heading, and nothing in code', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-docs-'));
    try {
      writeFileSync(path.join(dir, 'b.md'), '# B\n\n## Known limits (MQTT)\n');
      writeFileSync(
        path.join(dir, 'a.md'),
        [
          '# A',
          '[ok](b.md#known-limits-mqtt) [self](#a) [web](https://example.com/x.md)',
          '[gone](c.md) [no heading](b.md#limits)',
          '`[in code](d.md)`',
          '```',
          '[in a block](e.md)',
          '```',
        ].join('\n'),
      );
      assert.deepEqual(
        brokenLinks(path.join(dir, 'a.md')).map((p) => p.replace(/^.*?: /, '')),
        ['c.md (no such file)', 'b.md#limits (no heading #limits)'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
