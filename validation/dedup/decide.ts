/**
 * The dedup decision (spec/validation.md §9 steps 1–3) for one candidate model.
 *
 * Divergence reference set — a deliberate, documented narrowing of "every validated model": the
 * rule compares against (a) the `divergenceNeighbours` nearest indexed models by norm-vector cosine,
 * (b) the live references the caller passes (the 5 kings and the genesis, sampled under the
 * candidate's commit-block-hash salt), and (c) every indexed model of the candidate's coldkey.
 * Why that is enough: a copy made by adding noise keeps per-tensor norms within the noise level, so
 * its norm-vector cosine to its source stays ≈ 1 − O(noise²) and the source is always among the
 * nearest neighbours; and comparing dim × 256 samples (≈ 3 MB per model at dim 3000) against every
 * stored model on every submission grows without bound, while the neighbourhood is constant work.
 */
import { type StageFault, stageFault } from '../../core/faults.ts';
import { DIVERGENCE_CORPUS_SALT, type DivergenceSamples, type LayerFingerprint } from '../fingerprint-types.ts';
import {
  DEFAULT_DIVERGENCE_NEIGHBOURS,
  DEFAULT_KNN_CANDIDATES,
  DEFAULT_MIN_DIVERGENCE,
  DEFAULT_SAME_COLDKEY_STRICT,
  DEFAULT_SIM_THRESHOLD,
  type DedupIndex,
  type KnnCandidate,
} from './index.ts';
import { divergence, similarity } from './similarity.ts';

/** Same-coldkey models compared by the divergence rule, at most. @default 256 */
export const DEFAULT_MAX_SAME_COLDKEY = 256;

export interface DedupCandidate {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string | null;
  readonly weights_hash: string;
  readonly fingerprint: LayerFingerprint;
  /** The candidate's samples: under the corpus salt, plus each salt used by `liveReferences`. */
  readonly samples: readonly DivergenceSamples[];
}

/** A king or the genesis, sampled by the caller from local weights under the candidate's salt. */
export interface LiveReference {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string | null;
  readonly samples: DivergenceSamples;
}

export interface DedupRules {
  /** @default DEFAULT_KNN_CANDIDATES */
  readonly knnCandidates?: number;
  /** @default DEFAULT_SIM_THRESHOLD */
  readonly simThreshold?: number;
  /** @default DEFAULT_MIN_DIVERGENCE */
  readonly minDivergence?: number;
  /** @default DEFAULT_SAME_COLDKEY_STRICT */
  readonly sameColdkeyStrict?: boolean;
  /** @default DEFAULT_DIVERGENCE_NEIGHBOURS */
  readonly divergenceNeighbours?: number;
  /** @default DEFAULT_MAX_SAME_COLDKEY */
  readonly maxSameColdkey?: number;
}

export interface DedupFaultDetail {
  readonly reason: 'exact_weights_match' | 'similarity' | 'divergence';
  readonly similarity: number;
  readonly threshold: number;
  readonly duplicate_of: string;
  readonly duplicate_of_hotkey: string;
  readonly duplicate_of_coldkey: string | null;
  readonly same_coldkey: boolean;
  readonly candidates_checked: number;
  readonly exact_weights_match: boolean;
  readonly divergence: number | null;
}

export interface DedupPassDetail {
  readonly similarity: number;
  readonly threshold: number;
  /** Smallest divergence measured (null when no reference had samples). */
  readonly divergence: number | null;
  readonly min_divergence: number;
  readonly nearest_model_uri: string | null;
  readonly candidates_checked: number;
}

export type DedupDecision =
  | { readonly ok: true; readonly detail: DedupPassDetail }
  | { readonly ok: false; readonly fault: StageFault; readonly detail: DedupFaultDetail | null };

function sameColdkey(a: string | null, b: string | null): boolean {
  return a !== null && b !== null && a === b;
}

interface Reference {
  readonly model_uri: string;
  readonly hotkey: string;
  readonly coldkey: string | null;
  /** Loads the reference's samples under the salt it is compared with. */
  readonly load: () => Promise<DivergenceSamples | null>;
  readonly salt: string;
}

/** Runs §9 steps 1–3. Backend errors become INFRA `dedup_backend_failed` (retryable). */
export async function decideDedup(candidate: DedupCandidate, index: DedupIndex, rules: DedupRules = {}, liveReferences: readonly LiveReference[] = []): Promise<DedupDecision> {
  try {
    return await decide(candidate, index, rules, liveReferences);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, fault: stageFault('INFRA_FAULT', 'dedup_backend_failed', `dedup backend failed: ${message}`), detail: null };
  }
}

