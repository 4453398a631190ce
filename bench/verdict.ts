/**
 * `npm run bench -- verdict [--aa N] [--ab N] [--clustered N] [--workers N]`: calibration of the duel
 * win rules (spec/duel.md §9.3, §12) on simulated duels of 128 samples, and the cost of one verdict.
 *
 * "Points" are percentage points of E[d], i.e. of `score_challenger − score_king` (the scale of the
 * 0.06 margin): +8 points ⇔ E[d] = 0.08 ⇔ the challenger takes 54 % of the judged share.
 *
 * Noise model (per duel, V = 128 samples, 3 judges):
 *   u_i  = σ_s·z_i                                   sample difficulty/quality swing (iid model)
 *   e_ij = μ + u_i + σ_j·z_ij                        judge j's view of sample i, on the d scale
 *   m_ij = clamp(round(10·(e_ij + 1)/2), 0, 10)/10  judge_mean: 5 metrics × {0, ½, 1} ⇒ k/10
 *   s_i  = mean_j m_ij, d_i = 2·s_i − 1              ⇒ d_i on a grid of 1/15 (3 judges × 5 metrics)
 *   score_challenger = median_j mean_i m_ij          (the §9.3 aggregate, what rule (a) sees)
 * σ_s = 0.305 and σ_j = 0.25 give a per-sample sd(d) ≈ 0.34 (printed as measured). μ is solved by
 * bisection so that E[d] hits the target exactly in expectation despite clipping and rounding.
 * Clustered variant (the v1 sampler draws 13 trajectories × 10 turns): u_i = σ_s·(√ρ·c_t + √(1−ρ)·z_i)
 * with a shared trajectory effect c_t and ρ = 0.2, same marginal sd; there δ0 also comes from 20
 * simulated A/A duels per trial (`noiseFloor`), as in production.
 *
 * Rule (a) is `marginVerdict` on the aggregate; rule (b) is the §12 bootstrap with B = 10,000,
 * α = 0.05, PyRandom seeded per trial, δ0 = 0 unless stated. Rule (b) runs through
 * `bootstrapLcbExceeds`: the same draws and sums as `pairedBootstrapLcb`, stopping once the decision
 * is fixed; every 40th trial also runs the full `decideVerdict` and the two decisions must agree.
 * References printed beside each rate: an ideal one-sided z-test at α with the per-sample sd
 * measured in this run (rule b), and the normal approximation of P(mean ≥ 0.06) (rule a). The
 * per-verdict time is compared with tests/fixtures/verdict/gen.py on the same input (spawned python3).
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pyMean, pyMedian } from '../judge/py-numbers.ts';
import { decideVerdict, marginVerdict, DEFAULT_WIN_MARGIN_V1 } from '../judge/verdict.ts';
import { bootstrapLcbExceeds, bootstrapSeed, noiseFloor, normalInvCdf, pairedDeltasV1, pairedSummary } from '../judge/verdict-stats.ts';

const V = 128;
const JUDGES = 3;
/** Sample-level sd on the d scale. */
const SIGMA_SAMPLE = 0.305;
/** Per-judge disagreement sd on the d scale. */
const SIGMA_JUDGE = 0.25;
/** Intra-trajectory correlation of the clustered variant. */
const ICC = 0.2;
const TURNS_PER_TRAJECTORY = 10;
const AA_HISTORY = 20;
const CROSS_CHECK_EVERY = 40;
const SAMPLE_SEED = '0x7a3d2c1b0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b';
const WORKER_ENV = 'ALBEDO_BENCH_VERDICT_WORKER';

interface Scenario {
  readonly name: string;
  /** Target E[d]. */
  readonly effect: number;
  /** Latent shift μ solved for `effect`. */
  readonly shift: number;
  readonly clustered: boolean;
  readonly trials: number;
}

interface Tally {
  trials: number;
  marginWins: number;
  lcbWins: number;
  /** Clustered scenarios: rule (b) against δ0 from 20 A/A duels. */
  lcbFloorWins: number;
  /** Clustered scenarios: the cluster (trajectory) bootstrap against δ0 = 0. */
  lcbClusterWins: number;
  sumMeanD: number;
  sumSd: number;
  sumDelta0: number;
  crossChecked: number;
  crossCheckMismatches: number;
}

