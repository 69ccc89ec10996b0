#!/usr/bin/env node
import { main } from '../dist/cli/trace.js';
import { runMain } from '../dist/cli/io.js';
await runMain(main);
