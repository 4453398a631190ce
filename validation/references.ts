import type { Db } from '../persistence/db.ts';
import type { LiveReference } from './dedup/decide.ts';
import { type ColdkeyMember, type DedupIndex, type ExactMatch, fingerprintDoc, type KnnCandidate } from './dedup/index.ts';
import { fingerprintModel, sampleModelWeights } from './fingerprint.ts';
import { type ModelCache, markerSha256 } from './model-cache.ts';
import { parseModelRef } from './model-ref.ts';
import type { ModelStore } from './model-store.ts';
import { VALIDATED_OR_LATER } from './hotkey-rules.ts';

/**
 * The dedup reference set of spec/validation.md §9: validated models, the genesis king and the
 * current kings. Two guarantees live here rather than in each backend:
 *
 * - {@link validatedReferences} drops index entries whose submission is not (or no longer) a
 *   reference: a fingerprint is indexed just before its attempt is finalised, so a crash in between
 *   could leave an entry for a model that never validated; it must not reject anyone.
 * - {@link liveReferences} compares the candidate with the kings and the genesis on local disk under
 *   the candidate's commit-block-hash salt, positions the miner could not know when uploading (§9.2).
 */

/** A model is a reference when validated or later, or while its digest is reserved by a running validation. */
async function referenceUris(db: Db, uris: readonly string[]): Promise<Set<string>> {
  if (uris.length === 0) return new Set();
  const { rows } = await db.query<{ model_uri: string }>(
    `SELECT DISTINCT model_uri FROM model_submissions
      WHERE model_uri = ANY($1::text[]) AND (state = ANY($2::text[]) OR (state = 'HIPPIUS_RUNNING' AND model_hash IS NOT NULL))`,
    [uris, VALIDATED_OR_LATER],
  );
  return new Set(rows.map((r) => r.model_uri));
}

/** The index seen through the reference-set rule (reads filtered; writes and health unchanged). */
export function validatedReferences(index: DedupIndex, db: Db): DedupIndex {
  const keep = async <T extends { model_uri: string }>(items: readonly T[]): Promise<T[]> => {
    const ok = await referenceUris(
      db,
      items.map((i) => i.model_uri),
    );
    return items.filter((i) => ok.has(i.model_uri));
  };
  return {
    health: () => index.health(),
    async findExact(weightsHash, excludeHotkey): Promise<ExactMatch | null> {
      const hit = await index.findExact(weightsHash, excludeHotkey);
      return hit && (await keep([hit])).length > 0 ? hit : null;
    },
    async knn(dim, vector, k): Promise<KnnCandidate[]> {
      return keep(await index.knn(dim, vector, k));
    },
    get: (uri) => index.get(uri),
    samples: (uri, salt) => index.samples(uri, salt),
    async byColdkey(coldkey, limit): Promise<ColdkeyMember[]> {
      return keep(await index.byColdkey(coldkey, limit));
    },
    index: (doc) => index.index(doc),
    close: () => index.close(),
  };
}

interface KingRow {
  model_uri: string;
  hotkey: string;
  coldkey: string | null;
}

/** The current kings and the genesis king (whatever slot, if any, it holds now). */
export async function kingsAndGenesis(db: Db): Promise<KingRow[]> {
  const { rows } = await db.query<KingRow>(
    `SELECT DISTINCT ms.model_uri, ms.hotkey, mi.coldkey
       FROM model_submissions ms
       LEFT JOIN miners mi ON mi.hotkey = ms.hotkey
      WHERE ms.id IN (SELECT m.submission_id FROM reigns r JOIN reign_members m ON m.reign_id = r.id WHERE r.state = 'ACTIVE'
                      UNION SELECT trigger_submission_id FROM reigns WHERE reason = 'GENESIS' AND trigger_submission_id IS NOT NULL)`,
  );
  return rows;
}

export interface LiveReferenceOptions {
  readonly db: Db;
  readonly cache: ModelCache;
  readonly store: ModelStore;
  readonly index: DedupIndex;
  /** The candidate's commit block hash. */
  readonly salt: string;
  readonly signal: AbortSignal;
  /** Fingerprint threads for a king that is not indexed yet (the genesis, on first use). */
  readonly threads?: number;
}

/**
 * The kings and the genesis with samples under `salt`. A king missing from the cache is downloaded
 * (they are protected from GC, so this happens after a fresh install); a king missing from the
 * index (the genesis never went through validation) is fingerprinted and indexed first, so the
 * exact and near-duplicate rules see it too.
 */
export async function liveReferences(o: LiveReferenceOptions): Promise<LiveReference[]> {
  const out: LiveReference[] = [];
  for (const king of await kingsAndGenesis(o.db)) {
    const parsed = parseModelRef(king.model_uri, { backends: ['hippius', 'hf'], allowMutableRef: true });
    if (!parsed.ok) continue;
    const ref = parsed.ref;
    const path = o.cache.modelPath(ref);
    let marker = await o.cache.readMarker(path);
    if (!marker) {
      const files = await o.store.listFiles(ref, o.signal);
      marker = (await o.cache.ensureModel(ref, o.store, files, { signal: o.signal })).marker;
    }
    const release = o.cache.acquire(ref);
    try {
      if (!(await o.index.get(king.model_uri))) {
        const fp = await fingerprintModel(path, {
          signal: o.signal,
          knownSha256: markerSha256(marker),
          ...(o.threads !== undefined ? { threads: o.threads } : {}),
        });
        await o.index.index(fingerprintDoc({ model_uri: king.model_uri, hotkey: king.hotkey, coldkey: king.coldkey, repo: ref.repo, digest: ref.digest }, fp));
      }
      out.push({ model_uri: king.model_uri, hotkey: king.hotkey, coldkey: king.coldkey, samples: await sampleModelWeights(path, o.salt, { signal: o.signal }) });
    } finally {
      release();
    }
  }
  return out;
}
