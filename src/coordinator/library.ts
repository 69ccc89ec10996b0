/**
 * The component library (msgflo's `src/library.coffee`, reference §2.6): which command runs a component.
 *
 * Config comes from a JSON file (default `<cwd>/package.json`), at its top level or under a `msgflo` key:
 * ```json
 * { "msgflo": {
 *     "components": { "Repeat": "msgflo-participant --name #ROLE participants/Repeat.js" },
 *     "handlers":   { ".rb": "ruby #FILENAME #ROLE" },
 *     "variables":  { "PY": "python3 -u" },
 *     "namespace":  "myproject",
 *     "repository": "https://github.com/me/myproject" } }
 * ```
 * Every file of the component directory (default `participants/`) whose extension has a handler is a component
 * named after the file (`namespace/` prefixed when a namespace is set).
 *
 * Differences from msgflo, on purpose:
 * - the namespace defaults to '' and not to the package name (the default that crashed discovery, §2.6);
 * - lookup accepts `ns/Name` for `Name` and `Name` for `ns/Name`;
 * - commands are argv arrays: the template is split into words first (like a POSIX shell, no shell runs), then
 *   #ROLE, #FILENAME, #COMPONENT, #COMPONENTNAME and #IIPS are put into the words, so a value with spaces
 *   (#IIPS JSON) stays one argument. User #VARIABLES are part of the template: they are expanded before
 *   splitting, so a variable may hold several words (`"PY": "python3 -u"`), as with msgflo.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LibraryInvalidError, UnknownComponentError } from '../errors.js';
import { locateJsonError } from '../graph/index.js';
import { logger } from '../util/logger.js';
import { CommandSyntaxError, splitCommand } from './command.js';

const log = logger('library');

/** Handlers for participant files, by extension. A library's `handlers` override these (null removes one). */
export const DEFAULT_HANDLERS: Readonly<Record<string, string>> = Object.freeze({
  '.js': 'msgflo-participant --name #ROLE #FILENAME',
  '.mjs': 'msgflo-participant --name #ROLE #FILENAME',
  '.ts': 'msgflo-participant --name #ROLE #FILENAME',
  '.coffee': 'msgflo-nodejs --name #ROLE #FILENAME',
  '.py': 'msgflo-python #FILENAME #ROLE',
  '.yml': 'msgflo-register --role #ROLE:#FILENAME',
  '.yaml': 'msgflo-register --role #ROLE:#FILENAME',
  '.json': 'noflo-runtime-msgflo --name #ROLE --graph #COMPONENT --iips #IIPS',
  '.fbp': 'noflo-runtime-msgflo --name #ROLE --graph #COMPONENT --iips #IIPS',
});

/** This package's own participants/ folder (resolved from this module, whatever the cwd). */
export const BUILTIN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../participants');

/** Built-in components (the FBP runtime protocol's test suite needs them): name → file in BUILTIN_DIR. */
export const BUILTIN_COMPONENTS: Readonly<Record<string, string>> = Object.freeze({
  'core/Repeat': 'Repeat.js',
  'core/Drop': 'Drop.js',
});

/** Language of a participant file by extension (for component:getsource / component:source). */
export const LANGUAGES: Readonly<Record<string, string>> = Object.freeze({
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.ts': 'typescript',
  '.coffee': 'coffeescript',
  '.py': 'python',
  '.yml': 'yaml',
  '.yaml': 'yaml',
  '.json': 'json',
  '.fbp': 'fbp',
  '.cpp': 'c++',
  '.rs': 'rust',
});

/** Markers filled in per command. */
const BUILTIN_MARKERS = ['COMPONENTNAME', 'COMPONENT', 'FILENAME', 'ROLE', 'IIPS'] as const;
const BUILTIN_RE = new RegExp(`#(${BUILTIN_MARKERS.join('|')})`, 'g');
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface LibraryOptions {
  /** Directory that relative paths (file, componentDir) and #FILENAME are relative to. */
  cwd: string;
  /** Library JSON file; default `<cwd>/package.json`, where a missing file means an empty library config. */
  file?: string;
  /** Directory of participant files; default 'participants'. A missing directory gives no file components. */
  componentDir?: string;
  /** The config object itself instead of a file (e.g. for the runtime or tests). */
  config?: unknown;
  /**
   * Also know the built-in components (BUILTIN_COMPONENTS: `core/Repeat`, `core/Drop`), run from this package's
   * participants/ folder. A library component or file of the same name wins. Default false.
   */
  builtins?: boolean;
}

