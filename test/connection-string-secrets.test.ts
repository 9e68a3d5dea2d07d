import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, describe, expect, it } from 'vitest'

import { IntegrationCipher } from '../src/index.js'
import { cli } from './support/cli.js'

// No secret in any output: a password holding an unencoded "#" or "?" ends the host part of the
// URL early, and the part of the password before it would be printed as the port ("Database:
// PostgreSQL at postgres:2024/(default database)"). Such a string is refused without being
// shown, asking for percent-encoding, as one with "/" is.

describe('a password with an unencoded "#" or "?" in DATABASE_URL', () => {
  for (const url of [
    'postgres://postgres:2024#Hunter2Secret@127.0.0.1:5432/db',
    'postgres://postgres:2024?Hunter2Secret@127.0.0.1:5432/db',
  ]) {
    it(`is refused, and no part of the password is printed: ${url}`, async () => {
      const { code, stdout, stderr } = await cli(['list'], {
        DATABASE_URL: url,
        PGLITE_DATA_DIR: '',
      })
      const output = `${stdout}\n${stderr}`
      expect(output).not.toContain('2024')
      expect(output).not.toContain('Hunter2Secret')
      expect(code).toBe(2)
      expect(output).toContain('Percent-encode the password')
    })
  }
})

// A password with "@" and "/", "?" and "#" unencoded: the URL parser takes "S3cr3t" for the host.
// Every command that takes a URL refuses it before any connection, so no part of the password
// reaches a message or the DNS resolver.
const UNENCODED = 'postgres://postgres:Sp3c!al@S3cr3t/x?y#z@127.0.0.1:5432/postgres'
const spyFolder = mkdtempSync(join(tmpdir(), 'x402-dns-spy-'))
afterAll(() => rmSync(spyFolder, { recursive: true, force: true }))
const spy = fileURLToPath(new URL('./support/dns-spy.cjs', import.meta.url))