async function decide(candidate: DedupCandidate, index: DedupIndex, rules: DedupRules, liveReferences: readonly LiveReference[]): Promise<DedupDecision> {
  const threshold = rules.simThreshold ?? DEFAULT_SIM_THRESHOLD;
  const k = rules.knnCandidates ?? DEFAULT_KNN_CANDIDATES;
  const minDivergence = rules.minDivergence ?? DEFAULT_MIN_DIVERGENCE;
  const strict = rules.sameColdkeyStrict ?? DEFAULT_SAME_COLDKEY_STRICT;
  const neighbours = rules.divergenceNeighbours ?? DEFAULT_DIVERGENCE_NEIGHBOURS;

  // 1. Exact gate.
  const exact = await index.findExact(candidate.weights_hash, candidate.hotkey);
  if (exact) {
    const detail: DedupFaultDetail = {
      reason: 'exact_weights_match',
      similarity: 1.0,
      threshold,
      duplicate_of: exact.model_uri,
      duplicate_of_hotkey: exact.hotkey,
      duplicate_of_coldkey: exact.coldkey,
      same_coldkey: sameColdkey(candidate.coldkey, exact.coldkey),
      candidates_checked: 0,
      exact_weights_match: true,
      divergence: null,
    };
    return { ok: false, fault: stageFault('MINER_FAULT', 'duplicate', `duplicate of ${exact.model_uri}: exact weights match (weights_hash)`), detail };
  }

  // 2. Near-duplicate: the K nearest by norm-vector cosine, different hotkey only (the spec's kNN
  // query with k = K, exactly; the wider divergence neighbourhood is a second query below).
  const fp = candidate.fingerprint;
  const dim = fp.layer_keys.length;
  const notSelf = (h: KnnCandidate) => h.model_uri !== candidate.model_uri;
  const hits = (await index.knn(dim, fp.norm_vector, k)).filter(notSelf);
  let best: { similarity: number; hit: KnnCandidate } | null = null;
  let checked = 0;
  for (const hit of hits) {
    if (hit.hotkey === candidate.hotkey) continue;
    checked++;
    const s = similarity(fp, hit.fingerprint);
    if (!best || s > best.similarity) best = { similarity: s, hit };
  }
  const bestSimilarity = best?.similarity ?? 0;
  if (best && best.similarity >= threshold) {
    const detail: DedupFaultDetail = {
      reason: 'similarity',
      similarity: best.similarity,
      threshold,
      duplicate_of: best.hit.model_uri,
      duplicate_of_hotkey: best.hit.hotkey,
      duplicate_of_coldkey: best.hit.coldkey,
      same_coldkey: sameColdkey(candidate.coldkey, best.hit.coldkey),
      candidates_checked: checked,
      exact_weights_match: false,
      divergence: null,
    };
    const message = `duplicate of ${best.hit.model_uri}: similarity ${best.similarity.toFixed(6)} >= ${threshold} threshold`;
    return { ok: false, fault: stageFault('MINER_FAULT', 'duplicate', message), detail };
  }

  // 3. Divergence against neighbourhood ∪ live references ∪ same-coldkey models (module comment).
  const references = new Map<string, Reference>();
  const stored = (r: { model_uri: string; hotkey: string; coldkey: string | null }): Reference => ({
    ...r,
    salt: DIVERGENCE_CORPUS_SALT,
    load: () => index.samples(r.model_uri, DIVERGENCE_CORPUS_SALT),
  });
  const neighbourhood = neighbours > k ? (await index.knn(dim, fp.norm_vector, neighbours)).filter(notSelf) : hits.slice(0, neighbours);
  for (const hit of neighbourhood) if (hit.hotkey !== candidate.hotkey) references.set(`${DIVERGENCE_CORPUS_SALT}\0${hit.model_uri}`, stored(hit));
  if (candidate.coldkey !== null) {
    for (const member of await index.byColdkey(candidate.coldkey, rules.maxSameColdkey ?? DEFAULT_MAX_SAME_COLDKEY)) {
      if (member.hotkey !== candidate.hotkey && member.model_uri !== candidate.model_uri) references.set(`${DIVERGENCE_CORPUS_SALT}\0${member.model_uri}`, stored(member));
    }
  }
  for (const live of liveReferences) {
    if (live.hotkey === candidate.hotkey) continue;
    references.set(`${live.samples.salt}\0${live.model_uri}`, { ...live, salt: live.samples.salt, load: async () => live.samples });
  }

  const ownSamples = new Map(candidate.samples.map((s) => [s.salt, s]));
  let nearest: { reference: Reference; divergence: number } | null = null;
  let violation: { reference: Reference; divergence: number; floor: number } | null = null;
  for (const reference of references.values()) {
    const own = ownSamples.get(reference.salt);
    if (!own) continue;
    const theirs = await reference.load();
    if (!theirs) continue; // fingerprinted before divergence samples existed
    const d = divergence(own, theirs);
    if (!nearest || d < nearest.divergence) nearest = { reference, divergence: d };
    // The strict floor is applied to every same-coldkey reference, not only when it is the nearest:
    // a superset of the spec's "nearest reference" wording that cannot be dodged by also uploading
    // a slightly closer model under another coldkey.
    const floor = strict && sameColdkey(candidate.coldkey, reference.coldkey) ? 2 * minDivergence : minDivergence;
    if (d < floor && (!violation || d < violation.divergence)) violation = { reference, divergence: d, floor };
  }

  if (violation) {
    const ref = violation.reference;
    const same = sameColdkey(candidate.coldkey, ref.coldkey);
    const detail: DedupFaultDetail = {
      reason: 'divergence',
      similarity: bestSimilarity,
      threshold,
      duplicate_of: ref.model_uri,
      duplicate_of_hotkey: ref.hotkey,
      duplicate_of_coldkey: ref.coldkey,
      same_coldkey: same,
      candidates_checked: checked,
      exact_weights_match: false,
      divergence: violation.divergence,
    };
    const message =
      `too similar to ${ref.model_uri}: weight divergence ${violation.divergence.toExponential(3)} < ${violation.floor} minimum` +
      (same ? ` (same coldkey ${ref.coldkey}, hotkey ${ref.hotkey}${violation.floor !== minDivergence ? ', strict floor doubled' : ''})` : '');
    return { ok: false, fault: stageFault('MINER_FAULT', 'too_similar', message), detail };
  }
  return {
    ok: true,
    detail: {
      similarity: bestSimilarity,
      threshold,
      divergence: nearest?.divergence ?? null,
      min_divergence: minDivergence,
      nearest_model_uri: nearest?.reference.model_uri ?? null,
      candidates_checked: checked,
    },
  };
}
