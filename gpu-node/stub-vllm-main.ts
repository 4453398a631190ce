/**
 * CLI for the LOCAL vLLM STAND-IN (see stub-vllm.ts), so VllmManager can launch it as a real child
 * process exactly like `python3 -m vllm.entrypoints.openai.api_server`.
 *
 *   node --import tsx gpu-node/stub-vllm-main.ts --models a,b [--api-key-env VAR] [--host H] [--port N] [--latency-ms N]
 *
 * Prints exactly one line `READY <url>` on stdout once listening. The API key is read from the named
 * environment variable (never from argv, which other users can read via `ps`).
 */
import { parseArgs } from 'node:util';
import { startStubVllm } from './stub-vllm.ts';

function fail(message: string): never {
  process.stderr.write(`stub-vllm: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    'api-key-env': { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'latency-ms': { type: 'string', default: '0' },
  },
  strict: true,
});

const models = (values.models ?? '').split(',').map((m) => m.trim()).filter(Boolean);
if (models.length === 0) fail('--models a,b is required');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be an integer in 0..65535');
const latencyMs = Number(values['latency-ms']);
if (!Number.isFinite(latencyMs) || latencyMs < 0) fail('--latency-ms must be a non-negative number');
let apiKey: string | undefined;
if (values['api-key-env']) {
  apiKey = process.env[values['api-key-env']];
  if (!apiKey) fail(`environment variable ${values['api-key-env']} is empty or unset`);
}

const stub = await startStubVllm({ host: values.host, port, servedModels: models, latencyMs, ...(apiKey ? { apiKey } : {}) });
process.stdout.write(`READY ${stub.url}\n`);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  stub.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