function emptyTally(): Tally {
  return { trials: 0, marginWins: 0, lcbWins: 0, lcbFloorWins: 0, lcbClusterWins: 0, sumMeanD: 0, sumSd: 0, sumDelta0: 0, crossChecked: 0, crossCheckMismatches: 0 };
}

/** mulberry32, seeded from a string, with Box–Muller normals: cheap and reproducible per trial. */
function normalSource(label: string): () => number {
  let a = createHash('sha256').update(label).digest().readUInt32LE(0);
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const phi = 2 * Math.PI * uniform();
    spare = r * Math.sin(phi);
    return r * Math.cos(phi);
  };
}

function judgeMean(e: number): number {
  return Math.min(10, Math.max(0, Math.round(((e + 1) / 2) * 10))) / 10;
}

interface SimulatedDuel {
  readonly sampleScores: number[];
  readonly scoreChallenger: number;
}

function simulateDuel(normal: () => number, shift: number, clustered: boolean): SimulatedDuel {
  const perJudge: number[][] = Array.from({ length: JUDGES }, () => []);
  const sampleScores: number[] = [];
  let cluster = 0;
  for (let i = 0; i < V; i++) {
    if (i % TURNS_PER_TRAJECTORY === 0) cluster = normal();
    const u = clustered ? SIGMA_SAMPLE * (Math.sqrt(ICC) * cluster + Math.sqrt(1 - ICC) * normal()) : SIGMA_SAMPLE * normal();
    const means: number[] = [];
    for (let j = 0; j < JUDGES; j++) {
      const m = judgeMean(shift + u + SIGMA_JUDGE * normal());
      means.push(m);
      perJudge[j]?.push(m);
    }
    sampleScores.push(pyMean(means));
  }
  return { sampleScores, scoreChallenger: pyMedian(perJudge.map((m) => pyMean(m))) };
}

/** E[d] at latent shift μ, by Monte Carlo with common random numbers (so it is monotone in μ). */
function expectedDelta(shift: number, draws: Float64Array): number {
  let acc = 0;
  const n = draws.length / (1 + JUDGES);
  for (let i = 0; i < n; i++) {
    const u = SIGMA_SAMPLE * (draws[i * 4] as number);
    let s = 0;
    for (let j = 1; j <= JUDGES; j++) s += judgeMean(shift + u + SIGMA_JUDGE * (draws[i * 4 + j] as number));
    acc += (2 * s) / JUDGES - 1;
  }
  return acc / n;
}

