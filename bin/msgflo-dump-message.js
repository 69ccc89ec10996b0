#!/usr/bin/env node
import { main } from '../dist/cli/dump.js';
import { runMain } from '../dist/cli/io.js';
await runMain(main);
