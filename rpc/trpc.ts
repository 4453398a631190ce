import { initTRPC, TRPCError } from '@trpc/server';
import { AlbedoError } from '../core/faults.ts';
import { allows, type Principal, type Role } from './auth.ts';

export interface RpcContext {
  readonly principal: Principal | null;
  readonly publicReads: boolean;
}

const t = initTRPC.context<RpcContext>().create({
  errorFormatter({ shape, error }) {
    // Never ship stack traces or driver messages to clients: only our own AlbedoError texts and
    // zod's field paths leave the server.
    const cause = error.cause;
    const zodIssues = cause && typeof cause === 'object' && 'issues' in cause ? (cause as { issues: unknown }).issues : undefined;
    const albedo = cause instanceof AlbedoError ? cause : undefined;
    return {
      ...shape,
      message: albedo ? albedo.message : error.code === 'INTERNAL_SERVER_ERROR' ? 'internal error' : shape.message,
      data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, albedoCode: albedo?.code ?? null, zodIssues: zodIssues ?? null },
    };
  },
});

export const router = t.router;

/** Maps our boundary errors to tRPC codes; unknown errors become INTERNAL_SERVER_ERROR. */
const normaliseErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof AlbedoError) {
    const e = result.error.cause;
    const code = e.code === 'NOT_FOUND' ? 'NOT_FOUND' : e.code === 'UNAUTHORIZED' ? 'UNAUTHORIZED' : e.code === 'STALE_EPOCH' || e.code === 'CONFLICT' ? 'CONFLICT' : e.code === 'BAD_INPUT' ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR';
    throw new TRPCError({ code, message: e.message, cause: e });
  }
  return result;
});

function requireRole(role: Role) {
  return t.middleware(({ ctx, next }) => {
    if (!allows(ctx.principal, role, ctx.publicReads)) {
      throw new TRPCError({ code: ctx.principal ? 'FORBIDDEN' : 'UNAUTHORIZED', message: `requires a ${role} token` });
    }
    return next();
  });
}

const base = t.procedure.use(normaliseErrors);
export const readerProcedure = base.use(requireRole('reader'));
export const operatorProcedure = base.use(requireRole('operator'));
export const backendProcedure = base.use(requireRole('backend'));
export const nodeProcedure = base.use(requireRole('node'));