function solveShift(effect: number, draws: Float64Array): number {
  if (effect === 0) return 0; // symmetric model: μ = 0 gives E[d] = 0 exactly
  let lo = effect - 0.1;
  let hi = effect + 0.1;
  for (let k = 0; k < 40; k++) {
    const mid = (lo + hi) / 2;
    if (expectedDelta(mid, draws) < effect) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function sd(values: readonly number[]): number {
  let mean = 0;
  for (const x of values) mean += x;
  mean /= values.length;
  let ss = 0;
  for (const x of values) ss += (x - mean) ** 2;
  return Math.sqrt(ss / (values.length - 1));
}

/** Trajectory of each sample in the clustered model (13 trajectories × 10 turns, as the v1 sampler draws). */
const TRAJECTORY_LABELS: readonly string[] = Array.from({ length: V }, (_, i) => `t${Math.floor(i / TURNS_PER_TRAJECTORY)}`);

function runTrial(scenario: Scenario, k: number, tally: Tally): void {
  const normal = normalSource(`bench-verdict:${scenario.name}:${k}`);
  const duel = simulateDuel(normal, scenario.shift, scenario.clustered);
  const deltas = pairedDeltasV1(duel.sampleScores);
  const evalRunId = `trial-${scenario.name}-${k}`;
  const seed = bootstrapSeed(SAMPLE_SEED, evalRunId);
  const margin = marginVerdict({ scoreChallenger: duel.scoreChallenger, scoreKing: 1 - duel.scoreChallenger, margin: DEFAULT_WIN_MARGIN_V1 }).challengerWon;
  const lcb = bootstrapLcbExceeds(deltas, { seed, threshold: 0 });
  let aaMargins: number[] = [];
  let lcbFloor = false;
  if (scenario.clustered) {
    aaMargins = Array.from({ length: AA_HISTORY }, () => pyMean(pairedDeltasV1(simulateDuel(normal, 0, true).sampleScores)));
    const floor = noiseFloor(aaMargins).delta0;
    tally.sumDelta0 += floor;
    // δ0 ≥ 0 here, so a bound that does not clear 0 cannot clear δ0 either.
    lcbFloor = lcb && bootstrapLcbExceeds(deltas, { seed, threshold: floor });
    // The product extension: resample whole trajectories (the sampler's rows), δ0 = 0.
    if (bootstrapLcbExceeds(deltas, { seed, threshold: 0, clusters: TRAJECTORY_LABELS })) tally.lcbClusterWins += 1;
  }
  tally.trials += 1;
  if (margin) tally.marginWins += 1;
  if (lcb) tally.lcbWins += 1;
  if (lcbFloor) tally.lcbFloorWins += 1;
  let mean = 0;
  for (const d of deltas) mean += d;
  tally.sumMeanD += mean / V;
  tally.sumSd += sd(deltas);
  if (k % CROSS_CHECK_EVERY === 0) {
    // The real rule, end to end: the fast path must give the very same decisions.
    const input = { evalRunId, sampleSeed: SAMPLE_SEED, scoreChallenger: duel.scoreChallenger, sampleScores: duel.sampleScores, totalTurns: V, scoringInputsHash: 'sha256:bench' };
    const plain = decideVerdict(input, { policy: 'margin+lcb' });
    let agree = plain.marginPassed === margin && plain.lcbPassed === lcb;
    if (scenario.clustered) agree &&= decideVerdict({ ...input, aaMargins }, { policy: 'lcb' }).lcbPassed === lcbFloor;
    tally.crossChecked += 1;
    if (!agree) tally.crossCheckMismatches += 1;
  }
}

function addTally(into: Tally, from: Tally): void {
  for (const key of Object.keys(into) as (keyof Tally)[]) into[key] += from[key];
}

interface WorkerJob {
  readonly scenario: Scenario;
  readonly from: number;
  readonly to: number;
}

function runWorker(): void {
  process.on('message', (job: WorkerJob | 'exit') => {
    if (job === 'exit') {
      process.disconnect();
      return;
    }
    const tally = emptyTally();
    for (let k = job.from; k < job.to; k++) runTrial(job.scenario, k, tally);
    process.send?.(tally);
  });
}

if (process.env[WORKER_ENV] === '1') runWorker();

/** Runs the trials of every scenario on `workers` child processes (chunks of 50 trials, work-stealing). */
async function runScenarios(scenarios: readonly Scenario[], workers: number): Promise<Tally[]> {
  const CHUNK = 50;
  const queue: { index: number; job: WorkerJob }[] = [];
  scenarios.forEach((scenario, index) => {
    for (let from = 0; from < scenario.trials; from += CHUNK) queue.push({ index, job: { scenario, from, to: Math.min(scenario.trials, from + CHUNK) } });
  });
  const tallies = scenarios.map(() => emptyTally());
  const children: ChildProcess[] = Array.from({ length: workers }, () =>
    fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], env: { ...process.env, [WORKER_ENV]: '1' }, stdio: 'inherit' }),
  );
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve, reject) => {
          let current: number | null = null;
          const next = (): void => {
            const item = queue.shift();
            if (!item) {
              child.send('exit');
              resolve();
              return;
            }
            current = item.index;
            child.send(item.job);
          };
          child.on('message', (tally: Tally) => {
            if (current !== null) addTally(tallies[current] as Tally, tally);
            next();
          });
          child.on('error', reject);
          child.on('exit', (code) => {
            if (code !== 0 && code !== null) reject(new Error(`bench worker exited with ${code}`));
          });
          next();
        }),
    ),
  );
  return tallies;
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf, |error| < 1.5e-7): enough for a printed reference rate. */
function normalCdf(x: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
  return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

/** rate ± 95 % half-width (normal approximation of a binomial proportion). */
function rateCi(wins: number, trials: number): string {
  const p = wins / trials;
  const half = 1.96 * Math.sqrt((p * (1 - p)) / trials);
  return `${pct(p)} ±${(100 * half).toFixed(1)}`;
}

function parseArgs(args: readonly string[]): { aa: number; ab: number; clustered: number; workers: number } {
  const out = { aa: 1500, ab: 700, clustered: 400, workers: Math.max(1, Math.min(2, availableParallelism())) };
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i]?.replace(/^--/, '') as keyof typeof out;
    const value = Number(args[i + 1]);
    if (!(key in out) || !Number.isSafeInteger(value) || value < (key === 'clustered' ? 0 : 1)) {
      throw new Error(`usage: npm run bench -- verdict [--aa N] [--ab N] [--clustered N] [--workers N] (bad ${args[i]} ${args[i + 1]})`);
    }
    out[key] = value;
  }
  return out;
}