describe('a password with an unencoded "@", "/", "?" and "#"', () => {
  const secret = { INTEGRATION_ENCRYPTION_SECRET: 'the-new-secret-0123456789abcdef-0123456789' }
  const keyId = new IntegrationCipher({
    current: secret.INTEGRATION_ENCRYPTION_SECRET,
    previous: [],
  }).currentKeyId
  it.each([
    ['migrate:list, in DATABASE_URL', ['list'], 'src/cli/migrate.ts', { DATABASE_URL: UNENCODED }],
    [
      'migrate:sql, in REHEARSAL_DATABASE_URL',
      ['sql', '005'],
      'src/cli/migrate.ts',
      { REHEARSAL_DATABASE_URL: UNENCODED },
    ],
    [
      'lint:locks, in LINT_LOCKS_DATABASE_URL',
      [],
      'src/cli/lint-locks.ts',
      { LINT_LOCKS_DATABASE_URL: UNENCODED },
    ],
    [
      'lint:locks, in REHEARSAL_DATABASE_URL',
      [],
      'src/cli/lint-locks.ts',
      { REHEARSAL_DATABASE_URL: UNENCODED },
    ],
    [
      'migrate:plan, in MIGRATION_DATABASE_URL',
      [],
      'src/cli/migrate-plan.ts',
      { MIGRATION_DATABASE_URL: UNENCODED },
    ],
    [
      'migrate:plan, in REHEARSAL_DATABASE_URL',
      [],
      'src/cli/migrate-plan.ts',
      { REHEARSAL_DATABASE_URL: UNENCODED },
    ],
    [
      'keys:rotate, in DATABASE_URL',
      ['--key-id', keyId],
      'src/cli/rotate-keys.ts',
      { DATABASE_URL: UNENCODED, ...secret },
    ],
  ])(
    'is refused by %s before any connection, and never shown',
    async (_case, args, script, env) => {
      const log = join(
        spyFolder,
        `${script.replaceAll('/', '-')}-${args.join('-')}-${Object.keys(env)[0]}`,
      )
      const { code, stdout, stderr } = await cli(
        args,
        {
          PGLITE_DATA_DIR: '',
          DNS_SPY_FILE: log,
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${spy}`,
          ...env,
        },
        script,
      )
      const output = `${stdout}\n${stderr}`
      for (const part of ['S3cr3t', 'Sp3c', 'y#z']) expect(output).not.toContain(part)
      expect(code).not.toBe(0)
      expect(output).toContain('Percent-encode the password')
      let asked = ''
      try {
        asked = readFileSync(log, 'utf8')
      } catch {
        // No lookup at all.
      }
      expect(asked).not.toContain('S3cr3t')
    },
  )
})

describe('a bound in DATABASE_URL that would mean no bound', () => {
  for (const parameter of [
    'query_timeout=0',
    'connect_timeout=0',
    'query_timeout=soon',
    'connect_timeout=-5',
  ]) {
    it(`is refused before connecting: ${parameter}`, async () => {
      const url = `postgres://postgres@127.0.0.1:5432/postgres?${parameter}`
      const { code, stderr } = await cli(['list'], { DATABASE_URL: url, PGLITE_DATA_DIR: '' })
      expect(code).toBe(2)
      expect(stderr).toMatch(
        new RegExp(`${parameter.split('=')[0]} in DATABASE_URL .*whole number`),
      )
      expect(stderr).not.toMatch(/^Database:/m)
    })
  }
  // Hostile review (of f8f189d, F8): a bound too long was refused with "give a longer bound".
  it('is refused, too long, naming the range it must be in', async () => {
    const url = 'postgres://postgres@127.0.0.1:5432/postgres?query_timeout=2147483648'
    const { code, stderr } = await cli(['list'], { DATABASE_URL: url, PGLITE_DATA_DIR: '' })
    expect(code).toBe(2)
    expect(stderr).toContain('expected a whole number from 1 to 999999999')
    expect(stderr).not.toContain('longer bound')
  })
})

// The driver reads the files that sslcert, sslkey and sslrootcert name while it parses the URL:
// one it cannot read is a path to fix, not a URL that is not valid (as it was reported before).
describe('a TLS file in DATABASE_URL that cannot be read', () => {
  for (const parameter of ['sslrootcert', 'sslcert', 'sslkey']) {
    it(`is refused before connecting, naming ${parameter} and why: ${parameter}=<missing file>`, async () => {
      const url = `postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-full&${parameter}=/nonexistent-x402/tls.pem`
      const { code, stderr } = await cli(['list'], { DATABASE_URL: url, PGLITE_DATA_DIR: '' })
      expect(code).toBe(2)
      expect(stderr).toContain(
        `${parameter} in DATABASE_URL names a file that cannot be read (ENOENT: no such file or directory).`,
      )
      expect(stderr).not.toContain('not a valid URL')
      expect(stderr).not.toMatch(/^Database:/m)
    })
  }
})

// The driver reads those files with a blocking read while it parses the URL: a FIFO would hang
// every command before any bound applies, and /dev/zero would read until memory runs out. Such a
// parameter is refused before the driver reads it. Each run is a child process under a bound
// (a blocking read would hang the test's own worker), and must end by exiting, not by the kill.
describe.skipIf(process.platform === 'win32')(
  'a TLS file in DATABASE_URL that is not a regular file, or is too large',
  () => {
    const folder = mkdtempSync(join(tmpdir(), 'x402-tls-file-'))
    afterAll(() => rmSync(folder, { recursive: true, force: true }))
    const fifo = join(folder, 'fifo.pem')
    const huge = join(folder, 'huge.pem')
    const linkToFifo = join(folder, 'link.pem')
    const empty = join(folder, 'empty.pem')
    writeFileSync(empty, '')
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0)
    symlinkSync(fifo, linkToFifo)
    writeFileSync(huge, '')
    truncateSync(huge, 2 * 1024 * 1024)

    it.each([
      ['sslrootcert', fifo, 'a FIFO, not a regular file'],
      ['sslkey', fifo, 'a FIFO, not a regular file'],
      ['sslcert', linkToFifo, 'a FIFO, not a regular file'],
      ['sslrootcert', '/dev/zero', 'a device, not a regular file'],
      ['sslrootcert', huge, 'a file of 2097152 bytes'],
      ['sslrootcert', folder, 'a folder, not a regular file'],
      // Review revm M4: /proc's files say they are empty, and some never end (/proc/self/pagemap
      // grew the read by 300 MB/s); no certificate or key is empty.
      ['sslrootcert', empty, 'an empty file'],
      ['sslkey', '/proc/self/status', 'an empty file'],
    ])(
      'is refused before the driver reads it: %s=%s',
      async (parameter, path, reason) => {
        const url = `postgres://postgres:Hunter2Secret@127.0.0.1:5432/postgres?sslmode=require&${parameter}=${path}`
        const { code, stdout, stderr } = await cli(
          ['list'],
          { DATABASE_URL: url, PGLITE_DATA_DIR: '' },
          undefined,
          15_000,
        )
        expect(stderr).not.toContain('the test killed the command')
        expect(code).toBe(2)
        expect(stderr).toContain(`${parameter} in DATABASE_URL names ${reason}`)
        expect(stderr).toContain(`Point ${parameter} at the`)
        expect(`${stdout}\n${stderr}`).not.toContain('Hunter2Secret')
        expect(stderr).not.toMatch(/^Database:/m)
      },
      20_000,
    )

    it("is accepted when it is a regular file of a certificate's size, or a link to one", async () => {
      const { checkConnectionString } = await import('../src/connection/connection-string.js')
      const pem = join(folder, 'root.pem')
      writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')
      const link = join(folder, 'root-link.pem')
      symlinkSync(pem, link)
      for (const file of [pem, link]) {
        expect(() =>
          checkConnectionString(
            `postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert=${file}`,
            'DATABASE_URL',
          ),
        ).not.toThrow()
      }
    })
  },
)