export interface ComponentInfo {
  /** Canonical name (namespaced for file components when a namespace is set). */
  name: string;
  /** The command template as configured (variables not yet expanded). */
  template: string;
  /** Where it came from: the library's `components`, a file of the component directory, or built in. */
  origin: 'config' | 'file' | 'builtin';
  /** File and built-in components: path relative to cwd (what #FILENAME becomes). */
  file?: string;
  /** File components: language by extension (see LANGUAGES), when known. */
  language?: string;
}

interface Entry extends ComponentInfo {
  /** The template with user variables expanded, split into words (built-in markers still in them). */
  words: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** After the last '/': `ns/Repeat` → `Repeat`. */
function baseName(component: string): string {
  return component.slice(component.lastIndexOf('/') + 1);
}

export class ComponentLibrary {
  /** The library file read, or undefined (default file missing, or inline config). */
  readonly file: string | undefined;
  readonly cwd: string;
  /** Absolute component directory. */
  readonly componentDir: string;
  readonly namespace: string;
  readonly repository: string | undefined;
  /** Handlers in effect (defaults merged with the library's). */
  readonly handlers: Readonly<Record<string, string>>;
  readonly variables: Readonly<Record<string, string>>;
  readonly #entries: Map<string, Entry>;

  /** @internal use loadLibrary() */
  constructor(init: {
    file: string | undefined;
    cwd: string;
    componentDir: string;
    namespace: string;
    repository: string | undefined;
    handlers: Record<string, string>;
    variables: Record<string, string>;
    entries: Map<string, Entry>;
  }) {
    this.file = init.file;
    this.cwd = init.cwd;
    this.componentDir = init.componentDir;
    this.namespace = init.namespace;
    this.repository = init.repository;
    this.handlers = Object.freeze({ ...init.handlers });
    this.variables = Object.freeze({ ...init.variables });
    this.#entries = init.entries;
  }

  /** Canonical names of all components, sorted. */
  components(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Whether `name` resolves to a component (see resolve). */
  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }

