/**
 * `albedo check-model` (alias `check-hippius`; spec/miner-cli.md §3): the validator's deterministic
 * artifact checks, from the same module the validator runs (validation/checks.ts), on a local
 * directory (`--path`) or on a pinned upload (`--repo --digest`). A local VALID means these checks
 * pass on the validator; only dedup, pre-eval and the duel are not run here.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CommandSpec } from '../cli.ts';
import { SettingError, UsageError } from '../env.ts';

/** Printed after the verdict: the one check the miner cannot run. */
export const NEAR_DUPLICATE_NOTE = 'note: the near-duplicate and divergence checks need the validator corpus; they run only on the validator.';

interface ReportCheck {
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly faultCode?: string;
  readonly detail: string;
}

/** `[PASS] name`, `[FAIL] name — reason`, `[SKIP] name — why` (spec §3 output). */
export function formatCheckLine(c: ReportCheck): string {
  if (c.status === 'passed') return `[PASS] ${c.name}`;
  if (c.status === 'failed') return `[FAIL] ${c.name} — ${c.faultCode ? `${c.faultCode}: ` : ''}${c.detail}`;
  return `[SKIP] ${c.name} — ${c.detail}`;
}

/** The `--json` report: every check with its status and fault code, and the verdict. */
export function checkReportJson(input: { target: Record<string, string>; checks: readonly ReportCheck[]; fault: { faultClass: string; code: string; message: string } | null }): string {
  return JSON.stringify(
    {
      valid: input.fault === null,
      ...input.target,
      checks: input.checks.map((c) => ({ name: c.name, status: c.status, fault_code: c.faultCode ?? null, detail: c.detail })),
      fault: input.fault === null ? null : { fault_class: input.fault.faultClass, fault_code: input.fault.code, message: input.fault.message },
    },
    null,
    2,
  );
}

export const checkModelCommand: CommandSpec = {
  name: 'check-model',
  aliases: ['check-hippius'],
  summary: "run the validator's artifact checks on a local model directory or an uploaded pin",
  synopsis: '--path <dir> [--repo <ns/name>] [--json]  |  --repo <ns/name> --digest <pin> [--json]',
  description: [
    'Runs the validation checks of the validator, from the same code: with --path, on a local directory',
    '(repo_name only when --repo is given, file_manifest, safetensors header sanity and dtype preflight,',
    'architecture lock, safetensors index consistency); with --repo and --digest, on the uploaded pin',
    '(listing, file_manifest, header-only dtype preflight over HTTP Range, architecture lock, index).',
    'Prints "[PASS] <check>" / "[FAIL] <check> — <code>: <reason>" per check, then VALID or INVALID.',
    'Exit 0 only when VALID. --json prints one JSON report instead (valid, checks[name, status,',
    'fault_code, detail], fault). Alias: check-hippius.',
  ].join('\n'),
  flags: {
    path: { type: 'string', placeholder: '<dir>', description: 'local model directory' },
    repo: { type: 'string', placeholder: '<ns/name>', description: 'repository name (checked against ALBEDO_REPO_NAME_PATTERN)' },
    digest: { type: 'string', placeholder: '<pin>', description: 'sha256:<hex> (Hippius) or a 40/64-hex revision (Hugging Face)' },
    json: { type: 'boolean', description: 'print a JSON report on stdout' },
  },
  env: [
    ['ALBEDO_ARCH_SPEC', 'architecture lock override (default: the bundled architecture_spec.json)'],
    ['ALBEDO_REPO_NAME_PATTERN', 'challenger repo-name rule (default ^[^/]+/albedo-qwen3\\.6-35b-.+$)'],
    ['ALBEDO_ALLOWLIST_PROFILE', 'seed-live (default) or v2'],
    ['ALBEDO_HIPPIUS_REGISTRY', 'OCI registry for --digest sha256:… (default https://registry.hippius.com)'],
    ['HIPPIUS_HUB_TOKEN', 'registry auth (or HIPPIUS_HUB_USERNAME + HIPPIUS_HUB_PASSWORD)'],
    ['ALBEDO_HF_ENDPOINT, HF_TOKEN', 'Hugging Face endpoint and token for 40/64-hex revisions'],
  ],

  async run(ctx, flags) {
    const path = flags.string('path');
    const repo = flags.string('repo');
    const digest = flags.string('digest');
    if ((path === undefined) === (digest === undefined)) throw new UsageError('give --path <dir>, or --repo <ns/name> with --digest <pin>');
    if (digest !== undefined && repo === undefined) throw new UsageError('--digest needs --repo');
    const { runLocalModelChecks, runModelChecks } = await import('../../validation/checks.ts');
    const { validationOptionsFromEnv } = await import('../../validation/stage.ts');
    const settings = validationOptionsFromEnv(ctx.env);
    const common = {
      ...(settings.repoPattern ? { repoPattern: settings.repoPattern } : {}),
      ...(settings.archSpec ? { archSpec: settings.archSpec } : {}),
      ...(settings.allowlistProfile ? { allowlistProfile: settings.allowlistProfile } : {}),
      ...(settings.maxHeaderBytes !== undefined ? { maxHeaderBytes: settings.maxHeaderBytes } : {}),
      ...(settings.genesisPins ? { genesisPins: settings.genesisPins } : {}),
      onCheck: flags.boolean('json') ? undefined : (c: ReportCheck) => ctx.out(formatCheckLine(c)),
    };
    let report: Awaited<ReturnType<typeof runLocalModelChecks>>;
    let target: Record<string, string>;
    if (path !== undefined) {
      const dir = resolve(path);
      const st = await stat(dir).catch(() => null);
      if (!st?.isDirectory()) throw new SettingError(`--path ${path} is not a directory`);
      target = { path: dir, ...(repo !== undefined ? { repo } : {}) };
      report = await runLocalModelChecks(dir, { ...common, ...(repo !== undefined ? { repo } : {}) }, ctx.signal);
    } else {
      const { modelStoreFromEnv } = await import('../../validation/store-config.ts');
      const uri = `${repo}@${digest}`;
      target = { model_uri: uri };
      report = await runModelChecks(
        uri,
        { ...common, store: modelStoreFromEnv(ctx.env), backends: ['hippius', 'hf'], allowMutableRef: settings.allowMutableRef ?? false, notFoundRecheckMs: 0 },
        ctx.signal,
      );
    }
    if (flags.boolean('json')) {
      ctx.out(checkReportJson({ target, checks: report.checks, fault: report.fault }));
    } else {
      for (const c of report.checks) if (c.status === 'skipped') ctx.out(formatCheckLine(c));
      ctx.out(report.fault === null ? 'VALID' : 'INVALID');
      ctx.status(NEAR_DUPLICATE_NOTE);
    }
    return report.fault === null ? 0 : 1;
  },
};
