import { describe, expect, it } from 'vitest';
import {
  bpsToDecimal,
  buildReignPlan,
  buildWeightPayload,
  type Challenger,
  coronationWeightHash,
  coronationWeightPolicy,
  epochArrays,
  invalidWeightPayloadReason,
  periodicRefreshPolicy,
  periodicRefreshWeightHash,
  type ReignMember,
  refreshWindow,
  weightBpsForMemberCount,
} from './coronation.ts';

const member = (slot: number, tag: string, over: Partial<ReignMember> = {}): ReignMember => ({
  slot,
  kingVersionId: `kv-${tag}`,
  submissionId: `sub-${tag}`,
  hotkey: `hk-${tag}`,
  uid: slot * 10,
  modelHash: `sha256:${tag}`,
  ...over,
});
const challenger: Challenger = { kingVersionId: 'kv-new', submissionId: 'sub-new', hotkey: 'hk-new', uid: 99, modelHash: 'sha256:new' };

describe('weightBpsForMemberCount (coronation.md §2)', () => {
  it('splits 10000 equally, the first `10000 mod n` slots getting one extra bps', () => {
    expect(weightBpsForMemberCount(0)).toEqual([]);
    expect(weightBpsForMemberCount(1)).toEqual([10000]);
    expect(weightBpsForMemberCount(2)).toEqual([5000, 5000]);
    expect(weightBpsForMemberCount(3)).toEqual([3334, 3333, 3333]); // 10000 = 3·3333 + 1
    expect(weightBpsForMemberCount(4)).toEqual([2500, 2500, 2500, 2500]);
    expect(weightBpsForMemberCount(5)).toEqual([2000, 2000, 2000, 2000, 2000]);
    for (let n = 1; n <= 5; n++) expect(weightBpsForMemberCount(n).reduce((a, b) => a + b, 0)).toBe(10000);
  });

  it('refuses counts outside 0..5 and non-integers', () => {
    for (const n of [-1, 6, 1.5, Number.NaN]) expect(() => weightBpsForMemberCount(n)).toThrow(RangeError);
  });
});

describe('bpsToDecimal', () => {
  it('is the exact minimal decimal of bps/10000', () => {
    expect(bpsToDecimal(10000)).toBe('1');
    expect(bpsToDecimal(5000)).toBe('0.5');
    expect(bpsToDecimal(3334)).toBe('0.3334');
    expect(bpsToDecimal(3333)).toBe('0.3333');
    expect(bpsToDecimal(2000)).toBe('0.2');
    expect(bpsToDecimal(2500)).toBe('0.25');
    expect(bpsToDecimal(1)).toBe('0.0001');
    expect(bpsToDecimal(0)).toBe('0');
    expect(bpsToDecimal(15000)).toBe('1.5');
  });
});

