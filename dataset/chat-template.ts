/**
 * §5 step 7 (spec/duel.md): the eval prompt is the chat-template rendering of the sample's messages
 * with `add_generation_prompt = true`, `enable_thinking = true`, using the canonical genesis
 * tokenizer's chat template pinned by sha256 (`ALBEDO_CHAT_TEMPLATE_SHA256`, the same pin that
 * validation.md §6.1 checks byte for byte). Pinning it here, instead of rendering with the king's
 * tokenizer as upstream did, keeps miners from influencing prompts.
 *
 * One renderer interface ({@link ChatPromptRenderer}) serves every caller: the pinned template in
 * production, the fixed fallback of §5 step 7 ({@link FALLBACK_CHAT_RENDERER}) in tests and on
 * hosts without a configured template.
 *
 * Hostile templates. The engine (`@huggingface/jinja`) is an interpreter over its own value types
 * (Maps, not JS objects): attribute lookups go through `Map.get`, so `__proto__`, `constructor` and
 * friends resolve to undefined and no JS function is reachable. On top of that every render runs with
 *   - a step budget ({@link MAX_RENDER_STEPS}): every evaluated AST node costs one step, so a loop that
 *     would run "forever" (nested `range`s, self-recursive macros) fails deterministically, the same
 *     way on every validator, instead of by a wall-clock timeout that would depend on the machine;
 *   - a size cap on every intermediate string and on the output ({@link MAX_RENDERED_PROMPT_CHARS}) and
 *     on every list ({@link MAX_TEMPLATE_LIST_LENGTH}), so doubling a value in a loop fails long before
 *     memory does, and a `range()` that checks that cap before building anything.
 * What cannot be bounded from outside the engine: the cost of ONE builtin operation before its result
 * is seen — e.g. `'x'|center(500000000)` or `|indent(n)` build a string of up to V8's maximum string
 * length (~2^29 characters, ~0.5–1 GB) inside a single call, and a deeply self-recursive macro is
 * stopped by the JS stack (a RangeError, reported as `render_failed`) rather than by our budget. The
 * template is operator-pinned, never miner-supplied, so these are defence in depth, not the boundary.
 * `strftime_now` is deliberately not provided: a prompt must be a pure function of the messages so
 * every validator renders the same bytes.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { type ChatMessage, renderFallbackChatTemplate } from './samples.ts';

/** Largest template accepted, in UTF-8 bytes (real chat templates are 1–10 KB). @default 1048576 (1 MiB) */
export const MAX_CHAT_TEMPLATE_BYTES = 1024 * 1024;
/** Largest `tokenizer_config.json` read (real ones are 5–200 KB). @default 16777216 (16 MiB) */
export const MAX_TOKENIZER_CONFIG_BYTES = 16 * 1024 * 1024;
/**
 * Largest rendered prompt, and largest string any template expression may produce, in UTF-16
 * code units. 262144 tokens (max_model_len) of a few characters each stay well below it.
 * @default 8388608 (8 Mi)
 */
export const MAX_RENDERED_PROMPT_CHARS = 8 * 1024 * 1024;
/**
 * Evaluated template nodes allowed per render (plus one per item a `for` loop walks). The Qwen3-style
 * template spends fewer than 150 steps per message (chat-template.test.ts), so this allows conversations
 * of over 6,000 turns. Measured on a busy 2-core host: ~3 µs per step for that template, up to ~10 µs per
 * step in tight nested loops, so a runaway template is stopped within about 10 s.
 * @default 1000000
 */
export const MAX_RENDER_STEPS = 1_000_000;
/**
 * Largest list a template expression may produce, `range()` included (checked before it is built).
 * The engine prepares a scope per item before a `for` loop starts, so this also bounds that work.
 * @default 100000
 */
export const MAX_TEMPLATE_LIST_LENGTH = 100_000;
/** The file a directory source is read from first (HF precedence: it overrides tokenizer_config.json). */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';
/** The tokenizer config file: the template's fallback source and the special tokens' source. */
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
/** The named template chosen from the list form of `chat_template` (as transformers does). */
export const DEFAULT_TEMPLATE_NAME = 'default';
/** Special tokens passed to the template, as `apply_chat_template` passes `special_tokens_map`. */
export const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const;

