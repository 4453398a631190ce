#!/usr/bin/env node
// The `albedo` miner CLI. Runs the TypeScript entry through tsx (a runtime dependency), so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../miner/cli.ts');
await main();
