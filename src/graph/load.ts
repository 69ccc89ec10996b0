import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GraphNotFoundError } from '../errors.js';
import { parseFbp } from './fbp.js';
import { parseJsonGraph } from './json.js';
import type { Graph } from './types.js';
import { validateGraph } from './validate.js';

export interface LoadGraphOptions {
  /** Run validateGraph on the result (default true). */
  validate?: boolean;
}

/**
 * Parse graph text by file name: `.fbp` → parseFbp, `.json` → parseJsonGraph; any other extension is read as
 * JSON when its first non-blank character is '{', else as .fbp.
 */
export function parseGraph(source: string, file: string): Graph {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.fbp') return parseFbp(source, file);
  if (ext === '.json') return parseJsonGraph(source, file);
  return /^\uFEFF?\s*\{/.test(source) ? parseJsonGraph(source, file) : parseFbp(source, file);
}

/**
 * Read, parse and (by default) validate a graph file. `graph.file` is `file` as given.
 * @throws GraphNotFoundError when the file cannot be read.
 * @throws GraphParseError / GraphInvalidError for a bad graph.
 */
export async function loadGraph(file: string, options: LoadGraphOptions = {}): Promise<Graph> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    throw new GraphNotFoundError(file, { cause: err });
  }
  const graph = parseGraph(source, file);
  if (options.validate ?? true) validateGraph(graph);
  return graph;
}
