/**
 * Every component the runtime can tell a client about (component:list): the library's (its own files, its
 * config, the built-in core/Repeat and core/Drop), the routing nodes msgflo/RoundRobin and msgflo/PubSub, and
 * every component a participant announced on the broker.
 *
 * Ports come from what a participant announced, else — for JavaScript/TypeScript participant files — from the
 * definition the file exports, read in a child process (so module code never runs in the runtime), else they
 * are unknown (a Python participant the broker has not seen yet).
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ComponentLibrary } from '../coordinator/library.js';
import { ROUTING_COMPONENTS } from '../graph/types.js';
import type { ParticipantInfo, PortDefinition } from '../protocol/discovery.js';
import { settingsEnv } from '../settings.js';
import { logger } from '../util/logger.js';
import type { IntrospectResult } from './introspect.js';

const log = logger('runtime');

/** A port as component:component and runtime:ports describe it. */
export interface ProtocolPort {
  id: string;
  type: string;
  description?: string;
  required?: boolean;
  addressable?: boolean;
}

/** The payload of component:component. */
export interface ComponentDescription {
  name: string;
  description?: string;
  icon?: string;
  subgraph: boolean;
  inPorts: ProtocolPort[];
  outPorts: ProtocolPort[];
}

/** Where a component's description comes from. */
export type ComponentSource = 'library' | 'routing' | 'discovered';

export interface CatalogEntry {
  description: ComponentDescription;
  source: ComponentSource;
  /** Whether its ports are known (from an announcement, the participant file, or built in). */
  portsKnown: boolean;
}

const ROUTING: Record<(typeof ROUTING_COMPONENTS)[number], ComponentDescription> = {
  'msgflo/RoundRobin': {
    name: 'msgflo/RoundRobin',
    description: 'Routing node: the instances of each target role share the work; what they refuse goes to deadletter',
    icon: 'random',
    subgraph: false,
    inPorts: [{ id: 'in', type: 'any', required: false, addressable: false }],
    outPorts: [
      { id: 'out', type: 'any', required: false, addressable: false },
      { id: 'deadletter', type: 'any', required: false, addressable: false },
    ],
  },
  'msgflo/PubSub': {
    name: 'msgflo/PubSub',
    description: 'Routing node: every target role gets a copy',
    icon: 'share-alt',
    subgraph: false,
    inPorts: [{ id: 'in', type: 'any', required: false, addressable: false }],
    outPorts: [{ id: 'out', type: 'any', required: false, addressable: false }],
  },
};

/** A discovery port as a protocol port (a port's JSON schema object has no place there: the protocol wants a URI). */
function protocolPort(p: PortDefinition): ProtocolPort {
  const out: ProtocolPort = { id: p.id, type: typeof p.type === 'string' && p.type ? p.type : 'any', required: false, addressable: false };
  if (typeof p.description === 'string' && p.description) out.description = p.description;
  return out;
}

export function describeParticipant(name: string, info: Pick<ParticipantInfo, 'label' | 'icon' | 'inports' | 'outports'>): ComponentDescription {
  const d: ComponentDescription = {
    name,
    subgraph: false,
    inPorts: (info.inports ?? []).filter((p) => p && typeof p.id === 'string').map(protocolPort),
    outPorts: (info.outports ?? []).filter((p) => p && typeof p.id === 'string').map(protocolPort),
  };
  if (typeof info.label === 'string' && info.label) d.description = info.label;
  if (typeof info.icon === 'string' && info.icon) d.icon = info.icon;
  return d;
}

/** The introspection script next to this module (.ts when running from source under tsx, .js when built). */
function introspectCommand(files: string[]): [string, string[]] {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const script = path.join(path.dirname(here), `introspect-main${ext}`);
  const args = ext === '.ts' ? ['--import', import.meta.resolve('tsx'), script, ...files] : [script, ...files];
  return [process.execPath, args];
}

function runIntrospection(files: string[], timeoutMs: number): Promise<IntrospectResult> {
  const [cmd, args] = introspectCommand(files);
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...settingsEnv({ broker: null }) } }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as IntrospectResult);
      } catch {
        log('introspecting participant files failed: %s', err?.message ?? 'no output');
        resolve({});
      }
    });
  });
}

export interface CatalogOptions {
  library: ComponentLibrary;
  /** Read JavaScript/TypeScript participant files for their ports (default true). */
  introspect?: boolean;
  introspectTimeoutMs?: number;
}