describe('buildReignPlan (coronation.md §1 step 5)', () => {
  it('genesis alone: challenger in slot 1, genesis shifted to slot 2, 5000/5000', () => {
    const plan = buildReignPlan([member(1, 'g')], challenger);
    expect(plan.members.map((m) => [m.slot, m.kingVersionId, m.weightBps, m.isChallenger])).toEqual([
      [1, 'kv-new', 5000, true],
      [2, 'kv-g', 5000, false],
    ]);
    expect(plan.retired).toEqual([]);
  });

  it('three members: 3334 to the new king, 3333 to each of the others; continuing members keep their king version', () => {
    const plan = buildReignPlan([member(1, 'a'), member(2, 'b')], challenger);
    expect(plan.members.map((m) => [m.slot, m.kingVersionId, m.uid, m.weightBps])).toEqual([
      [1, 'kv-new', 99, 3334],
      [2, 'kv-a', 10, 3333],
      [3, 'kv-b', 20, 3333],
    ]);
  });

  it('a full reign: the slot-5 king falls out (SHIFTED_OUT), everyone else moves down one slot', () => {
    const active = ['a', 'b', 'c', 'd', 'e'].map((t, i) => member(i + 1, t));
    const plan = buildReignPlan(active, challenger);
    expect(plan.members.map((m) => m.kingVersionId)).toEqual(['kv-new', 'kv-a', 'kv-b', 'kv-c', 'kv-d']);
    expect(plan.members.map((m) => m.slot)).toEqual([1, 2, 3, 4, 5]);
    expect(plan.members.map((m) => m.weightBps)).toEqual([2000, 2000, 2000, 2000, 2000]);
    expect(plan.retired).toEqual([{ kingVersionId: 'kv-e', submissionId: 'sub-e', slot: 5, retireReason: 'SHIFTED_OUT' }]);
  });

  it('sorts the active members by slot before planning', () => {
    const plan = buildReignPlan([member(3, 'c'), member(1, 'a'), member(2, 'b')], challenger);
    expect(plan.members.map((m) => m.kingVersionId)).toEqual(['kv-new', 'kv-a', 'kv-b', 'kv-c']);
  });

  it('drops a member with the same hotkey (another submission ⇒ SHIFTED_OUT) and closes the gap', () => {
    const active = [member(1, 'a'), member(2, 'b', { hotkey: 'hk-new' }), member(3, 'c')];
    const plan = buildReignPlan(active, challenger);
    expect(plan.members.map((m) => [m.slot, m.kingVersionId])).toEqual([
      [1, 'kv-new'],
      [2, 'kv-a'],
      [3, 'kv-c'],
    ]);
    expect(plan.members.map((m) => m.weightBps)).toEqual([3334, 3333, 3333]);
    expect(plan.retired).toEqual([{ kingVersionId: 'kv-b', submissionId: 'sub-b', slot: 2, retireReason: 'SHIFTED_OUT' }]);
  });

  it('drops a member with the same model hash (SHIFTED_OUT)', () => {
    const plan = buildReignPlan([member(1, 'a', { modelHash: 'sha256:new' }), member(2, 'b')], challenger);
    expect(plan.members.map((m) => m.kingVersionId)).toEqual(['kv-new', 'kv-b']);
    expect(plan.retired.map((r) => [r.kingVersionId, r.retireReason])).toEqual([['kv-a', 'SHIFTED_OUT']]);
  });

  it("drops the challenger's own submission (re-crowning) as REPLACED_DUPLICATE", () => {
    const plan = buildReignPlan([member(1, 'a'), member(2, 'self', { submissionId: 'sub-new', hotkey: 'hk-x', modelHash: 'sha256:x' })], challenger);
    expect(plan.members.map((m) => m.kingVersionId)).toEqual(['kv-new', 'kv-a']);
    expect(plan.retired).toEqual([{ kingVersionId: 'kv-self', submissionId: 'sub-new', slot: 2, retireReason: 'REPLACED_DUPLICATE' }]);
  });

  it('dedupe happens before the top-5 cut: a duplicate in a full reign keeps slot 5 of the old 5th king', () => {
    const active = ['a', 'b', 'c', 'd', 'e'].map((t, i) => member(i + 1, t, t === 'b' ? { hotkey: 'hk-new' } : {}));
    const plan = buildReignPlan(active, challenger);
    expect(plan.members.map((m) => m.kingVersionId)).toEqual(['kv-new', 'kv-a', 'kv-c', 'kv-d', 'kv-e']);
    expect(plan.retired.map((r) => r.kingVersionId)).toEqual(['kv-b']);
  });

  it('an empty reign yields the challenger alone with 10000', () => {
    const plan = buildReignPlan([], challenger);
    expect(plan.members.map((m) => [m.slot, m.weightBps, m.isChallenger])).toEqual([[1, 10000, true]]);
  });
});

