/**
 * §5 step 7 chat-template rendering: a Qwen3-style template (tests/fixtures/chat-template/qwen3-style.jinja,
 * a reconstruction of the original's structure) against expected strings produced by Python Jinja2
 * configured as transformers configures it (gen_expected.py), the synthetic demo template against the
 * fallback, the sha256 pin, the tokenizer_config.json source forms, hostile templates, and a GPU node
 * that refuses to start with a template that does not match its pin.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval, type ChatFn } from '../gpu-node/executors.ts';
import type { JudgeDuelRequest, JudgeGateway } from '../judge/types.ts';
import { createSyntheticModel } from '../validation/synthetic-model.ts';
import {
  ChatTemplateError,
  type ChatTemplateErrorCode,
  chatRendererFromSettings,
  chatTemplateSettingsFromEnv,
  compilePinnedChatTemplate,
  FALLBACK_CHAT_RENDERER,
  loadPinnedChatTemplate,
  MAX_RENDER_STEPS,
  withRenderedPrompts,
} from './chat-template.ts';
import { type ChatMessage, renderFallbackChatTemplate } from './samples.ts';

const FIXTURES = new URL('../tests/fixtures/chat-template/', import.meta.url);
const QWEN3_TEMPLATE = readFileSync(new URL('qwen3-style.jinja', FIXTURES), 'utf8');
interface ExpectedCase {
  readonly name: string;
  readonly messages: ChatMessage[];
  readonly rendered: string;
}
const EXPECTED = JSON.parse(readFileSync(new URL('expected.json', FIXTURES), 'utf8')) as {
  qwen3: ExpectedCase[];
  synthetic: ExpectedCase[];
  special_tokens: { template: string; rendered: string };
};

const sha = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');
const pinned = (template: string, options: Parameters<typeof compilePinnedChatTemplate>[2] = {}) => compilePinnedChatTemplate(template, sha(template), options);

/** Runs `fn` and returns the ChatTemplateError code it threw (fails the test on anything else). */
async function failureCode(fn: () => unknown): Promise<ChatTemplateErrorCode> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ChatTemplateError);
    return (error as ChatTemplateError).code;
  }
  throw new Error('expected a ChatTemplateError');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'albedo-chat-template-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Qwen3-style template (§5 step 7)', () => {
  const template = pinned(QWEN3_TEMPLATE, { source: 'qwen3-style.jinja' });

  it('renders the exact strings Python Jinja2 renders, compiled once for every conversation', () => {
    expect(EXPECTED.qwen3.length).toBeGreaterThanOrEqual(6);
    for (const c of EXPECTED.qwen3) expect(template.render(c.messages), c.name).toBe(c.rendered);
  });

  it('ends with the bare generation prompt (enable_thinking=true adds no empty think block)', () => {
    expect(template.render([{ role: 'user', content: 'Fix the failing test in parser.py.' }])).toBe('<|im_start|>user\nFix the failing test in parser.py.<|im_end|>\n<|im_start|>assistant\n');
  });

  it('strips the reasoning of assistant turns before the last user query', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'List the files.' },
      { role: 'assistant', content: '<think>\nI should run ls.\n</think>\n\nRun `ls -la`.' },
      { role: 'user', content: 'Now open setup.py.' },
    ];
    expect(template.render(messages)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nList the files.<|im_end|>\n<|im_start|>assistant\nRun `ls -la`.<|im_end|>\n' +
        '<|im_start|>user\nNow open setup.py.<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('keeps a think block for an assistant turn after the last query that ends the conversation', () => {
    expect(template.render([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }])).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('records the template sha256 and is immutable', () => {
    expect(template.templateSha256).toBe(sha(QWEN3_TEMPLATE));
    expect(template.kind).toBe('pinned');
    expect(Object.isFrozen(template)).toBe(true);
  });

  it('spends fewer than 150 steps per message, far inside the default budget', () => {
    const turns: ChatMessage[] = Array.from({ length: 400 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `turn ${i} <think>r</think>a` }));
    expect(() => pinned(QWEN3_TEMPLATE, { limits: { maxRenderSteps: 150 * turns.length } }).render(turns)).not.toThrow();
    expect(() => pinned(QWEN3_TEMPLATE, { limits: { maxRenderSteps: 20 * turns.length } }).render(turns)).toThrow(/exceeded/);
    expect(MAX_RENDER_STEPS / 150).toBeGreaterThan(6_000);
  });
});

