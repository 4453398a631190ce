import { expect } from 'vitest';
import { DatasetError } from '../../dataset/errors.ts';
import { VerdictError, type VerdictErrorCode } from '../../judge/verdict-stats.ts';
import { ModelStoreError } from '../../validation/model-store.ts';

/** Awaits `promise` and returns the DatasetError it rejects with (fails the test otherwise). */
export async function datasetRejection(promise: Promise<unknown>): Promise<DatasetError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    return error as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

/** The VerdictError code `fn` throws, or what happened instead. */
export function verdictCodeOf(fn: () => unknown): VerdictErrorCode | 'no error' | 'other error' {
  try {
    fn();
    return 'no error';
  } catch (error) {
    return error instanceof VerdictError ? error.code : 'other error';
  }
}

/** Awaits `promise` and returns the ModelStoreError it rejects with (fails the test otherwise). */
export async function storeError(promise: Promise<unknown>): Promise<ModelStoreError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ModelStoreError) return error;
    throw error;
  }
  throw new Error('expected a ModelStoreError');
}