// libpq's URLs may name the host, and the password, in the query string; the driver's own parser
// (pg-connection-string) reads them, and so must the checks and the messages.
describe('a URL whose host is in the query string', () => {
  it('is accepted, and shown by its host and port, never its password', async () => {
    const { checkConnectionString } = await import('../src/connection/connection-string.js')
    const { describeDatabaseTarget } = await import('../src/connection/database-target.js')
    const { explainTimeout } = await import('../src/connection/server-client-config.js')
    const inQuery = 'postgres:///db?host=somehost&password=Hunter2Secret'
    const socket = 'postgresql://user@/db?host=/var/run/postgresql'
    for (const url of [inQuery, socket])
      expect(() => checkConnectionString(url, 'DATABASE_URL')).not.toThrow()
    expect(describeDatabaseTarget({ kind: 'postgres', connectionString: inQuery })).toBe(
      'PostgreSQL at somehost:5432/db',
    )
    expect(describeDatabaseTarget({ kind: 'postgres', connectionString: socket })).toBe(
      'PostgreSQL at /var/run/postgresql:5432/db',
    )
    const timedOut = explainTimeout(new Error('timeout expired'), inQuery) as Error
    expect(timedOut.message).toContain('Could not connect to somehost:5432:')
    expect(timedOut.message).not.toContain('Hunter2Secret')
  })

  // Review N10-1: a key or a password put where the database's name or the host goes was
  // printed whole on every run's Database: line. A database's name is shown where it plainly is
  // a word (as a folder's is); a host, which clouds make of random ids, where it is not shaped
  // like a key.
  it.each([
    [
      'postgres://u@db.abcdefghijklmnopqrst.supabase.co:5432/x402_jobs_production',
      'PostgreSQL at db.abcdefghijklmnopqrst.supabase.co:5432/x402_jobs_production',
    ],
    [
      'postgres://u@dpg-ch1ckj2ufr2oc6ae6fbg-a.oregon-postgres.render.com/pk_lookup',
      'PostgreSQL at dpg-ch1ckj2ufr2oc6ae6fbg-a.oregon-postgres.render.com:5432/pk_lookup',
    ],
    [
      'postgres://u@p.vbjrfujv5beutaoelw725gvi3i.db.postgresbridge.com/rk_reporting',
      'PostgreSQL at p.vbjrfujv5beutaoelw725gvi3i.db.postgresbridge.com:5432/rk_reporting',
    ],
    ['postgres://u@sk-prod.example.com/app', 'PostgreSQL at sk-prod.example.com:5432/app'],
    [
      'postgres://u@127.0.0.1:5432/x402_test_qwertyuiopas',
      'PostgreSQL at 127.0.0.1:5432/x402_test_qwertyuiopas',
    ],
    ['postgres://u@[::1]:6543/postgres', 'PostgreSQL at ::1:6543/postgres'],
  ])('shows a plain database name and host: %s', async (url, shown) => {
    const { describeDatabaseTarget } = await import('../src/connection/database-target.js')
    expect(describeDatabaseTarget({ kind: 'postgres', connectionString: url })).toBe(shown)
  })

  const KEY = `sk-or-v1-${'0f'.repeat(32)}`
  it.each([
    [`postgres://u@127.0.0.1/${KEY}`, KEY],
    [`postgres://u@127.0.0.1/${'aZ9'.repeat(8)}`, 'aZ9aZ9aZ9'],
    [`postgres:///db?host=sk-or-v1-${'ab12'.repeat(8)}`, 'sk-or-v1-'],
    ['postgres://u@127.0.0.1/Sp3c!al', 'Sp3c!al'],
    ['postgres://u@127.0.0.1/hunter2', 'hunter2'],
    ['postgres://u@127.0.0.1/Summer2024', 'Summer2024'],
    ['postgres://u@127.0.0.1/0f1e2d3c4b5a6978', '0f1e2d3c4b5a6978'],
    [
      'postgres://u@127.0.0.1/3b241101-e2bb-4255-8caf-4136c566a962',
      '3b241101-e2bb-4255-8caf-4136c566a962',
    ],
    [`postgres://u@eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.x/db`, 'eyJhbGciOiJIUzI1NiJ9'],
  ])('hides a database name or a host shaped like a key: %s', async (url, secret) => {
    const { describeDatabaseTarget } = await import('../src/connection/database-target.js')
    const line = describeDatabaseTarget({ kind: 'postgres', connectionString: url })
    expect(line).not.toContain(secret)
    expect(line).toContain('not shown')
  })

  // What the driver and the server say back names the host and the database too.
  it.each([
    [`getaddrinfo ENOTFOUND ${KEY}.invalid`, KEY],
    [`getaddrinfo EAI_AGAIN ${KEY}.invalid`, KEY],
    [`database "${KEY}" does not exist`, KEY],
    ['database "Summer2024" does not exist', 'Summer2024'],
    [
      'no pg_hba.conf entry for host "10.0.0.1", user "u", database "hunter2", no encryption',
      'hunter2',
    ],
    // The second hostile review: the server does not double a quote inside a name, and a host
    // may hold a space; a missing socket's folder is named whole.
    [`database ""${KEY}" does not exist`, KEY],
    [`database "x" ${KEY}" does not exist`, KEY],
    ['role "x"Summer2024" does not exist', 'Summer2024'],
    [
      `no pg_hba.conf entry for host "10.0.0.1", user "u", database "x", database "${KEY}", no encryption`,
      KEY,
    ],
    [`password authentication failed for user "x" ${KEY}"`, KEY],
    [`getaddrinfo ENOTFOUND x ${KEY}`, KEY],
    [`connect ENOENT /tmp/s/${KEY}/.s.PGSQL.5432`, KEY],
  ])('hides them in the answer of the driver or the server too: %s', async (reason, secret) => {
    const { cannotReachDatabase } = await import('../src/connection/unreachable.js')
    const message = cannotReachDatabase(reason)
    expect(message).not.toContain(secret)
    expect(message).toContain('not shown')
  })

  it('hides them where the server asks for a password the URL does not have', async () => {
    const { serverConnectionConfig } = await import('../src/connection/server-password.js')
    const config = serverConnectionConfig(`postgresql://app@/app?host=/tmp/${KEY}`, {
      PGPASSFILE: '/nonexistent/x402-pgpass',
    })
    const password = config.password as (parameters: object) => Promise<string>
    const refusal = await password({ user: 'app', host: `/tmp/${KEY}`, port: 5432 }).then(
      () => '',
      (error: Error) => error.message,
    )
    expect(refusal).toContain('The password is missing')
    expect(refusal).not.toContain(KEY)
  })

  it.each([
    ['postgres:///db?host=somehost&password=Hunter2Secret&connect_timeout=0', 'connect_timeout'],
    ['postgresql://user@/db?host=/var/run/postgresql&query_timeout=0', 'query_timeout'],
  ])('has its bounds checked: %s', async (url, bound) => {
    const { checkConnectionString } = await import('../src/connection/connection-string.js')
    expect(() => checkConnectionString(url, 'DATABASE_URL')).toThrow(
      `${bound} in DATABASE_URL is "0", expected a whole number from 1 to 999999999`,
    )
    try {
      checkConnectionString(url, 'DATABASE_URL')
    } catch (error) {
      expect((error as Error).message).not.toContain('Hunter2Secret')
    }
  })
})

