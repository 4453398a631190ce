import type { AttemptKey } from '../core/ids.ts';
import type { Db } from '../persistence/db.ts';

/** A host with no heartbeat for this long is OFFLINE and never selected (spec §4.6). @default 120000 */
export const NODE_OFFLINE_AFTER_MS = 120_000;

export interface NodeHello {
  readonly role: 'PRE_EVAL' | 'EVAL';
  readonly gpuCount: number;
  readonly maxConcurrent: number;
  readonly acceleratorType?: string;
  readonly capabilities: Record<string, unknown>;
}

export interface Assignment {
  readonly attemptKey: AttemptKey;
  readonly stage: 'PRE_EVAL' | 'EVAL';
  readonly epoch: string;
  readonly input: Record<string, unknown>;
}

/**
 * GPU nodes that dialled in over their authenticated link. The registry row is maintained by the
 * node's own hello/heartbeats (upstream's table was static); leases of the attempts a node says it
 * runs are renewed from its heartbeat, which is also what the sweeper's reconciler asks.
 */
export class NodeRegistry {
  private readonly running = new Map<string, { keys: Set<string>; at: number }>();

  constructor(private readonly db: Db, private readonly leaseMsOf: (stage: string) => number) {}

  async hello(nodeId: string, h: NodeHello): Promise<void> {
    await this.db.query(
      `INSERT INTO remote_gpu_hosts (id, role, state, gpu_count, free_gpu_count, accelerator_type, capabilities, max_concurrent, last_heartbeat_at, last_health)
       VALUES ($1, $2, 'READY', $3, $3, $4, $5, $6, now(), '{}')
       ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role, state = 'READY', gpu_count = EXCLUDED.gpu_count, accelerator_type = EXCLUDED.accelerator_type,
         capabilities = EXCLUDED.capabilities, max_concurrent = EXCLUDED.max_concurrent, last_heartbeat_at = now()`,
      [nodeId, h.role, h.gpuCount, h.acceleratorType ?? null, h.capabilities, h.maxConcurrent],
    );
  }

  /** Records what the node runs, renews those leases, and returns attempts the node must stop. */
  async heartbeat(nodeId: string, runningKeys: readonly AttemptKey[]): Promise<{ cancel: AttemptKey[] }> {
    this.running.set(nodeId, { keys: new Set(runningKeys), at: Date.now() });
    await this.db.query("UPDATE remote_gpu_hosts SET last_heartbeat_at = now(), state = CASE WHEN state = 'OFFLINE' THEN 'READY' ELSE state END WHERE id = $1", [nodeId]);
    if (runningKeys.length === 0) return { cancel: [] };
    const { rows } = await this.db.query<{ attempt_key: AttemptKey; state: string; cancel_requested_at: Date | null; stage: string }>(
      'SELECT attempt_key, state, cancel_requested_at, stage FROM stage_attempts WHERE attempt_key = ANY($1::text[]) AND worker_id = $2',
      [runningKeys, nodeId],
    );
    const cancel: AttemptKey[] = [];
    const live: AttemptKey[] = [];
    const known = new Set(rows.map((r) => r.attempt_key));
    for (const k of runningKeys) if (!known.has(k)) cancel.push(k);
    for (const r of rows) (r.state !== 'RUNNING' || r.cancel_requested_at ? cancel : live).push(r.attempt_key);
    for (const r of rows) {
      if (r.state === 'RUNNING' && !r.cancel_requested_at) {
        await this.db.query(
          `UPDATE stage_attempts SET lease_expires_at = now() + make_interval(secs => $2::double precision / 1000), heartbeat_at = now()
           WHERE attempt_key = $1 AND state = 'RUNNING'`,
          [r.attempt_key, this.leaseMsOf(r.stage)],
        );
      }
    }
    return { cancel };
  }

  /** Reconciler question of the sweeper (spec §4.3): does the node still run this attempt? */
  isAlive(nodeId: string, key: AttemptKey): boolean {
    const r = this.running.get(nodeId);
    return !!r && Date.now() - r.at < NODE_OFFLINE_AFTER_MS && r.keys.has(key);
  }

  /** Dispatched, not yet accepted attempts of a node. */
  async pendingAssignments(nodeId: string): Promise<Assignment[]> {
    const { rows } = await this.db.query<{ attempt_key: AttemptKey; stage: 'PRE_EVAL' | 'EVAL'; lease_token: string; input_snapshot: Record<string, unknown> }>(
      `SELECT attempt_key, stage, lease_token, input_snapshot FROM stage_attempts
       WHERE worker_id = $1 AND state = 'RUNNING' AND dispatched_at IS NOT NULL AND remote_run_id IS NULL ORDER BY started_at LIMIT 64`,
      [nodeId],
    );
    return rows.map((r) => ({ attemptKey: r.attempt_key, stage: r.stage, epoch: r.lease_token, input: r.input_snapshot ?? {} }));
  }

  /** The node's explicit acknowledgement of an assignment (WS mutations are not retried for us). */
  async accept(nodeId: string, key: AttemptKey, epoch: string, runId: string): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE stage_attempts SET remote_run_id = coalesce(remote_run_id, $4), heartbeat_at = now()
       WHERE attempt_key = $1 AND worker_id = $2 AND lease_token = $3 AND state = 'RUNNING'`,
      [key, nodeId, epoch, runId],
    );
    return (r.rowCount ?? 0) > 0;
  }
}
