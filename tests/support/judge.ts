import type { JudgeDuelRequest, JudgeDuelResult, JudgeGateway } from '../../judge/types.ts';

/** A JudgeGateway that records each request and answers with fixed scores (eval executor tests). */
export function fixedJudge(scoreChallenger = 0.7): JudgeGateway & { requests: JudgeDuelRequest[] } {
  const requests: JudgeDuelRequest[] = [];
  return {
    requests,
    async judgeDuel(req): Promise<JudgeDuelResult> {
      requests.push(req);
      return {
        scoreChallenger,
        scoreKing: 1 - scoreChallenger,
        sampleCount: req.samples.length,
        scoredSampleCount: req.samples.length,
        validFraction: 1,
        judgeCount: 3,
        judgeErrors: 0,
        byJudge: {},
        byMetric: { correctness: 0, grounding: 0, progress: 0, protocol: 0, efficiency: 0 },
        servedModels: {},
        records: [],
      };
    },
  };
}
