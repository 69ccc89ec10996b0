/** Typings for the parts of npm `fbp` (1.8, plain CommonJS, no bundled types) that graph/ uses. */
declare module 'fbp' {
  export interface FbpPortRef {
    process: string;
    port: string;
    index?: number;
  }
  export interface FbpConnection {
    src?: FbpPortRef;
    data?: unknown;
    tgt: FbpPortRef;
    metadata?: Record<string, unknown>;
  }
  export interface FbpGraphJson {
    caseSensitive: boolean;
    properties?: Record<string, unknown>;
    processes: Record<string, { component?: string; metadata?: Record<string, unknown> }>;
    connections: FbpConnection[];
    inports: Record<string, { process: string; port: string }>;
    outports: Record<string, { process: string; port: string }>;
    groups: unknown[];
  }
  export interface FbpParseOptions {
    /** false (the default, and what msgflo used): port names are lower-cased. */
    caseSensitive?: boolean;
    /** Default true: throws a plain Error for dangling references. */
    validateContents?: boolean;
    validateSchema?: boolean;
  }
  export interface FbpLocation {
    start: { offset: number; line: number; column: number };
    end: { offset: number; line: number; column: number };
  }
  export class SyntaxError extends Error {
    location: FbpLocation;
    expected: unknown;
    found: string | null;
  }
  export function parse(source: string, options?: FbpParseOptions): FbpGraphJson;
  export function serialize(graph: unknown): string;
  const fbp: { parse: typeof parse; serialize: typeof serialize; SyntaxError: typeof SyntaxError };
  export default fbp;
}
