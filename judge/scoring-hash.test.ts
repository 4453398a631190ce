import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalScoringInputs, type ScoringInputs, scoredSamplesFromRecords, scoringInputsHash } from './scoring-hash.ts';
import type { JudgeResult, JudgeSampleRecord } from './types.ts';
import { VerdictError } from './verdict-stats.ts';

const vectors = JSON.parse(readFileSync(new URL('../tests/fixtures/verdict/vectors.json', import.meta.url), 'utf8')) as {
  scoringHash: { inputs: ScoringInputs; hash: string };
};

const KING = 'teutonic/qwen3.6-35b-a3b-genesis@sha256:efd5b8d0a1c1f472be56ff919419cdd0561bdecd9013d5c2a96dd0e23e89c165';

function base(): ScoringInputs {
  return {
    protocolVersion: 'v1',
    codeVersion: '0.1.0+48c7a88',
    challenger: `miner/albedo-qwen3.6-35b-x@sha256:${'ab'.repeat(32)}`,
    king: KING,
    judgeModels: ['z-ai/glm-5.1', 'qwen/qwen3.5-397b-a17b'],
    samples: [
      {
        sampleId: 'data/train-00000-of-00002.parquet:0:0',
        prompt: 'fix the bug',
        judgeVerdicts: [
          { judgeModel: 'z-ai/glm-5.1', order: ['previous_king', 'challenger'], rawVerdict: '{"correctness": 1}' },
          { judgeModel: 'qwen/qwen3.5-397b-a17b', servedModel: 'qwen/qwen3.5-397b-a17b-fp8', order: ['previous_king', 'challenger'], rawVerdict: '{"correctness": 2}' },
        ],
      },
      {
        sampleId: 'data/train-00000-of-00002.parquet:0:1',
        prompt: 'now run the tests',
        judgeVerdicts: [{ judgeModel: 'z-ai/glm-5.1', order: ['challenger', 'previous_king'], rawVerdict: '{"correctness": 0}' }],
      },
    ],
  };
}

type DeepMutable<T> = T extends readonly (infer U)[] ? DeepMutable<U>[] : T extends object ? { -readonly [K in keyof T]: DeepMutable<T[K]> } : T;

/** A deep copy of {@link base} with one change applied to it. */
function changed(edit: (x: DeepMutable<ScoringInputs>) => void): ScoringInputs {
  const copy = structuredClone(base()) as unknown as DeepMutable<ScoringInputs>;
  edit(copy);
  return copy as unknown as ScoringInputs;
}

/** Rebuilds every object with its keys inserted in reverse order. */
function reverseKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reverseKeys) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    ) as T;
  }
  return value;
}