describe('coronation weight policy and hash (coronation.md §2, golden from CPython json.dumps)', () => {
  const plan = buildReignPlan(
    [
      {
        slot: 1,
        kingVersionId: '33333333-3333-4333-8333-333333333333',
        submissionId: '44444444-4444-4444-8444-444444444444',
        hotkey: '5Gen',
        uid: null,
        modelHash: 'sha256:bb',
      },
    ],
    { kingVersionId: '11111111-1111-4111-8111-111111111111', submissionId: '22222222-2222-4222-8222-222222222222', hotkey: '5Chalé', uid: 7, modelHash: 'sha256:aa' },
  );

  it('builds the policy JSON with integer slot weights', () => {
    expect(coronationWeightPolicy(2, plan.members)).toEqual({
      policy: 'five_king_genesis_split_v1',
      reign_version: 2,
      genesis_rule: 'new_challenger_slot_1; shift_existing_down; split_weight_evenly',
      max_slots: 5,
      member_count: 2,
      empty_reign_burn_uid: 0,
      slot_weight_bps: { '1': 5000, '2': 5000 },
    });
  });

  it('hashes canonical JSON (sorted keys, no spaces, ASCII escapes, null uid) exactly like Python', () => {
    // Golden: python3 -c 'json.dumps(doc, sort_keys=True, separators=(",", ":"))' over the same document, then
    // "sha256:" + hashlib.sha256(s.encode()).hexdigest(); the hotkey "5Chalé" exercises the \\u00e9 escape.
    const hash = coronationWeightHash({ netuid: 97, reignVersion: 2, members: plan.members, policy: coronationWeightPolicy(2, plan.members) });
    expect(hash).toBe('sha256:cd9053bbc1cd2e29092915120a80b263b8db97bfd91f7a4171f951f09da84ffc');
  });

  it('depends on member order only through slots, and changes with any member field', () => {
    const policy = coronationWeightPolicy(2, plan.members);
    const base = coronationWeightHash({ netuid: 97, reignVersion: 2, members: plan.members, policy });
    expect(coronationWeightHash({ netuid: 97, reignVersion: 2, members: [...plan.members].reverse(), policy })).toBe(base);
    const changed = plan.members.map((m) => (m.slot === 2 ? { ...m, uid: 3 } : m));
    expect(coronationWeightHash({ netuid: 97, reignVersion: 2, members: changed, policy })).not.toBe(base);
    expect(coronationWeightHash({ netuid: 98, reignVersion: 2, members: plan.members, policy })).not.toBe(base);
  });
});

describe('periodic refresh hash and policy (coronation.md §2)', () => {
  it('windows by max(rate_limit_blocks, 1)', () => {
    expect(refreshWindow(1234, 100)).toBe(12);
    expect(refreshWindow(1299, 100)).toBe(12);
    expect(refreshWindow(1300, 100)).toBe(13);
    expect(refreshWindow(5, 0)).toBe(5);
  });

  it('matches CPython golden hashes, with and without a reign', () => {
    expect(periodicRefreshWeightHash({ netuid: 97, reignId: '5F0C6A1E-3B7D-4C2A-9E8F-0123456789AB', currentBlock: 1234, rateLimitBlocks: 100 })).toBe(
      'sha256:b9542145f5cfe907257d8311eb33827dcbacbfdb077304cf1b0fe4243baef03c',
    );
    expect(periodicRefreshWeightHash({ netuid: 97, reignId: null, currentBlock: 5, rateLimitBlocks: 0 })).toBe(
      'sha256:a15b2bddf862a139990fc75a377153500abd3e346204c910e197e30483b2b2fd',
    );
  });

  it('policy carries the window, member count and burn flag', () => {
    expect(periodicRefreshPolicy({ burnUid: 0, currentBlock: 1234, rateLimitBlocks: 100, reignVersion: 3, members: [{ slot: 1, weightBps: 5000 }, { slot: 2, weightBps: 5000 }] })).toEqual({
      policy: 'periodic_refresh_v1',
      burn_uid: 0,
      current_block: 1234,
      rate_limit_blocks: 100,
      refresh_window: 12,
      reign_version: 3,
      member_count: 2,
      slot_weight_bps: { '1': 5000, '2': 5000 },
      empty_reign_burned: false,
    });
    expect(periodicRefreshPolicy({ burnUid: 0, currentBlock: 7, rateLimitBlocks: 100, reignVersion: null, members: [] }).empty_reign_burned).toBe(true);
  });
});