  /**
   * The canonical name `name` refers to, or undefined. Tried in order: the exact name; for `x/Name`, the
   * un-namespaced `Name`; for `Name`, `<namespace>/Name`, then the only component whose name ends in `/Name`.
   */
  resolve(name: string): string | undefined {
    if (this.#entries.has(name)) return name;
    if (name.includes('/')) {
      const bare = baseName(name);
      return bare && this.#entries.has(bare) ? bare : undefined;
    }
    if (this.namespace && this.#entries.has(`${this.namespace}/${name}`)) return `${this.namespace}/${name}`;
    const matches = [...this.#entries.keys()].filter((k) => k.includes('/') && baseName(k) === name);
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** What the library knows about a component (resolved like `resolve`). */
  get(name: string): ComponentInfo | undefined {
    const key = this.resolve(name);
    if (key === undefined) return undefined;
    const { words: _words, ...info } = this.#entries.get(key)!;
    return info;
  }

  /**
   * The command that runs `component` as `role`, as an argv array for spawn() (no shell).
   * @param iips the role's IIPs for #IIPS, `{port: data}` as msgflo passed them (see graph's iipsForRole).
   * @throws UnknownComponentError listing the known components.
   * @example lib.commandFor('Repeat', 'repeater') // ['msgflo-participant', '--name', 'repeater', 'participants/Repeat.js']
   */
  commandFor(component: string, role: string, iips: Record<string, unknown> | unknown[] = {}): string[] {
    const key = this.resolve(component);
    if (key === undefined) throw new UnknownComponentError(component, role, this.components());
    const entry = this.#entries.get(key)!;
    const values: Record<(typeof BUILTIN_MARKERS)[number], string | undefined> = {
      ROLE: role,
      FILENAME: entry.file,
      COMPONENT: key,
      COMPONENTNAME: baseName(key),
      IIPS: JSON.stringify(iips ?? {}),
    };
    // A marker without a value (#FILENAME of a config component) stays as written, like msgflo.
    return entry.words.map((w) => w.replace(BUILTIN_RE, (m, name: keyof typeof values) => values[name] ?? m));
  }
}

/** Read and parse the library JSON; undefined when the default file does not exist. */
async function readConfig(file: string, explicit: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') {
      log('no library file %s: defaults only', file);
      return undefined;
    }
    throw new LibraryInvalidError(file, `cannot read it (${code ?? (err as Error).message})`, { cause: err });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch (err) {
    const loc = locateJsonError(text);
    const where = loc ? ` at line ${loc.line}, column ${loc.column}: ${loc.detail}` : `: ${(err as Error).message}`;
    throw new LibraryInvalidError(file, `invalid JSON${where}`, { cause: err });
  }
}

interface NormalConfig {
  components: Record<string, string>;
  handlers: Record<string, string>;
  variables: Record<string, string>;
  namespace: string;
  repository: string | undefined;
}

/** Check and normalise a library config (top level or under `msgflo`), collecting every problem. */
function normalizeConfig(raw: unknown, problems: string[]): NormalConfig {
  const out: NormalConfig = { components: {}, handlers: { ...DEFAULT_HANDLERS }, variables: {}, namespace: '', repository: undefined };
  if (raw === undefined) return out;
  if (!isObject(raw)) {
    problems.push('the library must be a JSON object');
    return out;
  }
  let section: Record<string, unknown> = raw;
  let prefix = '';
  if ('msgflo' in raw) {
    if (!isObject(raw.msgflo)) problems.push('"msgflo" must be an object');
    else {
      section = raw.msgflo;
      prefix = 'msgflo.';
    }
  }

  const repo = (v: unknown, key: string): string | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (isObject(v) && typeof v.url === 'string') return v.url; // package.json {type, url}
    problems.push(`"${key}" must be a string or {"url": string}`);
    return undefined;
  };
  out.repository = repo(section.repository, `${prefix}repository`) ?? (section !== raw ? repo(raw.repository, 'repository') : undefined);

  if (section.namespace !== undefined && section.namespace !== null) {
    if (typeof section.namespace !== 'string' || /[\s/]/.test(section.namespace)) {
      problems.push(`"${prefix}namespace" must be a string without spaces or '/'`);
    } else out.namespace = section.namespace;
  }

  const stringMap = (key: string, each: (k: string, v: unknown) => void) => {
    const v = section[key];
    if (v === undefined || v === null) return;
    if (!isObject(v)) {
      problems.push(`"${prefix}${key}" must be an object`);
      return;
    }
    for (const [k, val] of Object.entries(v)) each(k, val);
  };
  stringMap('components', (name, cmd) => {
    if (name === '') problems.push(`"${prefix}components" has an empty component name`);
    else if (typeof cmd !== 'string' || cmd.trim() === '') problems.push(`"${prefix}components.${name}" must be a non-empty command string`);
    else out.components[name] = cmd;
  });
  stringMap('handlers', (ext, cmd) => {
    if (!/^\.[^./\\\s]+$/.test(ext)) problems.push(`"${prefix}handlers" key '${ext}' must be a file extension like ".py"`);
    else if (cmd === null) delete out.handlers[ext];
    else if (typeof cmd !== 'string' || cmd.trim() === '') problems.push(`"${prefix}handlers.${ext}" must be a non-empty command string or null`);
    else out.handlers[ext] = cmd;
  });
  stringMap('variables', (name, value) => {
    if (!VARIABLE_NAME.test(name)) problems.push(`"${prefix}variables" name '${name}' must be letters, digits and '_'`);
    else if ((BUILTIN_MARKERS as readonly string[]).includes(name.toUpperCase())) {
      problems.push(`"${prefix}variables.${name}" clashes with the built-in #${name.toUpperCase()}`);
    } else if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      problems.push(`"${prefix}variables.${name}" must be a string, number or boolean`);
    } else out.variables[name.toUpperCase()] = String(value);
  });
  return out;
}

/** Expand user #VARIABLES in a template (longest name wins; built-in markers are left for commandFor). */
function expandVariables(template: string, variables: Record<string, string>): string {
  const names = Object.keys(variables);
  if (names.length === 0) return template;
  const all = [...names, ...BUILTIN_MARKERS].sort((a, b) => b.length - a.length);
  const re = new RegExp(`#(${all.join('|')})`, 'g');
  return template.replace(re, (m, name: string) => variables[name] ?? m);
}

/** Participant files of the component directory (sorted), [] when it does not exist. */
async function componentFiles(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      log('no component directory %s', dir);
      return [];
    }
    throw err;
  }
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || e.name.endsWith('.d.ts')) continue;
    if (e.isFile()) files.push(e.name);
    else if (e.isSymbolicLink()) {
      const s = await stat(path.join(dir, e.name)).catch(() => undefined);
      if (s?.isFile()) files.push(e.name);
    }
  }
  return files.sort();
}