// A user part that is a password where the user name was forgotten (postgres://secret@host): a
// server that asks for no password (trust, peer, cert) answers that no such role exists, naming
// it. The message shows it as the module's own messages do, by its length.
describe.skipIf(!process.env.TEST_DATABASE_URL)(
  'a connection string whose user part is a password',
  () => {
    it('is not echoed through the server’s refusal', async () => {
      const server = new URL(process.env.TEST_DATABASE_URL!)
      const { code, stdout, stderr } = await cli(['list'], {
        DATABASE_URL: `postgres://Sup3rS3cretPassw0rd@${server.host}/postgres`,
        PGLITE_DATA_DIR: '',
      })
      const output = `${stdout}\n${stderr}`
      expect(code).toBe(1)
      expect(output).not.toContain('Sup3rS3cretPassw0rd')
      expect(output).toMatch(/\(19 characters, not shown\)/)
    })
  },
)

// Review revo O3: a connection string (or a key) put in PGLITE_DATA_DIR by mistake was printed
// whole on the Database: line, and became the name of a folder that git lists.
describe('PGLITE_DATA_DIR holding a URL or a key', () => {
  it.each([
    'postgres://app:S3cretPassw0rd@db.example.com:5432/postgres',
    `sk-or-v1-${'0123456789abcdef'.repeat(4)}`,
    // Review revp P4: without a scheme, in libpq's key=value form, a JWT, a leading space.
    'app:S3cretPassw0rd@db.example.com:5432/postgres',
    'host=db.example.com password=S3cretPassw0rd',
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.S3cretPassw0rdSignature',
    ' postgres://app:S3cretPassw0rd@db.example.com:5432/postgres',
  ])('is refused without being shown, and nothing is created: %#', async (value) => {
    // The command runs in the repository: a relative folder would be made there.
    const made = join(fileURLToPath(new URL('..', import.meta.url)), value.split('/')[0]!)
    try {
      const { code, stdout, stderr } = await cli(['list'], {
        PGLITE_DATA_DIR: value,
      })
      expect(code).toBe(2)
      expect(`${stdout}\n${stderr}`).not.toContain(value.slice(10, 30))
      expect(stderr).toContain('PGLITE_DATA_DIR holds')
      expect(existsSync(made)).toBe(false)
    } finally {
      rmSync(made, { recursive: true, force: true })
    }
  })
})

