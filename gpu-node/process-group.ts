/**
 * Process-group helpers. We only ever signal a group whose id we recorded when WE spawned its leader
 * with `detached: true` (pgid = leader pid) — never by name pattern (pipeline.md §9 item 16).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Non-zombie members of process group `pgid`, from /proc (Linux). Null when /proc is unavailable. */
function liveMembersFromProc(pgid: number): number | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  let live = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we were scanning
    }
    // Format: pid (comm) state ppid pgrp … — comm may contain spaces/parens, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') live += 1;
  }
  return live;
}

/**
 * True while any non-zombie process remains in the group. Zombies are ignored: they cannot be
 * killed, and in containers whose PID 1 does not reap, orphans would otherwise look alive forever.
 */
export function processGroupAlive(pgid: number): boolean {
  const live = liveMembersFromProc(pgid);
  if (live !== null) return live > 0;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `signal` to the whole group; a group that is already gone is not an error. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): void {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** True if `pid` exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
}
