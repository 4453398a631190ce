import { fnmatchToRegExp, pyReprList, pySorted } from '../core/py-compat.ts';

/** File allowlist profiles (spec/validation.md §3; `ALBEDO_ALLOWLIST_PROFILE`). */
export type AllowlistProfile = 'seed-live' | 'v2';
export const ALLOWLIST_PROFILES: readonly AllowlistProfile[] = ['seed-live', 'v2'];

export interface AllowlistSpec {
  /** Exact names, in the order `missing required` lists them. */
  readonly required: readonly string[];
  readonly allowedExact: readonly string[];
  readonly allowedGlobs: readonly string[];
  readonly forbiddenGlobs: readonly string[];
}

const SEED_REQUIRED = ['config.json', 'tokenizer_config.json', 'tokenizer.json', 'preprocessor_config.json', 'video_preprocessor_config.json'];

export const ALLOWLIST_SPECS: Readonly<Record<AllowlistProfile, AllowlistSpec>> = {
  'seed-live': {
    required: SEED_REQUIRED,
    allowedExact: [
      'generation_config.json', 'special_tokens_map.json', 'added_tokens.json', 'chat_template.jinja', 'merges.txt', 'vocab.json',
      'model.safetensors.index.json', '.gitattributes', 'LICENSE', 'README.md', 'configuration.json',
    ],
    allowedGlobs: ['model-*-of-*.safetensors', 'model.safetensors'],
    forbiddenGlobs: ['*.py'],
  },
  v2: {
    required: [...SEED_REQUIRED, 'generation_config.json', 'chat_template.jinja'],
    allowedExact: ['model.safetensors.index.json', '.gitattributes', 'LICENSE', 'README.md'],
    allowedGlobs: ['model-*-of-*.safetensors', 'model.safetensors'],
    forbiddenGlobs: ['*.py'],
  },
};

export interface AllowlistVerdict {
  readonly ok: boolean;
  readonly missing: readonly string[];
  readonly forbidden: readonly string[];
  readonly extras: readonly string[];
  /** Non-empty parts joined by `"; "` (empty when ok). */
  readonly message: string;
  /** Fault summary `{"files": sorted(files)[:50]}`. */
  readonly summary: { readonly files: readonly string[] };
}

const compiled = new Map<string, RegExp>();
function glob(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = fnmatchToRegExp(pattern);
    compiled.set(pattern, re);
  }
  return re;
}

/**
 * Step 4 (§3): exact entries match the full path case-sensitively (so `sub/config.json` is an
 * extra); globs use `fnmatch` semantics where `*` also matches `/`.
 */
export function checkFileAllowlist(files: readonly string[], profile: AllowlistProfile = 'seed-live'): AllowlistVerdict {
  const spec = ALLOWLIST_SPECS[profile];
  const present = new Set(files);
  const missing = spec.required.filter((r) => !present.has(r));
  if (!files.some((f) => f.endsWith('.safetensors'))) missing.push('*.safetensors');
  const exact = new Set([...spec.required, ...spec.allowedExact]);
  const forbidden = pySorted(present).filter((f) => spec.forbiddenGlobs.some((g) => glob(g).test(f)));
  const forbiddenSet = new Set(forbidden);
  const extras = pySorted(present).filter((f) => !exact.has(f) && !forbiddenSet.has(f) && !spec.allowedGlobs.some((g) => glob(g).test(f)));
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`missing required: ${pyReprList(missing)}`);
  if (forbidden.length > 0) parts.push(`forbidden present: ${pyReprList(forbidden.slice(0, 10))}`);
  if (extras.length > 0) parts.push(`unexpected extras: ${pyReprList(extras.slice(0, 10))}`);
  return { ok: parts.length === 0, missing, forbidden, extras, message: parts.join('; '), summary: { files: pySorted(present).slice(0, 50) } };
}
