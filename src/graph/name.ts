import path from 'node:path';

/** A graph's name when it declares none: the file's base name without extension, else 'main'. */
export function defaultGraphName(file: string | undefined): string {
  if (!file) return 'main';
  const base = path.basename(file, path.extname(file));
  return base || 'main';
}