function timeVerdict(sampleScores: number[], scoreChallenger: number): { tsMs: number; pyMs: number | null; same: boolean | null; pyVersion: string | null } {
  const input = { evalRunId: 'timing-run', sampleSeed: SAMPLE_SEED, scoreChallenger, sampleScores, totalTurns: V, scoringInputsHash: 'sha256:bench' };
  decideVerdict(input); // warm-up
  const times: number[] = [];
  let record = decideVerdict(input);
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    record = decideVerdict(input);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const tsMs = times[3] as number;
  const py = spawnSync('python3', [fileURLToPath(new URL('../tests/fixtures/verdict/gen.py', import.meta.url)), '--time'], {
    input: JSON.stringify({ scores: sampleScores, seed: record.bootstrapSeed, B: record.bootstrapReplicates, alpha: record.alpha, repeat: 3 }),
    encoding: 'utf8',
  });
  if (py.status !== 0) return { tsMs, pyMs: null, same: null, pyVersion: null };
  const out = JSON.parse(py.stdout) as { winLcb: number; cltLcb: number | null; seconds: number[]; python: string };
  const pyMs = 1000 * Math.min(...out.seconds);
  return { tsMs, pyMs, same: out.winLcb === record.winLcb && out.cltLcb === record.cltLcb, pyVersion: out.python };
}