describe('PGLITE_DATA_DIR naming a folder', () => {
  it.each(['./data/pk_store', '/srv/rk-cache/db', '.data/pglite', 'memory://'])(
    'is taken as it is: %s',
    async (dataDir) => {
      const { resolveDatabaseTarget } = await import('../src/connection/database-target.js')
      expect(resolveDatabaseTarget({ env: { PGLITE_DATA_DIR: dataDir } })).toEqual({
        kind: 'pglite',
        dataDir,
      })
    },
  )
})

// Review revq Q3: a denylist of secret shapes kept missing some, and each was printed whole on the
// Database: line and in every message about the folder. A folder is shown only where it plainly
// looks like a path (shownFolder); anything else is named without being shown.
const SECRET_SHAPES: [string, string][] = [
  ['sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz', 'N7UND0UgjKTVK'],
  ['0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318', '4c0883a69102937d'],
  ['PGPASSWORD=hunter2', 'hunter2'],
  ['x user:pass@host', 'user:pass'],
  [`"sk-or-v1-${'0123456789abcdef'.repeat(4)}"`, 'sk-or-v1'],
  [
    'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.S3cretSignature',
    'eyJhbGciOi',
  ],
  // Review revt F7: lower case and digits alone, and a UUID.
  ['a1b2c3d4e5f6g7h8x9', 'a1b2c3d4'],
  ['3f2a9c1e-7b4d-4e2a-9c1e-7b4d4e2a9c1e', '3f2a9c1e'],
  // Review revu R5: a short password, a long number, letters of another script with digits.
  ['hunter2', 'hunter2'],
  ['Sp3c1al.S3cr3t', 'Sp3c1al'],
  ['4111111111111111111', '41111111'],
  ['пароль12345', 'пароль'],
]

