import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GpuNodeAgent } from './agent.ts';
import { ChatTemplateError, chatRendererFromSettings, chatTemplateSettingsFromEnv, withRenderedPrompts } from '../dataset/chat-template.ts';
import { createDatasetEvalPrompts } from '../dataset/eval-prompts.ts';
import { demoEvalPrompts } from './demo-prompts.ts';
import { stubVllmCommand, VllmManager } from './vllm-manager.ts';
import { routeChatByModel, routeCompletionByModel } from './executors.ts';
import { artifactStoreFromEnv, ArtifactStoreError, S3ArtifactStore } from '../persistence/artifact-store.ts';

const HELP = `albedo-gpu-node — GPU host agent: dials out to the backend and runs PRE_EVAL / EVAL attempts

Usage: albedo-gpu-node --backend <ws://host:port/rpc> --role <PRE_EVAL|EVAL> [options]

Options:
  --backend URL        backend tRPC WebSocket URL (env ALBEDO_BACKEND_URL)
  --role ROLE          PRE_EVAL or EVAL (env ALBEDO_REMOTE_HOST_ROLE, default EVAL)
  --gpus N             GPUs on this host (env ALBEDO_REMOTE_GPU_COUNT, default 8)
  --max-concurrent N   runs at once (default 1)
  --state-dir DIR      persisted runs (env ALBEDO_REMOTE_STATE_DIR, default /tmp/albedo-remote-state)
  --engine KIND        stub (local deterministic stand-in) or vllm (env ALBEDO_REMOTE_GENERATION_BACKEND, default stub)
  --side-effect-log F  append each attempt key when its work starts (chaos tests)
  --dataset-root DIR   parquet shards root (env ALBEDO_REMOTE_DATASET_ROOT); with --dataset-manifest the
                       eval samples its prompts from the dataset (spec/duel.md §5-§7)
  --dataset-manifest F manifest file (env ALBEDO_EVAL_DATASET_MANIFEST_PATH), pinned by
                       ALBEDO_EVAL_DATASET_MANIFEST_HASH (sha256 of its bytes; required with a dataset)
  --sampling-algo ID   sampler (env ALBEDO_EVAL_SAMPLING_ALGO, default swe-zero-manifest-sample-v1)
  --chat-template P    the canonical genesis chat template (env ALBEDO_CHAT_TEMPLATE_PATH): a
                       chat_template.jinja, a tokenizer_config.json or a tokenizer directory, pinned by
                       ALBEDO_CHAT_TEMPLATE_SHA256 (required with it); the node refuses to start when the
                       template does not match the pin. Without both, prompts use the spec/duel.md §5
                       step 7 fallback (a labelled local stand-in)
  -h, --help           this text

Without a dataset the EVAL role uses a small fixed demo prompt pool (a labelled local stand-in).

Eval artifacts are spooled under --state-dir and, when ALBEDO_REMOTE_UPLOAD_ARTIFACTS is on (default 1)
and ALBEDO_REMOTE_S3_BUCKET / _ACCESS_KEY / _SECRET_KEY (falling back to ALBEDO_S3_*) are set,
uploaded under the run's artifact prefix (ALBEDO_EVAL_ARTIFACT_PREFIX, default s3://albedo-artifacts);
ALBEDO_REMOTE_CLEANUP_LOCAL_ARTIFACTS=1 removes the spool after a successful upload.

The node token is read from ALBEDO_NODE_TOKEN (never from argv, so it does not show in ps).`;