export async function main(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  const started = performance.now();
  const calibration = normalSource('bench-verdict:calibration');
  const draws = Float64Array.from({ length: 60_000 * (1 + JUDGES) }, () => calibration());
  const effects = [0, 0.03, 0.05, 0.08];
  const shifts = new Map(effects.map((e) => [e, solveShift(e, draws)]));
  const shiftOf = (e: number): number => shifts.get(e) ?? e;
  const scenarios: Scenario[] = [
    { name: 'A/A', effect: 0, shift: 0, clustered: false, trials: opts.aa },
    ...effects.slice(1).map((e) => ({ name: `+${Math.round(e * 100)}`, effect: e, shift: shiftOf(e), clustered: false, trials: opts.ab })),
  ];
  if (opts.clustered > 0) {
    scenarios.push({ name: 'A/A clustered', effect: 0, shift: 0, clustered: true, trials: opts.clustered });
    scenarios.push({ name: '+8 clustered', effect: 0.08, shift: shiftOf(0.08), clustered: true, trials: opts.clustered });
  }
  const tallies = await runScenarios(scenarios, opts.workers);
  const simSeconds = (performance.now() - started) / 1000;

  const z = normalInvCdf(0.95);
  const sigma = (tallies[0] as Tally).sumSd / (tallies[0] as Tally).trials;
  const lines: string[] = [];
  lines.push(`verdict calibration: V = ${V}, 3 judges × 5 metrics, B = 10,000, α = 0.05, margin ${DEFAULT_WIN_MARGIN_V1}; ${opts.workers} worker(s), ${simSeconds.toFixed(0)} s`);
  lines.push(`noise: per-sample sd(d) measured ${sigma.toFixed(3)} (target 0.34); "points" = percentage points of E[d] = score_challenger − score_king`);
  lines.push('');
  lines.push('iid samples       | E[d] target → realised | trials | rule (a) margin ≥ 0.06 (ref normal approx) | rule (b) LCB > δ0=0 (ref ideal z-test)');
  for (const [i, scenario] of scenarios.entries()) {
    if (scenario.clustered) continue;
    const t = tallies[i] as Tally;
    const realised = t.sumMeanD / t.trials;
    const se = sigma / Math.sqrt(V);
    const refMargin = 1 - normalCdf((DEFAULT_WIN_MARGIN_V1 - scenario.effect) / se);
    const refLcb = 1 - normalCdf(z - scenario.effect / se);
    const kind = scenario.effect === 0 ? 'false crowns' : 'power';
    lines.push(
      `${`${scenario.name} ${kind}`.padEnd(17)} | ${(100 * scenario.effect).toFixed(1).padStart(4)} → ${(100 * realised).toFixed(2).padStart(5)} pts      | ${String(t.trials).padStart(6)} | ${rateCi(t.marginWins, t.trials).padStart(13)} (${pct(refMargin)})`.padEnd(95) +
        ` | ${rateCi(t.lcbWins, t.trials).padStart(13)} (${pct(refLcb)})`,
    );
  }
  const clustered = scenarios.map((s, i) => ({ s, t: tallies[i] as Tally })).filter(({ s }) => s.clustered);
  if (clustered.length > 0) {
    lines.push('');
    lines.push(`clustered (13 trajectories × 10 turns, ICC ${ICC}) | trials | rule (a) | rule (b) δ0 = 0 | rule (b) δ0 = max(0, q95 of 20 A/A) [mean δ0] | cluster bootstrap δ0 = 0`);
    for (const { s, t } of clustered) {
      lines.push(
        `${`${s.name} ${s.effect === 0 ? 'false crowns' : 'power'}`.padEnd(50)} | ${String(t.trials).padStart(6)} | ${rateCi(t.marginWins, t.trials)} | ${rateCi(t.lcbWins, t.trials)} | ${rateCi(t.lcbFloorWins, t.trials)} [${(100 * (t.sumDelta0 / t.trials)).toFixed(1)} pts] | ${rateCi(t.lcbClusterWins, t.trials)}`,
      );
    }
  }
  const cross = tallies.reduce((acc, t) => ({ n: acc.n + t.crossChecked, bad: acc.bad + t.crossCheckMismatches }), { n: 0, bad: 0 });
  lines.push('');
  lines.push(`full decideVerdict cross-check of the early-exit path: ${cross.n - cross.bad}/${cross.n} trials agree${cross.bad > 0 ? '  <-- MISMATCH' : ''}`);

  const aa = tallies[0] as Tally;
  const plus8 = tallies[scenarios.findIndex((s) => s.name === '+8')] as Tally;
  const falseCrowns = aa.lcbWins / aa.trials;
  const power8 = plus8.lcbWins / plus8.trials;
  const fcHalf = 1.96 * Math.sqrt((falseCrowns * (1 - falseCrowns)) / aa.trials);
  const met = falseCrowns <= 0.05 && power8 >= 0.8;
  lines.push(
    `goal, rule (b), iid model: false crowns ≤ 5 % (measured ${pct(falseCrowns)}, 95 % CI up to ${pct(falseCrowns + fcHalf)}) and power ≥ 80 % at +8 points (measured ${pct(power8)}): ${met ? 'MET' : 'NOT MET'}`,
  );
  lines.push(
    `rule (a) for comparison: false crowns ${pct(aa.marginWins / aa.trials)}, power at +8 points ${pct(plus8.marginWins / plus8.trials)}`,
  );

  // Time per verdict on one realistic input (the first +8 duel).
  const duel = simulateDuel(normalSource('bench-verdict:+8:0'), shiftOf(0.08), false);
  const timing = timeVerdict(duel.sampleScores, duel.scoreChallenger);
  const summary = pairedSummary(pairedDeltasV1(duel.sampleScores));
  lines.push('');
  if (timing.pyMs === null) {
    lines.push(`time per verdict (B = 10,000, V = 128): ${timing.tsMs.toFixed(1)} ms; reference python3 gen.py --time: unavailable`);
  } else {
    lines.push(
      `time per verdict (B = 10,000, V = 128, full decideVerdict): ${timing.tsMs.toFixed(1)} ms vs Python ${timing.pyVersion} reference ${timing.pyMs.toFixed(0)} ms on the same input: ${(timing.pyMs / timing.tsMs).toFixed(1)}× faster; win_lcb and clt_lcb identical: ${timing.same ? 'yes' : 'NO'} (mean(d) ${summary.meanD.toFixed(4)}, clt_lcb ${summary.cltLcb?.toFixed(4)})`,
    );
  }
  lines.push(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
