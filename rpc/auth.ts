import { createHash, timingSafeEqual } from 'node:crypto';

/** What a bearer token entitles its holder to. */
export type Role = 'reader' | 'operator' | 'backend' | 'node';

export interface Principal {
  readonly role: Role;
  /** Operator name or GPU node id, for audit trails. */
  readonly name: string;
}

export interface TokenEntry {
  readonly token: string;
  readonly principal: Principal;
}

/**
 * Constant-time token check: both sides are hashed first, so neither the length nor the content
 * of a configured token leaks through timing, and every entry is compared (no early exit).
 */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** `Authorization: Bearer <expected>`, compared with {@link tokensEqual}; an empty token never matches. */
export function bearerMatches(authorizationHeader: string | undefined, expectedToken: string): boolean {
  const header = authorizationHeader ?? '';
  const presented = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  return tokensEqual(presented, expectedToken) && presented.length > 0;
}

export class TokenRegistry {
  constructor(private readonly entries: readonly TokenEntry[]) {
    for (const e of entries) if (e.token.length < 16) throw new Error(`token for ${e.principal.role}:${e.principal.name} is shorter than 16 characters`);
  }

  /** The principal of a presented token, or null. Walks every entry regardless of matches. */
  authenticate(presented: string | null | undefined): Principal | null {
    if (!presented) return null;
    let found: Principal | null = null;
    for (const e of this.entries) if (tokensEqual(presented, e.token) && !found) found = e.principal;
    return found;
  }
}

/** Extracts the token of an `Authorization: Bearer <token>` header. */
export function bearerOf(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  const m = /^Bearer\s+(\S{1,512})$/i.exec(value.trim());
  return m?.[1] ?? null;
}

/** Which roles may call which procedure kinds: readers read; operators also act; nodes only their link. */
export function allows(principal: Principal | null, needed: Role, publicReads: boolean): boolean {
  if (needed === 'reader') {
    if (publicReads) return true;
    return principal !== null && (principal.role === 'reader' || principal.role === 'operator' || principal.role === 'backend');
  }
  if (!principal) return false;
  if (needed === 'operator') return principal.role === 'operator';
  return principal.role === needed;
}
