/**
 * The process entry of introspection: `node introspect-main.js FILE...` prints, as one JSON line on stdout, what
 * introspectFiles() says about each file, and exits.
 */
import { introspectFiles } from './introspect.js';

introspectFiles(process.argv.slice(2)).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