export class ComponentCatalog {
  readonly library: ComponentLibrary;
  private readonly introspect: boolean;
  private readonly timeoutMs: number;
  /** Announced components by name: the last announcement wins. */
  private readonly discovered = new Map<string, ComponentDescription>();
  /** Introspected library files: key (file + mtime) → result. */
  private fileInfo = new Map<string, ComponentDescription | null>();
  private fileKey = '';
  private loading: Promise<void> | undefined;

  constructor(options: CatalogOptions) {
    this.library = options.library;
    this.introspect = options.introspect ?? true;
    this.timeoutMs = options.introspectTimeoutMs ?? 20_000;
  }

  /** Participant files that can be read for their ports (handled by msgflo-participant). */
  private readableFiles(): Array<{ name: string; file: string }> {
    const out: Array<{ name: string; file: string }> = [];
    for (const name of this.library.components()) {
      const c = this.library.get(name)!;
      if (!c.file || (c.language !== 'javascript' && c.language !== 'typescript')) continue;
      if (!/^msgflo-participant(\s|$)/.test(c.template.trim())) continue;
      out.push({ name, file: path.resolve(this.library.cwd, c.file) });
    }
    return out;
  }

  /** (Re)read participant files that are new or changed since last time. Never rejects. */
  refresh(): Promise<void> {
    if (!this.introspect) return Promise.resolve();
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    const files = this.readableFiles();
    const stamps = await Promise.all(files.map(async (f) => `${f.file}@${(await stat(f.file).catch(() => undefined))?.mtimeMs ?? 0}`));
    const key = stamps.join('|');
    if (key === this.fileKey) return;
    const result = files.length ? await runIntrospection(files.map((f) => f.file), this.timeoutMs) : {};
    const info = new Map<string, ComponentDescription | null>();
    for (const f of files) {
      const r = result[f.file];
      if (r?.info) info.set(f.name, describeParticipant(f.name, r.info as ParticipantInfo));
      else {
        if (r?.error) log('cannot read the ports of %s (%s): %s', f.name, f.file, r.error);
        info.set(f.name, null);
      }
    }
    this.fileInfo = info;
    this.fileKey = key;
  }

  /**
   * Record an announced participant. Returns its component's description when it is new or changed (to tell
   * clients), else undefined.
   */
  noteDiscovered(info: ParticipantInfo): ComponentDescription | undefined {
    const d = describeParticipant(info.component, info);
    const before = this.discovered.get(info.component);
    if (before && JSON.stringify(before) === JSON.stringify(d)) return undefined;
    this.discovered.set(info.component, d);
    return d;
  }

  /** Whether `name` is a component the runtime knows (library, routing node, or announced). */
  has(name: string): boolean {
    return this.library.has(name) || (ROUTING_COMPONENTS as readonly string[]).includes(name) || this.discovered.has(name);
  }

  /** Every known component, sorted by name (reads participant files first when needed). */
  async list(): Promise<CatalogEntry[]> {
    await this.refresh();
    const out = new Map<string, CatalogEntry>();
    for (const name of this.library.components()) out.set(name, this.entryNow(name)!);
    for (const name of ROUTING_COMPONENTS) out.set(name, { description: ROUTING[name], source: 'routing', portsKnown: true });
    // Announced components are listed by the name they announce (a library component of that exact name is one).
    for (const [name, description] of this.discovered) if (!out.has(name)) out.set(name, { description, source: 'discovered', portsKnown: true });
    return [...out.values()].sort((a, b) => a.description.name.localeCompare(b.description.name));
  }

  /**
   * What is known about a component now (without reading files): a routing node; a library component of that
   * exact name; a component announced under that name; a library component the name resolves to (`Repeat` →
   * `core/Repeat`).
   */
  entryNow(name: string): CatalogEntry | undefined {
    if ((ROUTING_COMPONENTS as readonly string[]).includes(name)) {
      return { description: ROUTING[name as keyof typeof ROUTING], source: 'routing', portsKnown: true };
    }
    const key = this.library.resolve(name);
    const announced = this.discovered.get(name);
    if (key === undefined || (key !== name && announced)) {
      return announced ? { description: announced, source: 'discovered', portsKnown: true } : undefined;
    }
    const ports = this.discovered.get(key) ?? this.fileInfo.get(key) ?? undefined;
    const description: ComponentDescription = ports ? { ...ports, name: key } : { name: key, subgraph: false, inPorts: [], outPorts: [] };
    const file = this.library.get(key)!.file;
    if (!ports && file) description.description = `runs ${file}`;
    return { description, source: 'library', portsKnown: ports !== undefined };
  }

  /** What is known about a component, reading participant files first when needed. */
  async entry(name: string): Promise<CatalogEntry | undefined> {
    await this.refresh();
    return this.entryNow(name);
  }
}