describe('epochArrays (coronation.md §1 step 7)', () => {
  it('uids in slot order, exact decimal weights; empty ⇒ [burn] → ["1"]', () => {
    expect(epochArrays([{ slot: 2, uid: 4, weightBps: 3333 }, { slot: 1, uid: 9, weightBps: 3334 }, { slot: 3, uid: 1, weightBps: 3333 }], 0)).toEqual({
      uids: [9, 4, 1],
      weights: ['0.3334', '0.3333', '0.3333'],
    });
    expect(epochArrays([], 0)).toEqual({ uids: [0], weights: ['1'] });
  });
});

describe('buildWeightPayload (coronation.md §3 step 2)', () => {
  const members = [
    { slot: 1, uid: 9, hotkey: 'hk-a', weightBps: 3334 },
    { slot: 2, uid: 4, hotkey: 'hk-b', weightBps: 3333 },
    { slot: 3, uid: 6, hotkey: 'hk-c', weightBps: 3333 },
  ];

  it('registered members: ascending uids, bps/10000 floats summing to 1, nothing burned', () => {
    const keys = new Map([[9, 'hk-a'], [4, 'hk-b'], [6, 'hk-c']]);
    const p = buildWeightPayload(members, keys, 0);
    expect(p.uids).toEqual([4, 6, 9]);
    expect(p.weights).toEqual([0.3333, 0.3333, 0.3334]);
    expect(p.decimals).toEqual(['0.3333', '0.3333', '0.3334']);
    expect(p.burnedBps).toBe(0);
    expect(p.deregisteredSlots).toEqual([]);
    expect(p.submittedMembers.map((m) => m.slot)).toEqual([1, 2, 3]);
    expect(invalidWeightPayloadReason(p.uids, p.weights)).toBeNull();
  });

  it("a deregistered member's share goes to the burn uid, which is listed first", () => {
    const keys = new Map<number, string | null>([[9, 'hk-a'], [4, 'someone-else'], [6, 'hk-c']]);
    const p = buildWeightPayload(members, keys, 0);
    expect(p.uids).toEqual([0, 6, 9]);
    expect(p.bps).toEqual([3333, 3333, 3334]);
    expect(p.deregisteredSlots).toEqual([{ slot: 2, expected_uid: 4, expected_hotkey: 'hk-b', current_hotkey: 'someone-else', weight_bps: 3333 }]);
  });

  it('merges a burned share into a member that holds the burn uid', () => {
    const keys = new Map<number, string | null>([[9, null], [4, 'hk-b'], [6, 'hk-c']]);
    const p = buildWeightPayload([...members.slice(0, 2), { slot: 3, uid: 0, hotkey: 'hk-c', weightBps: 3333 }], new Map([...keys, [0, 'hk-c']]), 0);
    expect(p.uids).toEqual([0, 4]);
    expect(p.bps).toEqual([3334 + 3333, 3333]);
  });

  it('no members ⇒ everything to the burn uid', () => {
    const p = buildWeightPayload([], new Map(), 5);
    expect(p).toMatchObject({ uids: [5], weights: [1], decimals: ['1'], emptyReignBurned: true, burnedBps: 10000 });
  });

  it('validation rejects empty, unequal, non-positive and not-summing-to-1 vectors', () => {
    expect(invalidWeightPayloadReason([], [])).toMatch(/empty/);
    expect(invalidWeightPayloadReason([1], [0.5, 0.5])).toMatch(/length/);
    expect(invalidWeightPayloadReason([1, 2], [1, 0])).toMatch(/> 0/);
    expect(invalidWeightPayloadReason([1, 2], [0.5, 0.4])).toMatch(/sum/);
    expect(invalidWeightPayloadReason([1, 2, 3], [0.3334, 0.3333, 0.3333])).toBeNull();
  });
});
