import { createHash } from 'node:crypto';
import type { EvalInput } from '../core/stage.ts';
import type { EvalPrompt } from './executors.ts';

/**
 * LOCAL STAND-IN prompt pool, used only when a GPU eval node has no dataset configured: fixed coding-agent prompts, ordered by a seed
 * derived from the reveal block hash. With --dataset-root/--dataset-manifest the node uses the
 * bit-exact manifest sampler instead (dataset/eval-prompts.ts); npm start does.
 */
export const DEMO_EVAL_PROMPTS: readonly string[] = [
  'Write a Python function `merge_intervals(intervals)` that merges overlapping intervals, with tests.',
  'A Flask endpoint returns 500 with `TypeError: Object of type datetime is not JSON serializable`. Fix it.',
  'Implement an LRU cache class in TypeScript with get/put in O(1) and explain the data structures.',
  'The CI job fails with `ModuleNotFoundError: No module named yaml`. Diagnose and propose the minimal fix.',
  'Refactor a 200-line bash deploy script into functions with error handling; show the skeleton.',
  'Write a SQL query returning the top 3 customers by revenue per region, handling ties.',
  'Explain and fix a race condition where two goroutines append to the same slice without a lock.',
  'Add pagination to a REST API listing endpoint; describe cursor vs offset trade-offs and implement one.',
  'A React component re-renders on every keystroke and lags; find the cause and fix it.',
  'Write a Rust function that parses `key=value` lines into a HashMap, returning errors for bad lines.',
  'Given a failing unit test for a date parser around DST changes, explain the bug and fix it.',
  'Design a retry helper with exponential backoff and jitter in Python, with a test using fake time.',
];

export function demoEvalPrompts(input: EvalInput): EvalPrompt[] {
  const ranked = DEMO_EVAL_PROMPTS.map((text, i) => ({ text, i, key: createHash('sha256').update(`${input.blockHash}:${i}`).digest('hex') })).sort((a, b) => (a.key < b.key ? -1 : 1));
  const out: EvalPrompt[] = [];
  for (let n = 0; n < input.sampleCount; n++) {
    const p = ranked[n % ranked.length]!;
    out.push({ sampleId: `demo-${p.i}-${Math.floor(n / ranked.length)}`, messages: [{ role: 'user', content: p.text }] });
  }
  return out;
}