describe('the synthetic demo model template', () => {
  let modelDir: string;
  beforeAll(async () => {
    modelDir = join(dir, 'synthetic-model');
    await createSyntheticModel(modelDir, { shards: 1 });
  });

  it('renders exactly the fallback for plain turns, from the .jinja file, tokenizer_config.json and the directory', async () => {
    const templateSha = sha(readFileSync(join(modelDir, 'chat_template.jinja')));
    for (const source of [join(modelDir, 'chat_template.jinja'), join(modelDir, 'tokenizer_config.json'), modelDir]) {
      const template = await loadPinnedChatTemplate(source, templateSha);
      expect(template.templateSha256).toBe(templateSha);
      // Special tokens come from tokenizer_config.json, also beside a .jinja source.
      expect(template.specialTokens).toEqual({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
      for (const c of EXPECTED.synthetic) {
        expect(template.render(c.messages), c.name).toBe(c.rendered);
        expect(template.render(c.messages), c.name).toBe(renderFallbackChatTemplate(c.messages));
        expect(FALLBACK_CHAT_RENDERER.render(c.messages)).toBe(renderFallbackChatTemplate(c.messages));
      }
    }
  });

  it('differs from the fallback only for an empty conversation (the fallback starts with a newline)', async () => {
    const template = await loadPinnedChatTemplate(modelDir, sha(readFileSync(join(modelDir, 'chat_template.jinja'))));
    expect(template.render([])).toBe('<|im_start|>assistant\n');
    expect(renderFallbackChatTemplate([])).toBe('\n<|im_start|>assistant\n');
  });
});

describe('the pin', () => {
  it('refuses a template whose sha256 differs, before parsing it', async () => {
    expect(await failureCode(() => compilePinnedChatTemplate(QWEN3_TEMPLATE, 'a'.repeat(64)))).toBe('pin_mismatch');
    // An unparseable template with the wrong pin is reported as a pin mismatch: unpinned text never reaches the engine.
    expect(await failureCode(() => compilePinnedChatTemplate('{% if %}', 'b'.repeat(64)))).toBe('pin_mismatch');
    const path = join(dir, 'pin.jinja');
    await writeFile(path, QWEN3_TEMPLATE);
    expect(await failureCode(() => loadPinnedChatTemplate(path, sha(`${QWEN3_TEMPLATE} `)))).toBe('pin_mismatch');
  });

  it('hashes the raw file bytes (a trailing newline or a BOM changes the pin)', async () => {
    const path = join(dir, 'bom.jinja');
    await writeFile(path, `\ufeff${QWEN3_TEMPLATE}`);
    expect(await failureCode(() => loadPinnedChatTemplate(path, sha(QWEN3_TEMPLATE)))).toBe('pin_mismatch');
    expect((await loadPinnedChatTemplate(path, sha(`\ufeff${QWEN3_TEMPLATE}`))).templateSha256).toBe(sha(`\ufeff${QWEN3_TEMPLATE}`));
  });

  it('accepts an upper-case pin and rejects a malformed one', async () => {
    expect(compilePinnedChatTemplate(QWEN3_TEMPLATE, ` ${sha(QWEN3_TEMPLATE).toUpperCase()} `).templateSha256).toBe(sha(QWEN3_TEMPLATE));
    expect(await failureCode(() => compilePinnedChatTemplate(QWEN3_TEMPLATE, 'xyz'))).toBe('invalid_config');
  });
});

describe('tokenizer_config.json sources', () => {
  async function configFile(name: string, config: unknown): Promise<string> {
    const sub = join(dir, name);
    await mkdir(sub, { recursive: true });
    const path = join(sub, 'tokenizer_config.json');
    await writeFile(path, typeof config === 'string' ? config : JSON.stringify(config));
    return path;
  }

  it('reads the chat_template string and the special tokens, as strings or {content} objects', async () => {
    const { template, rendered } = EXPECTED.special_tokens;
    const path = await configFile('tokens', {
      chat_template: template,
      bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false },
      eos_token: '<|im_end|>',
      pad_token: { content: '<|endoftext|>' },
      unk_token: null,
    });
    const loaded = await loadPinnedChatTemplate(path, sha(template));
    expect(loaded.specialTokens).toEqual({ bos_token: '<s>', eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
    expect(loaded.render([{ role: 'user', content: 'x' }])).toBe(rendered);
    expect(rendered).toBe('<s>|<|im_end|>|<|endoftext|>|no-unk|1');
  });

  it('chooses the "default" entry of the list-of-named-templates form', async () => {
    const path = await configFile('list', {
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: QWEN3_TEMPLATE },
      ],
    });
    const loaded = await loadPinnedChatTemplate(path, sha(QWEN3_TEMPLATE));
    expect(loaded.render(EXPECTED.qwen3[0]!.messages)).toBe(EXPECTED.qwen3[0]!.rendered);
  });

  it.each([
    ['a list without a default', { chat_template: [{ name: 'tool_use', template: 'x' }] }],
    ['no chat_template', { eos_token: '<|im_end|>' }],
    ['a non-string chat_template', { chat_template: 42 }],
    ['JSON that is not an object', '["chat_template"]'],
    ['text that is not JSON', '{"chat_template": '],
  ])('rejects %s as unreadable', async (name, config) => {
    const path = await configFile(`bad-${name.replace(/\W+/g, '-')}`, config);
    expect(await failureCode(() => loadPinnedChatTemplate(path, 'c'.repeat(64)))).toBe('unreadable');
  });

  it('rejects a missing file and a directory with neither file', async () => {
    expect(await failureCode(() => loadPinnedChatTemplate(join(dir, 'absent.jinja'), 'c'.repeat(64)))).toBe('unreadable');
    const empty = join(dir, 'empty-dir');
    await mkdir(empty, { recursive: true });
    expect(await failureCode(() => loadPinnedChatTemplate(empty, 'c'.repeat(64)))).toBe('unreadable');
  });
});

describe('caps and malformed templates', () => {
  it('refuses files over the caps without parsing them', async () => {
    const path = join(dir, 'big.jinja');
    await writeFile(path, 'x'.repeat(2048));
    expect(await failureCode(() => loadPinnedChatTemplate(path, sha('x'.repeat(2048)), { limits: { maxTemplateBytes: 1024 } }))).toBe('too_large');
    const config = join(dir, 'big-config', 'tokenizer_config.json');
    await mkdir(join(dir, 'big-config'), { recursive: true });
    await writeFile(config, JSON.stringify({ chat_template: 'x', padding: 'y'.repeat(4096) }));
    expect(await failureCode(() => loadPinnedChatTemplate(config, sha('x'), { limits: { maxTokenizerConfigBytes: 1024 } }))).toBe('too_large');
    expect(await failureCode(() => compilePinnedChatTemplate('x'.repeat(2048), sha('x'.repeat(2048)), { limits: { maxTemplateBytes: 1024 } }))).toBe('too_large');
  });

  it('refuses a rendered prompt over the cap', async () => {
    const template = pinned(QWEN3_TEMPLATE, { limits: { maxRenderedChars: 10_000 } });
    expect(template.render([{ role: 'user', content: 'x'.repeat(9_000) }])).toHaveLength(9_000 + 50);
    expect(await failureCode(() => template.render([{ role: 'user', content: 'x'.repeat(10_001) }]))).toBe('too_large');
  });

  it('rejects invalid UTF-8 and templates that do not parse', async () => {
    const path = join(dir, 'latin1.jinja');
    const bytes = Buffer.from([0x7b, 0x7b, 0x20, 0xe9, 0x20, 0x7d, 0x7d]);
    await writeFile(path, bytes);
    expect(await failureCode(() => loadPinnedChatTemplate(path, sha(bytes)))).toBe('invalid_template');
    for (const bad of ['{% if %}', '{{ messages', '{% for m in messages %}', '{% endfor %}']) expect(await failureCode(() => pinned(bad)), bad).toBe('invalid_template');
  });
});

describe('hostile templates fail cleanly', () => {
  const one: ChatMessage[] = [{ role: 'user', content: 'hi' }];

  it('reach no JS prototype, constructor or function', () => {
    const probes = [
      '{{ messages.__proto__ }}|{{ messages[0].__proto__ }}|{{ messages[0].constructor }}|{{ "".constructor }}|{{ messages.constructor }}',
      "{{ messages[0]['__proto__'] }}|{{ messages[0]['constructor'] }}|{{ namespace.__proto__ }}|{{ range.prototype }}",
      '{% set ns = namespace(a=1) %}{% set ns.__proto__ = "polluted" %}{% set ns.constructor = "x" %}{{ ns.a }}',
    ];
    for (const probe of probes) {
      const out = pinned(probe).render(one);
      expect(out, probe).not.toMatch(/function|native code|\[object/i);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.toString.call({})).toBe('[object Object]');
  });

  it('cannot call Function through constructor chains', async () => {
    for (const probe of ['{{ "".constructor.constructor("return process")() }}', '{{ messages[0].constructor.constructor("return 1")() }}', '{{ messages.pop.constructor("return 1")() }}']) {
      expect(await failureCode(() => pinned(probe).render(one)), probe).toBe('render_failed');
    }
  });

  it('stops loops that would run for ever by the step budget, deterministically', async () => {
    const nested = '{% for i in range(100000) %}{% for j in range(100000) %}{{ "" }}{% endfor %}{% endfor %}';
    const template = pinned(nested, { limits: { maxRenderSteps: 200_000 } });
    const error = (() => {
      try {
        template.render(one);
      } catch (e) {
        return e as ChatTemplateError;
      }
      return null;
    })();
    expect(error?.code).toBe('render_failed');
    expect(error?.message).toMatch(/exceeded 200000 steps/);
  });

  it('charges the items a loop walks, so loops that break at once still exhaust the budget', async () => {
    const breaking = '{% for i in range(100000) %}{% for j in range(100000) %}{% break %}{% endfor %}{% endfor %}';
    expect(await failureCode(() => pinned(breaking, { limits: { maxRenderSteps: 300_000 } }).render(one))).toBe('render_failed');
  });

  it('refuses a huge range() before building it', async () => {
    expect(await failureCode(() => pinned('{% for i in range(10 ** 12) %}{% endfor %}').render(one))).toBe('too_large');
    expect(await failureCode(() => pinned('{{ range(100001) | length }}').render(one))).toBe('too_large');
    expect(pinned('{{ range(100000) | length }}').render(one)).toBe('100000');
    expect(await failureCode(() => pinned('{{ range(0, 10, 0) }}').render(one))).toBe('render_failed');
  });

  it('stops a string that doubles in a loop by the size cap', async () => {
    const doubling = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}";
    expect(await failureCode(() => pinned(doubling).render(one))).toBe('too_large');
    const lists = '{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}';
    expect(await failureCode(() => pinned(lists).render(one))).toBe('too_large');
  });

  it('stops unbounded macro recursion', async () => {
    expect(await failureCode(() => pinned('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}').render(one))).toBe('render_failed');
  });

  it('reports raise_exception, undefined helpers and engine errors as render_failed', async () => {
    const raised = pinned("{{ raise_exception('only user and assistant roles are supported') }}");
    await expect(async () => raised.render(one)).rejects.toThrow(/the chat template raised: only user and assistant roles are supported/);
    // strftime_now is left out on purpose: prompts are a pure function of the messages.
    expect(await failureCode(() => pinned('{{ strftime_now("%Y") }}').render(one))).toBe('render_failed');
    expect(await failureCode(() => pinned('{{ messages[0].content + none }}').render(one))).toBe('render_failed');
  });

  it('does not carry state from one render to the next', () => {
    const counter = pinned('{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}');
    expect(counter.render(one)).toBe('1');
    expect(counter.render([...one, ...one])).toBe('2');
    expect(counter.render(one)).toBe('1');
  });
});

describe('eval node settings', () => {
  it('uses the fallback when neither path nor pin is configured', async () => {
    expect(await chatRendererFromSettings(chatTemplateSettingsFromEnv({}))).toBe(FALLBACK_CHAT_RENDERER);
    expect(FALLBACK_CHAT_RENDERER.templateSha256).toBeNull();
  });

  it('needs both the path and the pin', async () => {
    expect(await failureCode(() => chatRendererFromSettings(chatTemplateSettingsFromEnv({ ALBEDO_CHAT_TEMPLATE_SHA256: 'a'.repeat(64) })))).toBe('invalid_config');
    expect(await failureCode(() => chatRendererFromSettings(chatTemplateSettingsFromEnv({ ALBEDO_CHAT_TEMPLATE_PATH: '/x/chat_template.jinja' })))).toBe('invalid_config');
  });

  it('loads the pinned template from the command line path, which wins over the environment', async () => {
    const path = join(dir, 'settings.jinja');
    await writeFile(path, QWEN3_TEMPLATE);
    const settings = chatTemplateSettingsFromEnv({ ALBEDO_CHAT_TEMPLATE_PATH: join(dir, 'absent.jinja'), ALBEDO_CHAT_TEMPLATE_SHA256: sha(QWEN3_TEMPLATE) }, path);
    expect(settings.templatePath).toBe(path);
    const renderer = await chatRendererFromSettings(settings);
    expect(renderer.kind).toBe('pinned');
    expect(renderer.templateSha256).toBe(sha(QWEN3_TEMPLATE));
    expect(await failureCode(() => chatRendererFromSettings({ templatePath: path, sha256: 'd'.repeat(64) }))).toBe('pin_mismatch');
  });

  it('withRenderedPrompts adds the prompt text and the template sha256', () => {
    const template = pinned(QWEN3_TEMPLATE);
    const out = withRenderedPrompts([{ sampleId: 's1', messages: EXPECTED.qwen3[1]!.messages }], template);
    expect(out).toEqual([{ sampleId: 's1', messages: EXPECTED.qwen3[1]!.messages, prompt: EXPECTED.qwen3[1]!.rendered, templateSha256: sha(QWEN3_TEMPLATE) }]);
    expect(withRenderedPrompts([{ sampleId: 's1', messages: EXPECTED.qwen3[1]!.messages }], FALLBACK_CHAT_RENDERER)[0]?.templateSha256).toBeNull();
  });
});

describe('runEval records prompt provenance', () => {
  const input = { challengerModelUri: 'org/strong-1', kingModelUri: 'org/plain-1', blockHash: '0x5f3c2a', sampleCount: 2, winMargin: 0.06 };
  /** An in-process engine: the reply is a pure function of the model and the last message. */
  const chat: ChatFn = async (model, messages) => `${model} answers ${messages.at(-1)?.content ?? ''}`;
  function recordingJudge(): JudgeGateway & { requests: JudgeDuelRequest[] } {
    const requests: JudgeDuelRequest[] = [];
    return {
      requests,
      async judgeDuel(req) {
        requests.push(req);
        const byMetric = { correctness: 0, grounding: 0, progress: 0, protocol: 0, efficiency: 0 };
        return { scoreChallenger: 0.6, scoreKing: 0.4, sampleCount: req.samples.length, scoredSampleCount: req.samples.length, validFraction: 1, judgeCount: 3, judgeErrors: 0, byJudge: {}, byMetric, servedModels: {}, records: [] };
      },
    };
  }
  const conversations = [EXPECTED.qwen3[1]!, EXPECTED.qwen3[2]!];

  it('judges see the pinned rendering; request.json records the template and prompt sha256s', async () => {
    const template = pinned(QWEN3_TEMPLATE);
    const prompts = withRenderedPrompts(
      conversations.map((c, i) => ({ sampleId: `data/train-0.parquet:${i}:0`, messages: c.messages })),
      template,
    );
    const judge = recordingJudge();
    const artifactDir = join(dir, 'eval-artifacts');
    const outcome = await runEval(input, { chat, judge, emit: async () => {}, signal: new AbortController().signal, prompts, artifactDir, verdictConfig: {} });
    expect(outcome.status).toBe('succeeded');
    expect(judge.requests[0]?.samples.map((s) => s.prompt)).toEqual(conversations.map((c) => c.rendered));
    const request = JSON.parse(readFileSync(join(artifactDir, 'request.json'), 'utf8')) as Record<string, unknown>;
    expect(request.chatTemplateSha256).toBe(sha(QWEN3_TEMPLATE));
    expect(request.promptSha256s).toEqual(conversations.map((c) => sha(c.rendered)));
    const rows = readFileSync(join(artifactDir, 'duel-transcript.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { prompt: string });
    expect(rows.map((r) => r.prompt)).toEqual(conversations.map((c) => c.rendered));
  });

  it('unrendered prompts use the fallback (template sha256 null); mixed templates fail the run', async () => {
    const judge = recordingJudge();
    const artifactDir = join(dir, 'eval-artifacts-fallback');
    const plain = conversations.map((c, i) => ({ sampleId: `s${i}`, messages: c.messages }));
    await runEval(input, { chat, judge, emit: async () => {}, signal: new AbortController().signal, prompts: plain, artifactDir, verdictConfig: {} });
    expect(judge.requests[0]?.samples.map((s) => s.prompt)).toEqual(conversations.map((c) => renderFallbackChatTemplate(c.messages)));
    expect((JSON.parse(readFileSync(join(artifactDir, 'request.json'), 'utf8')) as Record<string, unknown>).chatTemplateSha256).toBeNull();

    const mixed = [withRenderedPrompts([plain[0]!], pinned(QWEN3_TEMPLATE))[0]!, plain[1]!];
    const outcome = await runEval(input, { chat, judge: recordingJudge(), emit: async () => {}, signal: new AbortController().signal, prompts: mixed, verdictConfig: {} });
    expect(outcome.status === 'failed' && outcome.fault).toMatchObject({ faultClass: 'REMOTE_EVAL_FAULT', code: 'remote_worker_failed' });
  });
});

describe('gpu-node/main.ts', () => {
  const MAIN = new URL('../gpu-node/main.ts', import.meta.url).pathname;

  /**
   * Starts the node (EVAL role) against a backend that is not there, and resolves with its exit code and
   * stderr once it exits, or once it has logged the chat template it will use (then it is stopped: past
   * that line the node only goes on to dial the backend).
   */
  function startNode(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; ready: boolean }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--backend', 'ws://127.0.0.1:9/rpc', '--role', 'EVAL', '--state-dir', join(dir, 'node-state'), ...args], {
        env: { ...process.env, ALBEDO_NODE_TOKEN: 'test-token', ALBEDO_CHAT_TEMPLATE_SHA256: '', ALBEDO_CHAT_TEMPLATE_PATH: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let ready = false;
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (!ready && stderr.includes('[gpu-node] chat template:')) {
          ready = true;
          child.kill('SIGKILL');
        }
      });
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stderr, ready }));
    });
  }

  it('refuses to start when the template does not match the pin', async () => {
    const path = join(dir, 'node.jinja');
    await writeFile(path, QWEN3_TEMPLATE);
    const result = await startNode(['--chat-template', path], { ALBEDO_CHAT_TEMPLATE_SHA256: 'e'.repeat(64) });
    expect(result.ready).toBe(false);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing to start: chat template .*node\.jinja sha256 [0-9a-f]{64} != pinned e{64} \(pin_mismatch\)/);
  });

  it('starts with the pinned template when it matches', async () => {
    const path = join(dir, 'node-ok.jinja');
    await writeFile(path, QWEN3_TEMPLATE);
    const result = await startNode([], { ALBEDO_CHAT_TEMPLATE_PATH: path, ALBEDO_CHAT_TEMPLATE_SHA256: sha(QWEN3_TEMPLATE) });
    expect(result.ready).toBe(true);
    expect(result.stderr).toContain(`chat template: pinned genesis template sha256 ${sha(QWEN3_TEMPLATE)}`);
  });
});