export type ChatTemplateErrorCode =
  /** The template's sha256 differs from the configured pin. */
  | 'pin_mismatch'
  /** The source cannot be read, is not JSON where JSON is expected, or has no template in it. */
  | 'unreadable'
  /** The template is not valid UTF-8 or does not parse as a Jinja template. */
  | 'invalid_template'
  /** Rendering raised (template `raise_exception`, an engine error, the step budget, stack depth). */
  | 'render_failed'
  /** A file, the rendered prompt or an intermediate value is over its cap. */
  | 'too_large'
  /** The settings are inconsistent: a malformed pin, or a template without a pin (or the reverse). */
  | 'invalid_config';

/**
 * The one error of the chat-template boundary. Messages name sources, hashes and sizes, never the
 * prompt; engine and `raise_exception` messages are passed on truncated.
 */
export class ChatTemplateError extends Error {
  override readonly name = 'ChatTemplateError';
  readonly code: ChatTemplateErrorCode;

  constructor(code: ChatTemplateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Renders the prompt of one conversation; the one interface of §5 step 7 for every caller. */
export interface ChatPromptRenderer {
  /** `pinned`: the genesis template; `fallback`: the fixed §5 step 7 stand-in (tests, no template configured). */
  readonly kind: 'pinned' | 'fallback';
  /** sha256 (lowercase hex) of the template's UTF-8 bytes; null for the fallback. */
  readonly templateSha256: string | null;
  /** The prompt text; throws {@link ChatTemplateError} (pinned only). */
  render(messages: readonly ChatMessage[]): string;
}

/** Special tokens the template sees as variables; absent tokens stay undefined in the template. */
export type SpecialTokens = Partial<Record<(typeof SPECIAL_TOKEN_KEYS)[number], string>>;

export interface PinnedChatTemplate extends ChatPromptRenderer {
  readonly kind: 'pinned';
  readonly templateSha256: string;
  /** Where the template came from (a path, or a label for in-memory templates). */
  readonly source: string;
  readonly specialTokens: Readonly<SpecialTokens>;
}

export interface ChatTemplateLimits {
  /** @default MAX_CHAT_TEMPLATE_BYTES */
  readonly maxTemplateBytes?: number;
  /** @default MAX_TOKENIZER_CONFIG_BYTES */
  readonly maxTokenizerConfigBytes?: number;
  /** @default MAX_RENDERED_PROMPT_CHARS */
  readonly maxRenderedChars?: number;
  /** @default MAX_RENDER_STEPS */
  readonly maxRenderSteps?: number;
  /** @default MAX_TEMPLATE_LIST_LENGTH */
  readonly maxListLength?: number;
}

/** §5 step 7 fallback as a renderer: no template, no pin. */
export const FALLBACK_CHAT_RENDERER: ChatPromptRenderer = Object.freeze({
  kind: 'fallback' as const,
  templateSha256: null,
  render: renderFallbackChatTemplate,
});

const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A pin as configured: trimmed, lower-cased, 64 hex digits, else `invalid_config`. */
export function normalizeTemplatePin(pin: string): string {
  const normalized = pin.trim().toLowerCase();
  if (!SHA256_HEX_RE.test(normalized)) throw new ChatTemplateError('invalid_config', 'the chat template pin (ALBEDO_CHAT_TEMPLATE_SHA256) must be 64 hex digits');
  return normalized;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads at most `cap` bytes; a longer file is `too_large` without being read whole. */
async function readCapped(path: string, cap: number, what: string): Promise<Buffer> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new ChatTemplateError('unreadable', `cannot open ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ChatTemplateError('unreadable', `${what} ${path} is not a regular file`);
    if (info.size > cap) throw new ChatTemplateError('too_large', `${what} ${path} is ${info.size} bytes (cap ${cap})`);
    // Read one byte past the cap: the file may have grown since stat.
    const buffer = Buffer.alloc(cap + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > cap) throw new ChatTemplateError('too_large', `${what} ${path} is over ${cap} bytes`);
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof ChatTemplateError) throw error;
    throw new ChatTemplateError('unreadable', `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  } finally {
    await handle.close();
  }
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return UTF8.decode(bytes);
  } catch (error) {
    throw new ChatTemplateError('invalid_template', `${what} is not valid UTF-8`, { cause: error });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken `{content, ...}`. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isPlainObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

/** bos/eos/pad/unk tokens of a parsed tokenizer_config.json (absent or null tokens are left out, as in `special_tokens_map`). */
export function specialTokensOf(config: Readonly<Record<string, unknown>>): SpecialTokens {
  const tokens: SpecialTokens = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const text = tokenText(config[key]);
    if (text !== undefined) tokens[key] = text;
  }
  return tokens;
}

/**
 * The template of a parsed tokenizer_config.json: `chat_template` as a string, or the list form
 * `[{name, template}]`, from which the `default` entry is taken (as `apply_chat_template` does when no
 * template name is given). Anything else is `unreadable`.
 */
export function templateOfTokenizerConfig(config: Readonly<Record<string, unknown>>, where: string): string {
  const field = config.chat_template;
  if (typeof field === 'string') return field;
  if (Array.isArray(field)) {
    const named = field.find((entry) => isPlainObject(entry) && entry.name === DEFAULT_TEMPLATE_NAME);
    if (named && typeof (named as Record<string, unknown>).template === 'string') return (named as { template: string }).template;
    throw new ChatTemplateError('unreadable', `${where}: chat_template is a list without a "${DEFAULT_TEMPLATE_NAME}" template`);
  }
  throw new ChatTemplateError('unreadable', `${where} has no chat_template`);
}

async function readTokenizerConfig(path: string, limits: ChatTemplateLimits): Promise<Record<string, unknown>> {
  const bytes = await readCapped(path, limits.maxTokenizerConfigBytes ?? MAX_TOKENIZER_CONFIG_BYTES, 'tokenizer config');
  let parsed: unknown;
  try {
    parsed = JSON.parse(decodeUtf8(bytes, path));
  } catch (error) {
    throw new ChatTemplateError('unreadable', `${path} is not valid JSON`, { cause: error });
  }
  if (!isPlainObject(parsed)) throw new ChatTemplateError('unreadable', `${path} is not a JSON object`);
  return parsed;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The slice of the engine's runtime API used here. The package's .d.ts files import their siblings
 * without extensions, which NodeNext resolution cannot follow, so its runtime types arrive as `any`;
 * these interfaces keep this module typed.
 */
interface JinjaValue {
  readonly value: unknown;
}
interface JinjaEnvironment {
  set(name: string, value: unknown): unknown;
}
interface JinjaInterpreter {
  evaluate(statement: unknown, environment: JinjaEnvironment): JinjaValue;
  run(program: unknown): JinjaValue;
}
const BaseInterpreter = Interpreter as unknown as new (env: JinjaEnvironment) => JinjaInterpreter;
const JinjaEnvironmentClass = Environment as unknown as new () => JinjaEnvironment;

interface ForNode {
  readonly type: 'For';
  readonly iterable: { readonly type: string; readonly lhs?: unknown };
}

function isForNode(statement: unknown): statement is ForNode {
  return typeof statement === 'object' && statement !== null && (statement as { type?: unknown }).type === 'For';
}

/**
 * Counts evaluated nodes and checks the size of every string and list a node produces. A `for`
 * loop's iterable is charged one step per item as well: the engine walks it once before the first
 * iteration, work that no node evaluation would otherwise pay for.
 */
class GuardedInterpreter extends BaseInterpreter {
  private steps = 0;
  private readonly iterables = new WeakSet<object>();

  constructor(
    env: JinjaEnvironment,
    private readonly maxSteps: number,
    private readonly maxChars: number,
    private readonly maxListLength: number,
  ) {
    super(env);
  }

  private charge(steps: number): void {
    this.steps += steps;
    if (this.steps > this.maxSteps) throw new ChatTemplateError('render_failed', `chat template rendering exceeded ${this.maxSteps} steps`);
  }

  override evaluate(statement: unknown, environment: JinjaEnvironment): JinjaValue {
    this.charge(1);
    if (isForNode(statement)) {
      const iterable = statement.iterable.type === 'SelectExpression' ? statement.iterable.lhs : statement.iterable;
      if (typeof iterable === 'object' && iterable !== null) this.iterables.add(iterable);
    }
    const result = super.evaluate(statement, environment);
    const value: unknown = result.value;
    if (typeof value === 'string' && value.length > this.maxChars) {
      throw new ChatTemplateError('too_large', `chat template rendering produced ${value.length} characters (cap ${this.maxChars})`);
    }
    if (Array.isArray(value) && value.length > this.maxListLength) {
      throw new ChatTemplateError('too_large', `chat template rendering produced a list of ${value.length} items (cap ${this.maxListLength})`);
    }
    if (typeof statement === 'object' && statement !== null && this.iterables.has(statement)) {
      this.charge(Array.isArray(value) ? value.length : value instanceof Map ? value.size : 0);
    }
    return result;
  }
}

/** Python's `range` with the length checked before anything is built. */
function cappedRange(maxLength: number): (start: number, stop?: number, step?: number) => number[] {
  return (start, stop, step = 1) => {
    const [from, to] = stop === undefined ? [0, start] : [start, stop];
    if (![from, to, step].every(Number.isInteger)) throw new Error('range() arguments must be integers');
    if (step === 0) throw new Error('range() step must not be zero');
    const length = Math.max(0, Math.ceil((to - from) / step));
    if (length > maxLength) throw new ChatTemplateError('too_large', `range() of ${length} items (cap ${maxLength})`);
    return Array.from({ length }, (_, i) => from + i * step);
  };
}

function rootEnvironment(variables: Readonly<Record<string, unknown>>, maxListLength: number): JinjaEnvironment {
  const env = new JinjaEnvironmentClass();
  // The package's own globals minus `strftime_now` (see the module comment), with a capped `range`.
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (message: unknown) => {
      throw new ChatTemplateError('render_failed', `the chat template raised: ${String(message).slice(0, 200)}`);
    },
    range: cappedRange(maxListLength),
  };
  for (const [name, value] of Object.entries({ ...globals, ...variables })) env.set(name, value);
  return env;
}

function toError(error: unknown): ChatTemplateError {
  if (error instanceof ChatTemplateError) return error;
  const message = error instanceof RangeError ? `engine limit: ${error.message}` : error instanceof Error ? error.message : String(error);
  return new ChatTemplateError('render_failed', `chat template rendering failed: ${message.slice(0, 300)}`, { cause: error });
}

export interface CompileChatTemplateOptions {
  /** Where the template came from, for messages. @default '<inline template>' */
  readonly source?: string;
  /** @default {} */
  readonly specialTokens?: SpecialTokens;
  readonly limits?: ChatTemplateLimits;
}

/**
 * Checks the template's UTF-8 bytes against the pin, parses it once and returns a renderer that can be
 * used for any number of conversations. The pin is checked before the template is parsed, so an
 * unpinned template never reaches the engine.
 */
export function compilePinnedChatTemplate(template: string, expectedSha256: string, options: CompileChatTemplateOptions = {}): PinnedChatTemplate {
  const limits = options.limits ?? {};
  const source = options.source ?? '<inline template>';
  const pin = normalizeTemplatePin(expectedSha256);
  const bytes = Buffer.from(template, 'utf8');
  const maxTemplateBytes = limits.maxTemplateBytes ?? MAX_CHAT_TEMPLATE_BYTES;
  if (bytes.length > maxTemplateBytes) throw new ChatTemplateError('too_large', `chat template ${source} is ${bytes.length} bytes (cap ${maxTemplateBytes})`);
  const actual = sha256Hex(bytes);
  if (actual !== pin) throw new ChatTemplateError('pin_mismatch', `chat template ${source} sha256 ${actual} != pinned ${pin}`);
  let parsed: { readonly parsed: unknown };
  try {
    parsed = new Template(template);
  } catch (error) {
    throw new ChatTemplateError('invalid_template', `chat template ${source} does not parse: ${(error instanceof Error ? error.message : String(error)).slice(0, 300)}`, { cause: error });
  }
  const specialTokens = Object.freeze({ ...(options.specialTokens ?? {}) });
  const maxChars = limits.maxRenderedChars ?? MAX_RENDERED_PROMPT_CHARS;
  const maxSteps = limits.maxRenderSteps ?? MAX_RENDER_STEPS;
  const maxListLength = limits.maxListLength ?? MAX_TEMPLATE_LIST_LENGTH;
  return Object.freeze({
    kind: 'pinned' as const,
    templateSha256: actual,
    source,
    specialTokens,
    render(messages: readonly ChatMessage[]): string {
      // Plain copies: the engine only ever sees role and content, never caller objects.
      const variables = {
        ...specialTokens,
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: true,
        enable_thinking: true,
      };
      let output: unknown;
      try {
        output = new GuardedInterpreter(rootEnvironment(variables, maxListLength), maxSteps, maxChars, maxListLength).run(parsed.parsed).value;
      } catch (error) {
        throw toError(error);
      }
      if (typeof output !== 'string') throw new ChatTemplateError('render_failed', 'chat template rendering did not produce text');
      return output;
    },
  });
}

/**
 * Loads the pinned genesis chat template from `source`:
 * - a `chat_template.jinja` (any file not named `*.json`): its raw bytes are hashed; special tokens come
 *   from a `tokenizer_config.json` beside it when there is one (as when a tokenizer directory is loaded);
 * - a `tokenizer_config.json` (`*.json`): its `chat_template` string (or the `default` of the list form),
 *   hashed as UTF-8, and its special tokens;
 * - a directory: its `chat_template.jinja` if present, else its `tokenizer_config.json`.
 * The template is hashed exactly as validation.md §6.1 hashes it, so the same pin serves both.
 */
export async function loadPinnedChatTemplate(source: string, expectedSha256: string, options: { readonly limits?: ChatTemplateLimits } = {}): Promise<PinnedChatTemplate> {
  const limits = options.limits ?? {};
  const pin = normalizeTemplatePin(expectedSha256);
  let path = source;
  try {
    if ((await stat(source)).isDirectory()) path = (await exists(join(source, CHAT_TEMPLATE_FILE))) ? join(source, CHAT_TEMPLATE_FILE) : join(source, TOKENIZER_CONFIG_FILE);
  } catch (error) {
    throw new ChatTemplateError('unreadable', `cannot open chat template source ${source}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  let template: string;
  let specialTokens: SpecialTokens = {};
  if (path.toLowerCase().endsWith('.json')) {
    const config = await readTokenizerConfig(path, limits);
    template = templateOfTokenizerConfig(config, path);
    specialTokens = specialTokensOf(config);
  } else {
    template = decodeUtf8(await readCapped(path, limits.maxTemplateBytes ?? MAX_CHAT_TEMPLATE_BYTES, 'chat template'), `chat template ${path}`);
    const sibling = join(dirname(path), TOKENIZER_CONFIG_FILE);
    if (await exists(sibling)) specialTokens = specialTokensOf(await readTokenizerConfig(sibling, limits));
  }
  return compilePinnedChatTemplate(template, pin, { source: path, specialTokens, limits });
}

/** The chat-template settings of an eval node. */
export interface ChatTemplateSettings {
  /** `--chat-template` / `ALBEDO_CHAT_TEMPLATE_PATH`: a chat_template.jinja, tokenizer_config.json or tokenizer directory. */
  readonly templatePath?: string | undefined;
  /** `ALBEDO_CHAT_TEMPLATE_SHA256`. */
  readonly sha256?: string | undefined;
}

/** Settings from the environment; a command-line path wins over `ALBEDO_CHAT_TEMPLATE_PATH`. */
export function chatTemplateSettingsFromEnv(env: Readonly<Record<string, string | undefined>>, cliPath?: string): ChatTemplateSettings {
  const templatePath = (cliPath ?? env.ALBEDO_CHAT_TEMPLATE_PATH)?.trim() || undefined;
  const sha256 = env.ALBEDO_CHAT_TEMPLATE_SHA256?.trim() || undefined;
  return { templatePath, sha256 };
}

/**
 * The renderer an eval node uses: the pinned template when a path and a pin are configured; the §5
 * fallback when neither is. Either one without the other is `invalid_config`: a pin alone means the
 * operator expects pinned prompts (silently falling back would change every prompt), and a template
 * without a pin is exactly what pinning exists to refuse.
 */
export async function chatRendererFromSettings(settings: ChatTemplateSettings, options: { readonly limits?: ChatTemplateLimits } = {}): Promise<ChatPromptRenderer> {
  const { templatePath, sha256 } = settings;
  if (templatePath === undefined && sha256 === undefined) return FALLBACK_CHAT_RENDERER;
  if (templatePath === undefined) throw new ChatTemplateError('invalid_config', 'ALBEDO_CHAT_TEMPLATE_SHA256 is set but no chat template is configured (--chat-template or ALBEDO_CHAT_TEMPLATE_PATH)');
  if (sha256 === undefined) throw new ChatTemplateError('invalid_config', `chat template ${templatePath} is configured without its pin (ALBEDO_CHAT_TEMPLATE_SHA256)`);
  return loadPinnedChatTemplate(templatePath, sha256, options);
}

/** A prompt with its rendered text and the template it was rendered with (prompt provenance). */
export type RenderedPrompt<T> = T & { readonly prompt: string; readonly templateSha256: string | null };

/** Renders each item's messages with `renderer`, keeping the item's other fields. */
export function withRenderedPrompts<T extends { readonly messages: readonly ChatMessage[] }>(items: readonly T[], renderer: ChatPromptRenderer): RenderedPrompt<T>[] {
  return items.map((item) => ({ ...item, prompt: renderer.render(item.messages), templateSha256: renderer.templateSha256 }));
}
