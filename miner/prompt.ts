/**
 * The confirmation prompt of the miner CLI (spec/miner-cli.md §2): `Proceed? [y/N]` accepts `y` / `yes`
 * (any case); anything else, an empty line or end of input declines. The question goes to stderr so
 * stdout stays machine readable. A non-interactive stdin cannot confirm: the caller must pass `--yes`.
 */
import { createInterface } from 'node:readline';

export const PROCEED_QUESTION = 'Proceed? [y/N] ';

/** stdin is not a terminal and `--yes` was not given. */
export class NonInteractiveError extends Error {
  override readonly name = 'NonInteractiveError';
  constructor() {
    super('stdin is not a terminal, so nothing can be confirmed; pass --yes to proceed without a prompt');
  }
}

/** Ctrl-C at the prompt: the CLI prints `aborted.` and exits 130. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
  constructor() {
    super('aborted.');
  }
}

export type PromptInput = NodeJS.ReadableStream & { isTTY?: boolean };

/** `y` / `yes` in any case, surrounding blanks ignored. */
export function isYes(answer: string): boolean {
  return /^(y|yes)$/i.test(answer.trim());
}

/** Throws {@link NonInteractiveError} when a prompt would be needed but stdin is not a terminal. */
export function assertCanPrompt(input: PromptInput = process.stdin): void {
  if (!input.isTTY) throw new NonInteractiveError();
}

/**
 * Asks `question` and resolves true only for a yes. Rejects with {@link NonInteractiveError} on a
 * non-TTY input and {@link InterruptedError} on Ctrl-C.
 */
export function confirm(question: string = PROCEED_QUESTION, opts: { input?: PromptInput; output?: NodeJS.WritableStream } = {}): Promise<boolean> {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stderr;
  if (!input.isTTY) return Promise.reject(new NonInteractiveError());
  const rl = createInterface({ input, output, terminal: false });
  output.write(question);
  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    rl.on('SIGINT', () => {
      if (settled) return;
      settled = true;
      rl.close();
      output.write('\n');
      reject(new InterruptedError());
    });
    rl.on('close', () => {
      if (settled) return;
      settled = true;
      output.write('\n');
      resolve(false); // end of input: no answer is a no
    });
    rl.once('line', (answer) => {
      if (settled) return;
      settled = true;
      rl.close();
      resolve(isYes(answer));
    });
  });
}