describe('scoringInputsHash', () => {
  it('is sha256:<hex>, deterministic, and equals the Python json.dumps(sort_keys) reference', () => {
    expect(scoringInputsHash(base())).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(scoringInputsHash(base())).toBe(scoringInputsHash(base()));
    expect(scoringInputsHash(vectors.scoringHash.inputs)).toBe(vectors.scoringHash.hash);
  });

  it('does not depend on object key order', () => {
    const reversed = reverseKeys(base());
    expect(Object.keys(reversed)[0]).toBe('samples');
    expect(scoringInputsHash(reversed)).toBe(scoringInputsHash(base()));
  });

  it('changes when any single input changes', () => {
    const variants: Record<string, ScoringInputs> = {
      base: base(),
      protocolVersion: changed((x) => {
        x.protocolVersion = 'v2';
      }),
      codeVersion: changed((x) => {
        x.codeVersion = '0.1.1+48c7a88';
      }),
      challenger: changed((x) => {
        x.challenger = `miner/albedo-qwen3.6-35b-x@sha256:${'ac'.repeat(32)}`;
      }),
      king: changed((x) => {
        x.king = `${KING.slice(0, -1)}d`;
      }),
      'judge model': changed((x) => {
        x.judgeModels = ['z-ai/glm-5.1', 'deepseek/deepseek-v3.2'];
      }),
      'judge roster order': changed((x) => {
        x.judgeModels = ['qwen/qwen3.5-397b-a17b', 'z-ai/glm-5.1'];
      }),
      'sample id': changed((x) => {
        x.samples[1]!.sampleId = 'data/train-00000-of-00002.parquet:0:2';
      }),
      prompt: changed((x) => {
        x.samples[0]!.prompt = 'fix the bug ';
      }),
      'sample order': changed((x) => {
        x.samples.reverse();
      }),
      'sample added': changed((x) => {
        x.samples.push({ sampleId: 'extra', prompt: '', judgeVerdicts: [] });
      }),
      'raw verdict': changed((x) => {
        x.samples[0]!.judgeVerdicts = [x.samples[0]!.judgeVerdicts[0]!, { ...x.samples[0]!.judgeVerdicts[1]!, rawVerdict: '{"correctness": 1}' }];
      }),
      'verdict judge': changed((x) => {
        x.samples[1]!.judgeVerdicts = [{ ...x.samples[1]!.judgeVerdicts[0]!, judgeModel: 'qwen/qwen3.5-397b-a17b' }];
      }),
      'presentation order': changed((x) => {
        x.samples[1]!.judgeVerdicts = [{ ...x.samples[1]!.judgeVerdicts[0]!, order: ['previous_king', 'challenger'] }];
      }),
      'served model': changed((x) => {
        x.samples[1]!.judgeVerdicts = [{ ...x.samples[1]!.judgeVerdicts[0]!, servedModel: 'z-ai/glm-5.1-turbo' }];
      }),
      'verdict dropped': changed((x) => {
        x.samples[0]!.judgeVerdicts = x.samples[0]!.judgeVerdicts.slice(0, 1);
      }),
    };
    const hashes = new Map<string, string>();
    for (const [name, inputs] of Object.entries(variants)) {
      const hash = scoringInputsHash(inputs);
      expect(hashes.has(hash), `${name} collides with ${[...hashes].find(([h]) => h === hash)?.[1]}`).toBe(false);
      hashes.set(hash, name);
    }
    expect(hashes.size).toBe(Object.keys(variants).length);
  });

  it('covers prompts by digest, not by text, and treats a missing served model as null', () => {
    const doc = canonicalScoringInputs(base());
    expect(doc).not.toContain('fix the bug');
    expect(doc).toContain('"promptSha256":"');
    const explicitNull = changed((x) => {
      x.samples[1]!.judgeVerdicts = [{ ...x.samples[1]!.judgeVerdicts[0]!, servedModel: null }];
    });
    expect(scoringInputsHash(explicitNull)).toBe(scoringInputsHash(base()));
  });

  it('rejects malformed inputs with invalid_scoring_input', () => {
    const bad: ScoringInputs[] = [
      changed((x) => {
        x.challenger = 'miner/no-digest';
      }),
      changed((x) => {
        x.king = 'a@b@c';
      }),
      changed((x) => {
        x.judgeModels = [];
      }),
      changed((x) => {
        x.codeVersion = '';
      }),
      changed((x) => {
        x.samples[1]!.sampleId = x.samples[0]!.sampleId;
      }),
      changed((x) => {
        x.samples[0]!.prompt = 'lone \ud800 surrogate';
      }),
      changed((x) => {
        x.protocolVersion = 'v3' as never;
      }),
    ];
    for (const inputs of bad) {
      let code: string | null = null;
      try {
        scoringInputsHash(inputs);
      } catch (error) {
        code = error instanceof VerdictError ? error.code : 'other';
      }
      expect(code).toBe('invalid_scoring_input');
    }
  });
});

describe('scoredSamplesFromRecords', () => {
  const result = (judgeModel: string, rawVerdict: string): JudgeResult => ({
    judgeModel,
    servedModel: null,
    provider: null,
    order: ['previous_king', 'challenger'],
    metricScores: { correctness: 1, grounding: 1, progress: 1, protocol: 1, efficiency: 1 },
    judgeMean: 1,
    parseOk: true,
    rawVerdict,
    error: null,
  });
  const records: JudgeSampleRecord[] = [{ sampleId: 's1', sampleIndex: 0, judgeResults: [result('z-ai/glm-5.1', '{"a":1}')], sampleScore: 1, scored: true }];

  it('hashes what the judges saw and said', () => {
    const samples = scoredSamplesFromRecords(records, new Map([['s1', 'prompt one']]));
    expect(samples).toEqual([
      { sampleId: 's1', prompt: 'prompt one', judgeVerdicts: [{ judgeModel: 'z-ai/glm-5.1', servedModel: null, order: ['previous_king', 'challenger'], rawVerdict: '{"a":1}' }] },
    ]);
    expect(scoringInputsHash({ ...base(), samples })).toMatch(/^sha256:/);
  });

  it('needs the prompt of every record', () => {
    expect(() => scoredSamplesFromRecords(records, new Map())).toThrow(VerdictError);
  });
});
