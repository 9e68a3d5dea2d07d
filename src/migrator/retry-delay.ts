/** The longest wait between two tries of a migration, unless the first wait is longer. */
export const MAX_RETRY_DELAY_MS = 60_000

/**
 * The wait before try `attempt + 1` of a migration that hit lock_timeout: `firstDelayMs`, doubling
 * on each retry, up to {@link MAX_RETRY_DELAY_MS} (or `firstDelayMs` where that is longer). The
 * cap also keeps the wait within what a Node timer takes: past 2^31-1 ms it fires after 1 ms.
 *
 * @example
 * ```ts
 * retryDelayMs(1_000, 3) // 4000
 * retryDelayMs(1_000, 100) // 60000
 * ```
 */
export function retryDelayMs(firstDelayMs: number, attempt: number): number {
  const cap = Math.max(firstDelayMs, MAX_RETRY_DELAY_MS)
  // Doubling stops once past the cap, so that the product never grows out of range.
  return Math.min(cap, firstDelayMs * 2 ** Math.min(attempt - 1, 31))
}