/**
 * Load the component library (see the module comment for the format).
 * @throws LibraryInvalidError for an unreadable given file, invalid JSON (with line and column), a wrong config
 *   shape or a template with an unterminated quote, listing every problem.
 */
export async function loadLibrary(options: LibraryOptions): Promise<ComponentLibrary> {
  const cwd = path.resolve(options.cwd);
  const explicit = options.file !== undefined;
  const file = path.resolve(cwd, options.file ?? 'package.json');
  const componentDir = path.resolve(cwd, options.componentDir ?? 'participants');
  const label = options.config !== undefined ? '<inline config>' : file;

  const raw = options.config !== undefined ? options.config : await readConfig(file, explicit);
  const problems: string[] = [];
  const config = normalizeConfig(raw, problems);

  const entries = new Map<string, Entry>();
  const words = (template: string, where: string): string[] => {
    try {
      return splitCommand(expandVariables(template, config.variables));
    } catch (err) {
      if (!(err instanceof CommandSyntaxError)) throw err;
      problems.push(`${where}: ${err.message}`);
      return [];
    }
  };

  // Every template is checked, used or not.
  const handlerWords = new Map(Object.entries(config.handlers).map(([ext, t]) => [ext, words(t, `handler "${ext}"`)]));
  for (const name of await componentFiles(componentDir)) {
    const ext = path.extname(name);
    const template = config.handlers[ext];
    if (template === undefined) continue;
    const base = path.basename(name, ext);
    const component = config.namespace ? `${config.namespace}/${base}` : base;
    if (entries.has(component)) {
      log('component %s: %s ignored, %s came first', component, name, entries.get(component)!.file);
      continue;
    }
    const entry: Entry = {
      name: component,
      template,
      origin: 'file',
      file: path.relative(cwd, path.join(componentDir, name)),
      words: handlerWords.get(ext)!,
    };
    const language = LANGUAGES[ext];
    if (language) entry.language = language;
    entries.set(component, entry);
  }
  // Library components win over files of the same name.
  for (const [name, template] of Object.entries(config.components)) {
    entries.set(name, { name, template, origin: 'config', words: words(template, `component "${name}"`) });
  }
  if (options.builtins) {
    for (const [name, file] of Object.entries(BUILTIN_COMPONENTS)) {
      if (entries.has(name)) continue;
      const template = DEFAULT_HANDLERS['.js']!;
      const full = path.join(BUILTIN_DIR, file);
      entries.set(name, { name, template, origin: 'builtin', file: path.relative(cwd, full) || full, language: 'javascript', words: splitCommand(template) });
    }
  }
  if (problems.length) throw new LibraryInvalidError(label, problems.join('; '));

  return new ComponentLibrary({
    file: options.config !== undefined || raw === undefined ? undefined : file,
    cwd,
    componentDir,
    namespace: config.namespace,
    repository: config.repository,
    handlers: config.handlers,
    variables: config.variables,
    entries,
  });
}
