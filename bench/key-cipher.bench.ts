/**
 * How fast are integration keys encrypted, decrypted and rotated?
 *
 *   npx tsx bench/key-cipher.bench.ts [--ops 50000] [--rows 10000] [--batch-size 500]
 *   npm run bench -- key-cipher [options]
 *
 * In this process: --ops runs each of the cipher's operations (v2 AES-256-GCM encrypt and
 * decrypt; legacy AES-256-CBC decrypt with the current secret, and with a previous one, which
 * costs a failed attempt with the current secret first), after a warm-up. On a database of its own
 * on the local PostgreSQL (BENCH_DATABASE_URL to change it), migrated through the module's API:
 * --rows users with a legacy key each, rotated by rotateOpenRouterKeys in batches of
 * --batch-size, then a second run that finds every row current (it still decrypts each one). It
 * prints a table, then one `BENCH_JSON {...}` line.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto'

import { sql } from 'kysely'

import {
  createDb,
  IntegrationCipher,
  migrateToLatest,
  rotateOpenRouterKeys,
} from '../src/tooling.js'
import { wholeNumberOptions } from './support/options.js'
import { machineFacts, printBenchJson, printTable, roundTo } from './support/report.js'
import { withScratchDatabases } from './support/scratch-databases.js'

const PREVIOUS_SECRET = 'the-secret-production-used-so-far'
const CURRENT_SECRET = 'the-new-secret-0123456789abcdef-0123456789'
const USER_ID = '6f1c1e52-8d4b-4c55-9f55-3f0d3b0f2a11'
const API_KEY = `sk-or-v1-${'0123456789abcdef'.repeat(4)}`
const WARM_UP_OPS = 2_000

/** The format every integration shares, written the way x402-jobs writes it. */
function encryptLegacy(plaintext: string, secret: string): string {
  const iv = randomBytes(16)
  const cipher = createCipheriv('aes-256-cbc', createHash('sha256').update(secret).digest(), iv)
  return `${iv.toString('hex')}:${Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('hex')}`
}

interface Throughput {
  operation: string
  ops: number
  opsPerSecond: number
  microsecondsPerOp: number
}

function measure(operation: string, ops: number, run: (index: number) => unknown): Throughput {
  for (let index = 0; index < WARM_UP_OPS; index++) run(index)
  const started = performance.now()
  for (let index = 0; index < ops; index++) run(index)
  const seconds = (performance.now() - started) / 1000
  return {
    operation,
    ops,
    opsPerSecond: Math.round(ops / seconds),
    microsecondsPerOp: roundTo((seconds * 1e6) / ops, 2),
  }
}

function measureCipher(ops: number): Throughput[] {
  const cipher = new IntegrationCipher({ current: CURRENT_SECRET, previous: [PREVIOUS_SECRET] })
  // Distinct inputs, so that no result can be cached anywhere.
  const samples = 1_000
  const v2 = Array.from({ length: samples }, () => cipher.encrypt(API_KEY, USER_ID))
  const legacyCurrent = Array.from({ length: samples }, () =>
    encryptLegacy(API_KEY, CURRENT_SECRET),
  )
  const legacyPrevious = Array.from({ length: samples }, () =>
    encryptLegacy(API_KEY, PREVIOUS_SECRET),
  )
  return [
    measure('v2 encrypt (AES-256-GCM)', ops, () => cipher.encrypt(API_KEY, USER_ID)),
    measure('v2 decrypt (AES-256-GCM)', ops, (index) =>
      cipher.decrypt(v2[index % samples]!, USER_ID),
    ),
    measure('legacy decrypt, current secret (AES-256-CBC)', ops, (index) =>
      cipher.decrypt(legacyCurrent[index % samples]!, USER_ID),
    ),
    measure('legacy decrypt, previous secret (AES-256-CBC)', ops, (index) =>
      cipher.decrypt(legacyPrevious[index % samples]!, USER_ID),
    ),
  ]
}

interface RotationRate {
  run: string
  rows: number
  rotated: number
  seconds: number
  rowsPerSecond: number
}

async function main(): Promise<void> {
  const options = wholeNumberOptions('key-cipher', { ops: 50_000, rows: 10_000, 'batch-size': 500 })
  const batchSize = options['batch-size']

  const throughput = measureCipher(options.ops)

  const rotation: RotationRate[] = []
  let postgres = ''
  await withScratchDatabases('key-cipher', async (scratch) => {
    const db = createDb({ connectionString: await scratch.create('rotation') })
    try {
      await migrateToLatest(db)
      postgres = (await sql<{ server_version: string }>`SHOW server_version`.execute(db)).rows[0]!
        .server_version
      const { rows: users } = await sql<{ id: string }>`
        INSERT INTO auth.users (id, aud, role, email)
        SELECT gen_random_uuid(), 'authenticated', 'authenticated', 'bench-' || n || '@example.test'
        FROM generate_series(1, ${options.rows}) AS n
        RETURNING id
      `.execute(db)
      const values = users.map(({ id }) => ({
        user_id: id,
        encrypted_api_key: encryptLegacy(API_KEY, PREVIOUS_SECRET),
      }))
      for (let start = 0; start < values.length; start += 5_000) {
        await db
          .insertInto('x402_user_openrouter_integrations')
          .values(values.slice(start, start + 5_000))
          .execute()
      }
      await sql`VACUUM ANALYZE x402_user_openrouter_integrations`.execute(db)

      const cipher = new IntegrationCipher({ current: CURRENT_SECRET, previous: [PREVIOUS_SECRET] })
      for (const run of ['legacy → v2', 'all current (verify only)']) {
        const started = performance.now()
        const report = await rotateOpenRouterKeys(db, {
          cipher,
          keyId: cipher.currentKeyId,
          batchSize,
        })
        const seconds = (performance.now() - started) / 1000
        if (!report.complete || report.failed.length > 0 || report.scanned !== options.rows) {
          throw new Error(
            `The rotation did not process every row: ${JSON.stringify({ ...report, failed: report.failed.length })}`,
          )
        }
        rotation.push({
          run,
          rows: report.scanned,
          rotated: report.rotated,
          seconds: roundTo(seconds, 3),
          rowsPerSecond: Math.round(report.scanned / seconds),
        })
      }
    } finally {
      await db.destroy()
    }
  })

  console.log(
    `\nIntegration key cipher, one Node thread (${options.ops} operations each, after ${WARM_UP_OPS} to warm up)\n`,
  )
  printTable(
    ['operation', 'ops/s', 'µs/op'],
    throughput.map((result) => [
      result.operation,
      String(result.opsPerSecond),
      result.microsecondsPerOp.toFixed(2),
    ]),
  )
  console.log(`\nrotateOpenRouterKeys on PostgreSQL ${postgres}, batches of ${batchSize}\n`)
  printTable(
    ['run', 'rows', 'rotated', 'seconds', 'rows/s'],
    rotation.map((result) => [
      result.run,
      String(result.rows),
      String(result.rotated),
      result.seconds.toFixed(3),
      String(result.rowsPerSecond),
    ]),
  )
  console.log('')
  printBenchJson({
    bench: 'key-cipher',
    machine: machineFacts(postgres),
    batchSize,
    throughput,
    rotation,
  })
}

main().catch((error: unknown) => {
  console.error(`\nkey-cipher failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