function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/** `ALBEDO_REMOTE_UPLOAD_ARTIFACTS` (spec/config.md): on unless set to a false value. @default true */
function uploadArtifactsEnabled(env: NodeJS.ProcessEnv): boolean {
  const raw = env.ALBEDO_REMOTE_UPLOAD_ARTIFACTS?.trim().toLowerCase();
  return raw === undefined || raw === '' || !['0', 'false', 'no', 'off'].includes(raw);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      role: { type: 'string' },
      gpus: { type: 'string' },
      'max-concurrent': { type: 'string' },
      'state-dir': { type: 'string' },
      engine: { type: 'string' },
      'side-effect-log': { type: 'string' },
      'dataset-root': { type: 'string' },
      'dataset-manifest': { type: 'string' },
      'sampling-algo': { type: 'string' },
      'chat-template': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const backendUrl = values.backend ?? process.env.ALBEDO_BACKEND_URL;
  const token = process.env.ALBEDO_NODE_TOKEN;
  const role = (values.role ?? process.env.ALBEDO_REMOTE_HOST_ROLE ?? 'EVAL').toUpperCase();
  const engineKind = values.engine ?? process.env.ALBEDO_REMOTE_GENERATION_BACKEND ?? 'stub';
  if (!backendUrl || !token || (role !== 'PRE_EVAL' && role !== 'EVAL')) {
    process.stderr.write('albedo-gpu-node: need --backend, ALBEDO_NODE_TOKEN and --role PRE_EVAL|EVAL (see --help)\n');
    process.exit(2);
  }
  if (engineKind !== 'stub') {
    process.stderr.write('albedo-gpu-node: --engine vllm needs the model download and vLLM launch of the GPU-host issue; only the stub engine runs here\n');
    process.exit(2);
  }
  const datasetRoot = values['dataset-root'] ?? process.env.ALBEDO_REMOTE_DATASET_ROOT;
  const manifestPath = values['dataset-manifest'] ?? process.env.ALBEDO_EVAL_DATASET_MANIFEST_PATH;
  const manifestHash = process.env.ALBEDO_EVAL_DATASET_MANIFEST_HASH;
  let evalPrompts: ConstructorParameters<typeof GpuNodeAgent>[0]['evalPrompts'] = demoEvalPrompts;
  if (role === 'EVAL' && datasetRoot && manifestPath) {
    if (!manifestHash) {
      process.stderr.write('albedo-gpu-node: ALBEDO_EVAL_DATASET_MANIFEST_HASH is required with a dataset (the manifest pin)\n');
      process.exit(2);
    }
    evalPrompts = await createDatasetEvalPrompts({ datasetRoot, manifestPath, manifestSha256: manifestHash, algorithm: values['sampling-algo'] ?? process.env.ALBEDO_EVAL_SAMPLING_ALGO });
    process.stderr.write(`[gpu-node] eval prompts: dataset manifest ${manifestPath} (pinned), sampler ${values['sampling-algo'] ?? process.env.ALBEDO_EVAL_SAMPLING_ALGO ?? 'swe-zero-manifest-sample-v1'}\n`);
  } else if (role === 'EVAL') {
    process.stderr.write('[gpu-node] eval prompts: demo pool (LOCAL STAND-IN; pass --dataset-root and --dataset-manifest for the real sampler)\n');
  }
  if (role === 'EVAL') {
    // duel.md §5 step 7: checked before connecting, so a node whose template does not match the pin never takes work.
    let renderer: Awaited<ReturnType<typeof chatRendererFromSettings>>;
    try {
      renderer = await chatRendererFromSettings(chatTemplateSettingsFromEnv(process.env, values['chat-template']));
    } catch (error) {
      if (!(error instanceof ChatTemplateError)) throw error;
      process.stderr.write(`albedo-gpu-node: refusing to start: ${error.message} (${error.code})\n`);
      process.exit(2);
    }
    process.stderr.write(
      renderer.kind === 'pinned'
        ? `[gpu-node] chat template: pinned genesis template sha256 ${renderer.templateSha256}\n`
        : '[gpu-node] chat template: §5 fallback (LOCAL STAND-IN; set --chat-template and ALBEDO_CHAT_TEMPLATE_SHA256 for the genesis template)\n',
    );
    const unrendered = evalPrompts;
    evalPrompts = async (input) => withRenderedPrompts(await unrendered(input), renderer);
  }
  let artifactStore: ReturnType<typeof artifactStoreFromEnv> = null;
  if (role === 'EVAL') {
    try {
      artifactStore = uploadArtifactsEnabled(process.env) ? artifactStoreFromEnv(process.env, { envPrefix: 'ALBEDO_REMOTE_S3_' }) : null;
    } catch (error) {
      if (!(error instanceof ArtifactStoreError)) throw error;
      process.stderr.write(`albedo-gpu-node: refusing to start: artifact store: ${error.message} (${error.code})\n`);
      process.exit(2);
    }
    process.stderr.write(
      artifactStore
        ? `[gpu-node] eval artifacts: uploaded to ${artifactStore instanceof S3ArtifactStore ? `s3://${artifactStore.bucket}` : `the ${artifactStore.kind} store`} (spool ${envFlag(process.env.ALBEDO_REMOTE_CLEANUP_LOCAL_ARTIFACTS) ? 'removed' : 'kept'} after upload)\n`
        : `[gpu-node] eval artifacts: local spool only (${uploadArtifactsEnabled(process.env) ? 'no ALBEDO_REMOTE_S3_* / ALBEDO_S3_* bucket and keys set' : 'ALBEDO_REMOTE_UPLOAD_ARTIFACTS=0'}); verdicts list file:// URIs\n`,
    );
  }
  const agent = new GpuNodeAgent({
    backendUrl,
    token,
    role,
    gpuCount: Number(values.gpus ?? process.env.ALBEDO_REMOTE_GPU_COUNT ?? 8),
    maxConcurrent: Number(values['max-concurrent'] ?? 1),
    stateDir: values['state-dir'] ?? process.env.ALBEDO_REMOTE_STATE_DIR ?? join('/tmp', 'albedo-remote-state'),
    sideEffectLog: values['side-effect-log'],
    evalPrompts,
    artifactStore,
    cleanupLocalArtifacts: envFlag(process.env.ALBEDO_REMOTE_CLEANUP_LOCAL_ARTIFACTS),
    log: (l) => process.stderr.write(`[gpu-node] ${l}\n`),
    startEngine: async (models, signal) => {
      // One engine per side, as on a real 8-GPU host (king on 0-3, challenger on 4-7).
      const managers = models.map((m) => new VllmManager({ command: stubVllmCommand({ models: [m] }), startupTimeoutMs: 60_000, pollIntervalMs: 100 }));
      await Promise.all(managers.map((m) => m.start(signal)));
      const chat = routeChatByModel(Object.fromEntries(models.map((m, i) => [m, managers[i]!.chat])));
      const complete = routeCompletionByModel(Object.fromEntries(models.map((m, i) => [m, managers[i]!.complete])));
      return { chat, complete, stop: async () => void (await Promise.all(managers.map((m) => m.stop()))) };
    },
  });
  await agent.start();
  process.stdout.write(`READY gpu-node role=${role}\n`);
  const shutdown = () => void agent.stop().then(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((e) => {
  process.stderr.write(`albedo-gpu-node: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