describe('PGLITE_DATA_DIR holding a secret of a shape no refusal knows', () => {
  const base = mkdtempSync(join(tmpdir(), 'x402-shown-folder-'))
  afterAll(() => rmSync(base, { recursive: true, force: true }))
  // A file where a folder is expected: the command fails at once, with Node's error quoting the
  // path, and creates nothing.
  const notAFolder = join(base, 'a-file')
  writeFileSync(notAFolder, '')

  it.each(SECRET_SHAPES)('is not shown on the Database: line: %s', async (value, secret) => {
    const { describeDatabaseTarget, resolveDatabaseTarget } =
      await import('../src/connection/database-target.js')
    const line = describeDatabaseTarget(resolveDatabaseTarget({ env: { PGLITE_DATA_DIR: value } }))
    expect(line).not.toContain(secret)
    expect(line).toContain('not shown')
  })

  it.each(SECRET_SHAPES)(
    'is not shown by a command, nor in the file system error that quotes it: %s',
    async (value, secret) => {
      const { stdout, stderr } = await cli(['latest'], {
        PGLITE_DATA_DIR: join(notAFolder, value),
      })
      expect(`${stdout}\n${stderr}`).not.toContain(secret)
      expect(stderr).toMatch(/^Database: embedded PGlite at \(not shown/m)
      expect(stderr).toContain('ENOTDIR')
    },
  )

  it('is not shown in the refusal of a folder others may write, whose advice names the variable', async () => {
    const [value, secret] = SECRET_SHAPES[0]!
    const dataDir = join(base, value)
    mkdirSync(dataDir)
    chmodSync(dataDir, 0o777)
    const { code, stdout, stderr } = await cli(['latest'], {
      PGLITE_DATA_DIR: dataDir,
    })
    expect(code).not.toBe(0)
    expect(`${stdout}\n${stderr}`).not.toContain(secret)
    expect(stderr).toContain('has mode 0777')
    expect(stderr).toContain('chmod 700 "$PGLITE_DATA_DIR"')
  })

  it('is not shown in the refusal of a lock file that is a symbolic link', async () => {
    const [value, secret] = SECRET_SHAPES[1]!
    const dataDir = join(base, value)
    mkdirSync(dataDir, { mode: 0o700 })
    symlinkSync('/dev/null', join(dataDir, 'x402-db.lock'))
    const { code, stdout, stderr } = await cli(['latest'], {
      PGLITE_DATA_DIR: dataDir,
    })
    expect(code).not.toBe(0)
    expect(`${stdout}\n${stderr}`).not.toContain(secret)
    expect(stderr).toContain('is a symbolic link, not a lock file')
  })

  it('is not shown by db:advise, which finds no embedded database there', async () => {
    const [value, secret] = SECRET_SHAPES[3]!
    const { code, stdout, stderr } = await cli(
      [],
      { PGLITE_DATA_DIR: join(base, 'absent', value) },
      'src/cli/advise.ts',
    )
    expect(code).not.toBe(0)
    expect(`${stdout}\n${stderr}`).not.toContain(secret)
    expect(stderr).toContain('there is no embedded database at (not shown')
  })

  it.each(['.data/pglite', '/tmp/x402 test/db', '~/x402-jobs/.data/pglite+v2', 'memory://'])(
    'a plain folder is still shown: %s',
    async (dataDir) => {
      const { describeDatabaseTarget, resolveDatabaseTarget } =
        await import('../src/connection/database-target.js')
      expect(
        describeDatabaseTarget(resolveDatabaseTarget({ env: { PGLITE_DATA_DIR: dataDir } })),
      ).toBe(`embedded PGlite at ${dataDir}`)
    },
  )

  it('a plain folder (a mkdtemp one, one with a space) is still shown by a command', async () => {
    for (const dataDir of [join(notAFolder, 'db'), join(notAFolder, 'x402 test', 'db')]) {
      const { stderr } = await cli(['latest'], { PGLITE_DATA_DIR: dataDir })
      expect(stderr).toContain(`Database: embedded PGlite at ${dataDir}\n`)
      expect(stderr).toContain(
        `folder ${dataDir} could not be made: ${dataDir} failed with ENOTDIR`,
      )
    }
  })
})
