import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createDb, IntegrationCipher, migrateToLatest } from '../src/tooling.js'
import { cli, cliEnv } from './support/cli.js'
import { createUser } from './support/fixtures.js'
import { encryptLegacy } from './support/legacy-cipher.js'
import { createTestDatabase, type TestDatabase, testTargets } from './support/test-database.js'

// `npm run keys:rotate`, run as an operator runs it: a child process on the embedded database
// and on DATABASE_URL.

const OLD_SECRET = 'the-secret-production-used-so-far'
const NEW_SECRET = 'the-new-secret-0123456789abcdef-0123456789'
/** What the app reports for the secret it runs with, and the operator confirms. */
const NEW_KEY_ID = new IntegrationCipher({ current: NEW_SECRET, previous: [] }).currentKeyId

/** keys:rotate, with none of this process's secrets or databases. */
const rotateKeys = (args: string[], env: NodeJS.ProcessEnv) =>
  cli(
    args,
    {
      PGLITE_DATA_DIR: undefined,
      INTEGRATION_ENCRYPTION_SECRET: undefined,
      INTEGRATION_ENCRYPTION_SECRET_PREVIOUS: undefined,
      ...env,
    },
    'src/cli/rotate-keys.ts',
  )

describe.each(testTargets)('the keys:rotate command on %s', (target) => {
  let database: TestDatabase
  let env: NodeJS.ProcessEnv
  let unreadableOwner: string

  beforeAll(async () => {
    database = await createTestDatabase(target)
    const { db } = database
    await migrateToLatest(db)
    for (let i = 0; i < 3; i++) {
      const userId = await createUser(db)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: userId, encrypted_api_key: encryptLegacy(`sk-or-${i}`, OLD_SECRET) })
        .execute()
    }
    unreadableOwner = await createUser(db)
    await db
      .insertInto('x402_user_openrouter_integrations')
      .values({
        user_id: unreadableOwner,
        encrypted_api_key: encryptLegacy('sk-or-lost', 'a-secret-nobody-configured'),
      })
      .execute()
    // The command opens the database itself: release this process's hold on it.
    await db.destroy()
    env = {
      ...cliEnv(database.location),
      INTEGRATION_ENCRYPTION_SECRET: NEW_SECRET,
      INTEGRATION_ENCRYPTION_SECRET_PREVIOUS: OLD_SECRET,
    }
  })
  afterAll(async () => {
    await database.destroy()
  })

  /** Every stored key, by owner: what a refused rotation must leave exactly as it was. */
  const storedKeys = async () => {
    const db = createDb(database.location)
    try {
      return await db
        .selectFrom('x402_user_openrouter_integrations')
        .select(['user_id', 'encrypted_api_key'])
        .orderBy('user_id')
        .execute()
    } finally {
      await db.destroy()
    }
  }

  it('writes nothing with a typo in the new secret: it needs the key id of the secret the app runs with', async () => {
    const before = await storedKeys()
    const typo = { ...env, INTEGRATION_ENCRYPTION_SECRET: `${NEW_SECRET.slice(0, -1)}8` }

    const unconfirmed = await rotateKeys([], typo)
    expect(unconfirmed.code).toBe(2)
    expect(unconfirmed.stderr.trim()).toMatch(
      /^keys:rotate failed: keys:rotate needs --key-id <key id>, the key id of the INTEGRATION_ENCRYPTION_SECRET the app runs with/,
    )
    expect(await storedKeys()).toEqual(before)

    const mismatch = await rotateKeys(['--key-id', NEW_KEY_ID], typo)
    expect(mismatch.code).toBe(1)
    // Never the key id of the secret being checked: pasted back into --key-id, it would pass the
    // check and rewrite every key under a secret the app does not have.
    const typoKeyId = new IntegrationCipher({
      current: typo.INTEGRATION_ENCRYPTION_SECRET,
      previous: [],
    }).currentKeyId
    expect(mismatch.stderr).not.toContain(typoKeyId)
    expect(mismatch.stderr).toMatch(
      new RegExp(
        `^keys:rotate failed: INTEGRATION_ENCRYPTION_SECRET does not match the confirmed key id ${NEW_KEY_ID}: it is not the secret the app runs with`,
      ),
    )
    expect(mismatch.stderr).toContain('IntegrationCipher.currentKeyId')
    expect(mismatch.stderr).toContain('docs/integration-keys.md')
    expect(mismatch.stderr).not.toContain(typo.INTEGRATION_ENCRYPTION_SECRET)
    expect(mismatch.stderr).toContain('Nothing was written.')
    expect(await storedKeys()).toEqual(before)

    const malformed = await rotateKeys(
      ['--key-id', 'sk-or-v1-0123456789abcdef0123456789abcdef'],
      typo,
    )
    expect(malformed.code).toBe(2)
    expect(malformed.stderr).not.toContain('0123456789abcdef')
    expect(malformed.stderr).toMatch(/--key-id is 8 hexadecimal digits/)

    // The same key id in capitals is the same key id: proven against the secret, not refused as malformed.
    const capitals = await rotateKeys(['--key-id', NEW_KEY_ID.toUpperCase()], typo)
    expect(capitals.code).toBe(1)
    expect(capitals.stderr).toContain(`does not match the confirmed key id ${NEW_KEY_ID}:`)
    expect(await storedKeys()).toEqual(before)
  })

  it('rotates what it can read, reports what it cannot and exits with 1; a second run finds the rest current', async () => {
    const first = await rotateKeys(['--batch-size', '2', '--key-id', NEW_KEY_ID], env)

    expect(first.code).toBe(1)
    expect(first.stdout).toContain('rotated               3\n')
    expect(first.stdout).toContain('failed                1\n')
    expect(first.stdout).toMatch(
      new RegExp(`  user ${unreadableOwner} \\(legacy\\): no configured secret decrypts it`),
    )
    expect(first.stderr).toMatch(
      /1 key\(s\) could not be decrypted and were left as they were\. Set INTEGRATION_ENCRYPTION_SECRET_PREVIOUS/,
    )

    const second = await rotateKeys(['--key-id', NEW_KEY_ID], env)
    expect(second.code).toBe(1)
    expect(second.stdout).toContain(
      'scanned               4\nrotated               0\nalready current       3\n',
    )
  })

  it('exits with 3 while it still rotates keys, and with 0 once a run finds every key current', async () => {
    // Without the unreadable key, and with one more legacy key, as written by an instance that
    // still ran on the old secret.
    const db = createDb(database.location)
    try {
      await db
        .deleteFrom('x402_user_openrouter_integrations')
        .where('user_id', '=', unreadableOwner)
        .execute()
      const lateOwner = await createUser(db)
      await db
        .insertInto('x402_user_openrouter_integrations')
        .values({ user_id: lateOwner, encrypted_api_key: encryptLegacy('sk-or-late', OLD_SECRET) })
        .execute()
    } finally {
      await db.destroy()
    }

    const rotating = await rotateKeys(['--key-id', NEW_KEY_ID], env)
    expect(rotating.code).toBe(3)
    expect(rotating.stdout).toContain('rotated               1\n')
    expect(rotating.stderr).toContain('run keys:rotate again until it rotates none')

    const settled = await rotateKeys(['--key-id', NEW_KEY_ID], env)
    expect(settled.code).toBe(0)
    expect(settled.stderr).toContain('Every key is encrypted with the current secret.')
  })

  it('names the variable to set when the secret is missing', async () => {
    const { INTEGRATION_ENCRYPTION_SECRET: _unset, ...withoutSecret } = env
    const result = await rotateKeys(['--key-id', NEW_KEY_ID], withoutSecret)

    expect(result.code).toBe(1)
    expect(result.stderr.trim()).toMatch(
      /^keys:rotate failed: INTEGRATION_ENCRYPTION_SECRET is not set: /,
    )
  })

  it('refuses arguments it does not know, and a batch size out of range, before it opens the database', async () => {
    const unknown = await rotateKeys(['--batch', '10'], env)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr.trim()).toBe(
      'keys:rotate failed: keys:rotate does not know the flag --batch; it takes --batch-size, --key-id. ' +
        'usage: npm run keys:rotate -- [--batch-size <n>] [--key-id <key id>] (npm run keys:rotate -- --help says more)',
    )

    const outOfRange = await rotateKeys(['--batch-size', '0'], env)
    expect(outOfRange.code).toBe(2)
    expect(outOfRange.stderr.trim()).toMatch(
      /^keys:rotate failed: --batch-size is "0", expected a whole number from 1 to 10000\. usage: /,
    )
  })
})
