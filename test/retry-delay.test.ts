import { describe, expect, it } from 'vitest'

import { MAX_RETRY_DELAY_MS, retryDelayMs } from '../src/migrator/retry-delay.js'
import { migrationSettings } from '../src/migrator/settings.js'

// MIGRATION_LOCK_ATTEMPTS may be 100, and an uncapped doubling wait passes 2^31-1 ms (where a
// Node timer fires after 1 ms, so the late retries would come at once) and even reaches
// Infinity. Each wait is capped.

const NODE_TIMER_MAX_MS = 2 ** 31 - 1

describe('the wait between two tries of a migration', () => {
  it('doubles from the first wait', () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(1_000, attempt))).toEqual([
      1_000, 2_000, 4_000, 8_000,
    ])
  })

  it('stops at 60 s, or at the first wait where that is longer', () => {
    expect(retryDelayMs(1_000, 7)).toBe(MAX_RETRY_DELAY_MS)
    expect(MAX_RETRY_DELAY_MS).toBe(60_000)
    expect(retryDelayMs(600_000, 1)).toBe(600_000)
    expect(retryDelayMs(600_000, 5)).toBe(600_000)
  })

  it('stays within what a Node timer takes for every attempt and first wait the settings accept', () => {
    const { lockAttempts, retryDelayMs: largest } = migrationSettings({
      env: { MIGRATION_LOCK_ATTEMPTS: '100', MIGRATION_RETRY_DELAY_MS: '600000' },
    })
    for (const first of [0, 1, 1_000, largest]) {
      for (let attempt = 1; attempt <= lockAttempts; attempt++) {
        const delay = retryDelayMs(first, attempt)
        expect(Number.isSafeInteger(delay) && delay >= 0 && delay <= NODE_TIMER_MAX_MS).toBe(true)
      }
    }
    expect(retryDelayMs(0, 100)).toBe(0)
  })
})
