/**
 * The key rotation command behind `npm run keys:rotate -- --key-id <key id> [--batch-size <n>]`:
 * re-encrypts every stored OpenRouter key to INTEGRATION_ENCRYPTION_SECRET in the current format,
 * reading keys written with INTEGRATION_ENCRYPTION_SECRET_PREVIOUS too. It writes only once the
 * secret is proven to be the app's: its key id must be the one given with --key-id, which the
 * operator takes from the app (a flag, not a prompt: CI has no terminal).
 *
 * It works on DATABASE_URL, otherwise on the embedded database (PGLITE_DATA_DIR, default
 * .data/pglite). Progress goes to stderr, the report to stdout. Ctrl-C stops it after the batch in
 * progress; running it again goes on where it stopped. Exit code: 0 when every key is current,
 * 1 when some key could not be decrypted (left as it was) or the command failed, 2 on a usage
 * error, 130 when stopped.
 */
import type { Kysely } from 'kysely'

import type { KeyRotationReport } from '../integrations/openrouter-key-rotation.js'
import { DEFAULT_ROTATION_BATCH_SIZE } from '../types/command-defaults.js'
import { IntegrationCipher, KEY_ID_PATTERN } from '../secrets/integration-cipher.js'
import {
  type CommandSpec,
  runCommandLine,
  usageLine,
  UsageError,
  withCommandDatabase,
} from './run-command.js'

const spec = {
  script: 'keys:rotate',
  summary:
    're-encrypts every stored OpenRouter key with INTEGRATION_ENCRYPTION_SECRET, in the current format.',
  options: {
    'batch-size': {
      type: 'string',
      valueName: '<n>',
      description: `rows per transaction, 1 to 10000 (default ${DEFAULT_ROTATION_BATCH_SIZE})`,
      integer: { min: 1, max: 10_000 },
    },
    'key-id': {
      type: 'string',
      valueName: '<key id>',
      description:
        "the key id of the app's INTEGRATION_ENCRYPTION_SECRET (8 hex digits): nothing is written unless this command's secret has it",
    },
  },
  notes: [
    "The key id is the app's IntegrationCipher.currentKeyId, or the <key id> of v2:<key id>:… in a key the app stored with its secret.",
    'Reads keys written with INTEGRATION_ENCRYPTION_SECRET_PREVIOUS too. Database: DATABASE_URL, else PGLITE_DATA_DIR (default .data/pglite).',
    'Exit code: 0 every key is current; 1 a key could not be decrypted, or the command failed; 2 a usage error; 3 run it again; 130 stopped.',
  ],
} as const satisfies CommandSpec

function printReport(report: KeyRotationReport): void {
  console.log(`scanned               ${report.scanned}`)
  console.log(`rotated               ${report.rotated}`)
  console.log(`already current       ${report.alreadyCurrent}`)
  console.log(`changed concurrently  ${report.changedConcurrently}`)
  console.log(`failed                ${report.failed.length}`)
  for (const { userId, format, keyId, reason } of report.failed) {
    console.log(`  user ${userId} (${format}${keyId ? ` ${keyId}` : ''}): ${reason}`)
  }
}

async function main(batchSize: number, given: string | undefined): Promise<number> {
  // Hexadecimal digits in capitals are the same key id.
  const keyId = given?.toLowerCase()
  if (keyId === undefined) {
    throw new UsageError(
      'keys:rotate needs --key-id <key id>, the key id of the INTEGRATION_ENCRYPTION_SECRET the app runs with: ' +
        "the app's IntegrationCipher.currentKeyId, or the <key id> of v2:<key id>:… in a key the app stored with it. " +
        'Keys are re-encrypted only with a secret that has this key id, so that a typo in the secret cannot leave keys ' +
        `the app cannot read. Nothing was written. usage: ${usageLine(spec)}`,
    )
  }
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new UsageError(
      `--key-id is 8 hexadecimal digits, such as 1a2b3c4d, not the value given (${keyId.length} characters, not shown). usage: ${usageLine(spec)}`,
    )
  }
  const cipher = IntegrationCipher.fromEnv()
  // Before the database is opened: a secret that is not the app's never reaches it.
  cipher.confirmCurrentKeyId(keyId)
  return withCommandDatabase({}, (db) => rotate(db(), cipher, keyId, batchSize))
}

async function rotate(
  db: Kysely<any>,
  cipher: IntegrationCipher,
  keyId: string,
  batchSize: number,
): Promise<number> {
  console.error(`Current secret: key id ${cipher.currentKeyId}, as --key-id confirms`)
  const { rotateOpenRouterKeys } = await import('../integrations/openrouter-key-rotation.js')

  const stop = new AbortController()
  const onInterrupt = () => {
    console.error('Stopping after the batch in progress…')
    stop.abort()
  }
  process.once('SIGINT', onInterrupt)
  process.once('SIGTERM', onInterrupt)
  try {
    const report = await rotateOpenRouterKeys(db, {
      cipher,
      keyId,
      batchSize,
      signal: stop.signal,
      onBatch: (progress) =>
        console.error(`… ${progress.scanned} scanned, ${progress.rotated} rotated`),
    })
    printReport(report)
    if (!report.complete) {
      console.error('Stopped before the last row: run keys:rotate again to go on.')
      return 130
    }
    if (report.failed.length > 0) {
      console.error(
        `${report.failed.length} key(s) could not be decrypted and were left as they were. ` +
          'Set INTEGRATION_ENCRYPTION_SECRET_PREVIOUS to the secret they were written with and run keys:rotate again, ' +
          'or have their owners store their keys again.',
      )
      return 1
    }
    if (report.changedConcurrently > 0 || report.rotated > 0) {
      // Rows written meanwhile, perhaps by an instance still on the old secret, or behind the
      // cursor: only a run that finds nothing to do proves that every key is current.
      console.error(
        `${report.rotated} rotated and ${report.changedConcurrently} changed while it ran: run keys:rotate again until it rotates none, ` +
          'before INTEGRATION_ENCRYPTION_SECRET_PREVIOUS is removed.',
      )
      return 3
    }
    console.error('Every key is encrypted with the current secret.')
    return 0
  } finally {
    process.off('SIGINT', onInterrupt)
    process.off('SIGTERM', onInterrupt)
  }
}

runCommandLine(spec, ({ values }) =>
  main(values['batch-size'] ?? DEFAULT_ROTATION_BATCH_SIZE, values['key-id']),
)
