/**
 * Seeded generators of malformed input for the bad-input suite. Every spec takes its own stream from one seed
 * (MSGFLO_BADINPUT_SEED, else a random one that is printed), so a failure reproduces with
 * `MSGFLO_BADINPUT_SEED=<seed> npx mocha spec/badinput/...`.
 */

function fromEnv(): number {
  const v = Number(process.env.MSGFLO_BADINPUT_SEED);
  return Number.isInteger(v) && v > 0 ? v >>> 0 : (Math.floor(Math.random() * 0xffffffff) >>> 0) || 1;
}

/** The suite's seed, printed once. */
export const SEED = fromEnv();
let announced = false;
export function announceSeed(): void {
  if (announced) return;
  announced = true;
  process.stdout.write(`      bad-input seed: MSGFLO_BADINPUT_SEED=${SEED}\n`);
}

/** A small seeded PRNG (mulberry32) with the helpers the generators need. */
export class Rng {
  private state: number;
  constructor(seed: number, stream = '') {
    let h = seed >>> 0;
    for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x01000193) >>> 0;
    this.state = h || 1;
  }
  /** 0 <= x < 1 */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
}

/** Pieces that mean something to the .fbp and JSON grammars, and some that mean nothing anywhere. */
const TOKENS = [
  '(', ')', '[', ']', '{', '}', '->', '-', '>', "'", '"', ':', '=', '#', '.', ',', '\n', ' ', '\t', '\\', '/', '*',
  'INPORT=', 'OUTPORT=', 'IN', 'OUT', '(Repeat)', '(Repeat:key=value)', "'42' -> ", ' -> IN ', '[0]', '@name',
  '\u0000', '\uFEFF', '\u2028', 'é', '漢', '😀', '\uD800', 'null', 'true', '1e999', '-0', '"processes"', '"connections"',
  '"src"', '"tgt"', '"data"', '"component"', '"port"', '"process"', ':{', '[]', '{}', 'A'.repeat(300),
];

/** Apply 1–4 random edits (delete, insert a token, duplicate, swap lines, truncate, replace a char) to `text`. */
export function mutateText(rng: Rng, text: string): string {
  let s = text;
  const edits = rng.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(0, s.length);
    switch (rng.int(0, 6)) {
      case 0: // delete a span
        s = s.slice(0, at) + s.slice(at + rng.int(1, 6));
        break;
      case 1: // insert a token
        s = s.slice(0, at) + rng.pick(TOKENS) + s.slice(at);
        break;
      case 2: {
        // duplicate a span
        const len = rng.int(1, 20);
        s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
        break;
      }
      case 3: {
        // swap two lines
        const lines = s.split('\n');
        const i = rng.int(0, lines.length - 1);
        const j = rng.int(0, lines.length - 1);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        s = lines.join('\n');
        break;
      }
      case 4: // truncate
        s = s.slice(0, at);
        break;
      case 5: // replace one character by any code unit
        s = s.slice(0, at) + String.fromCharCode(rng.int(0, 0xffff)) + s.slice(at + 1);
        break;
      default: {
        // replace a word by another word of the text
        const words = s.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
        if (words.length) s = s.replace(rng.pick(words), rng.pick(words));
      }
    }
  }
  return s;
}

/** A random JSON value (nested at most `depth` deep). */
export function randomJson(rng: Rng, depth = 3): unknown {
  const kind = rng.int(0, depth > 0 ? 7 : 4);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53 + 1, rng.int(-1e6, 1e6)]);
    case 3:
      return rng.pick(['', ' ', 'x', 'é漢😀', '\u0000', 'A'.repeat(rng.int(0, 200)), '{"not":"json"}', 'role.IN']);
    case 4:
      return rng.int(-100, 100);
    case 5:
    case 6: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(0, 4); i > 0; i--) {
        const key = rng.pick(['id', 'role', 'x', '__proto__', 'constructor', 'queue', 'n', 'a b', '']);
        // defineProperty: an own "__proto__" key, as JSON.parse would make it.
        Object.defineProperty(o, key, { value: randomJson(rng, depth - 1), enumerable: true, writable: true, configurable: true });
      }
      return o;
    }
    default: {
      const a: unknown[] = [];
      for (let i = rng.int(0, 4); i > 0; i--) a.push(randomJson(rng, depth - 1));
      return a;
    }
  }
}

/** Count how often each key occurs. */
export function tally(keys: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}
