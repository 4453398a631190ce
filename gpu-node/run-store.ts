import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageOutcome, StageProgress } from '../core/stage.ts';

/** One run as the node persists it (spec §9.15: a restarted host can still answer for its runs). */
export interface NodeRun {
  readonly attemptKey: string;
  readonly stage: 'PRE_EVAL' | 'EVAL';
  readonly epoch: string;
  readonly input: Record<string, unknown>;
  status: 'accepted' | 'running' | 'done';
  /** Last progress sequence number used. */
  seq: number;
  /** Progress events not yet acknowledged by the backend, re-sent after a reconnect. */
  unacked: Array<{ seq: number; progress: StageProgress }>;
  outcome: StageOutcome | null;
  outcomeAcked: boolean;
}

/**
 * Durable run records: one JSON file per attempt, written to a temp file and renamed, so a crash
 * never leaves a half-written record.
 */
export class RunStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private path(key: string): string {
    // Attempt keys are validated `<uuid>:<STAGE>:<n>`; ':' is replaced for portable file names.
    return join(this.dir, `${key.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);
  }

  save(run: NodeRun): void {
    const p = this.path(run.attemptKey);
    writeFileSync(`${p}.tmp`, JSON.stringify(run));
    renameSync(`${p}.tmp`, p);
  }

  load(key: string): NodeRun | null {
    try {
      return JSON.parse(readFileSync(this.path(key), 'utf8')) as NodeRun;
    } catch {
      return null;
    }
  }

  all(): NodeRun[] {
    const out: NodeRun[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as NodeRun);
      } catch {
        // A record that does not parse is from a crash during the very first write: ignore it.
      }
    }
    return out;
  }

  remove(key: string): void {
    rmSync(this.path(key), { force: true });
  }
}
