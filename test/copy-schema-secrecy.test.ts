import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { dumpSchema, pgDumpInvocation } from '../src/rehearsal/copy-schema.js'

// --copy-schema runs pg_dump: its arguments are visible to every user of the machine (ps).
const postgres = process.env.TEST_DATABASE_URL ? describe : describe.skip
const bin = mkdtempSync(join(tmpdir(), 'fake-pg-dump-'))
afterAll(() => rmSync(bin, { recursive: true, force: true }))

describe('pg_dump is given no password in its arguments', () => {
  it('moves the password of the URL, or of its query, to PGPASSWORD', () => {
    const inUrl = pgDumpInvocation('postgres://app:s%40cret@db.example:5432/app?sslmode=require')
    expect(inUrl.args.join(' ')).not.toMatch(/cret/)
    expect(inUrl.args.at(-1)).toBe(
      "--dbname=host='db.example' port='5432' user='app' dbname='app' sslmode='verify-full'",
    )
    expect(inUrl.env.PGPASSWORD).toBe('s@cret')
    const inQuery = pgDumpInvocation('postgres://app@db.example/app?password=hunter2')
    expect(inQuery.args.join(' ')).not.toMatch(/hunter2/)
    expect(inQuery.env.PGPASSWORD).toBe('hunter2')
  })
})

// pg_dump must reach the database the module's own connections reach: the URL is read by the
// driver's parser (pg-connection-string), not by WHATWG URL, which reads some URLs otherwise.
describe('pg_dump is given the connection as the driver reads it', () => {
  it('takes a password with a "%" that starts no escape', () => {
    const invocation = pgDumpInvocation('postgres://app:%pw@db.example:5432/app')
    expect(invocation.env.PGPASSWORD).toBe('%pw')
    expect(invocation.args.join(' ')).not.toMatch(/pw/)
  })

  it('takes an empty host with the socket folder in the query string', () => {
    const invocation = pgDumpInvocation('postgres://@/db?host=/var/run/postgresql')
    expect(invocation.args.at(-1)).toBe("--dbname=host='/var/run/postgresql' dbname='db'")
    expect(invocation.env.PGPASSWORD).toBeUndefined()
  })

  it('quotes a value as libpq reads it, and leaves out the parameters only node-postgres knows', () => {
    const invocation = pgDumpInvocation(
      "postgres://app@db/app?options=-c%20search_path%3Dit's&query_timeout=5000&application_name=a\\b",
    )
    expect(invocation.args.at(-1)).toBe(
      "--dbname=host='db' user='app' dbname='app' options='-c search_path=it\\'s' application_name='a\\\\b'",
    )
  })

  // libpq has no environment variable for sslpassword (PGSSLPASSWORD does not exist): on the
  // command line, every user of the machine would read it with ps.
  it('refuses sslpassword, without showing it, rather than put it in the arguments', () => {
    const refused = () =>
      pgDumpInvocation('postgres://app@db.example/app?sslmode=require&sslpassword=Hunter2Key')
    expect(refused).toThrow(/sslpassword.*no environment variable/)
    expect(refused).not.toThrow(/Hunter2Key/)
  })

  // libpq's keywords are case-sensitive: PASSWORD is no keyword, and was passed on as it came.
  it.each(['PASSWORD=Hunter2Key', 'Password=Hunter2Key', 'sslPassword=Hunter2Key', 'x_password='])(
    'refuses ?%s, naming the parameter, without showing its value',
    (parameter) => {
      const refused = () => pgDumpInvocation(`postgres://app@db.example/app?${parameter}`)
      const name = parameter.split('=')[0]!
      expect(refused).toThrow(new RegExp(`${name} .*Nothing was run`))
      expect(refused).not.toThrow(/Hunter2Key/)
    },
  )

  it('passes pg_dump only the libpq keywords the module knows', () => {
    const invocation = pgDumpInvocation(
      'postgres://app@db/app?sslmode=verify-full&target_session_attrs=read-write&secret_token=abc&fallback=x',
    )
    expect(invocation.args.at(-1)).toBe(
      "--dbname=host='db' user='app' dbname='app' target_session_attrs='read-write' sslmode='verify-full'",
    )
  })
})

postgres('dumpSchema when pg_dump is there but fails', () => {
  it('does not advise installing the client tools', async () => {
    const failing = mkdtempSync(join(tmpdir(), 'failing-pg-dump-'))
    writeFileSync(
      join(failing, 'pg_dump'),
      '#!/bin/sh\necho "pg_dump: error: server closed the connection" >&2\nexit 1\n',
    )
    chmodSync(join(failing, 'pg_dump'), 0o755)
    const path = process.env.PATH
    process.env.PATH = `${failing}${delimiter}${path}`
    try {
      const copying = dumpSchema(process.env.TEST_DATABASE_URL!)
      await expect(copying).rejects.toThrow(/server closed the connection/)
      await expect(copying).rejects.not.toThrow(/Install PostgreSQL's client tools/)
    } finally {
      process.env.PATH = path
      rmSync(failing, { recursive: true, force: true })
    }
  })

  it('advises installing the client tools when pg_dump is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-pg-dump-'))
    const path = process.env.PATH
    process.env.PATH = empty
    try {
      await expect(dumpSchema(process.env.TEST_DATABASE_URL!)).rejects.toThrow(
        /pg_dump was not found.*Install PostgreSQL's client tools/,
      )
    } finally {
      process.env.PATH = path
      rmSync(empty, { recursive: true, force: true })
    }
  })
})

postgres('dumpSchema runs pg_dump without the password in argv', () => {
  it('hands pg_dump the password through its environment', async () => {
    // A stand-in pg_dump that records what it was given and dumps nothing (an empty --file).
    const record = join(bin, 'record')
    writeFileSync(
      join(bin, 'pg_dump'),
      `#!/bin/sh\necho "args: $*" > ${record}\necho "password: $PGPASSWORD" >> ${record}\n` +
        'for a in "$@"; do case "$a" in --file=*) : > "${a#--file=}";; esac; done\n',
    )
    chmodSync(join(bin, 'pg_dump'), 0o755)
    const path = process.env.PATH
    process.env.PATH = `${bin}${delimiter}${path}`
    try {
      const target = new URL(process.env.TEST_DATABASE_URL!)
      target.username = target.username || 'postgres'
      target.password = 'not-in-argv'
      await dumpSchema(target.toString())
    } finally {
      process.env.PATH = path
    }
    const recorded = readFileSync(record, 'utf8')
    expect(recorded).toMatch(/^args: .*--schema-only/m)
    expect(recorded).not.toMatch(/^args: .*not-in-argv/m)
    expect(recorded).toMatch(/^password: not-in-argv$/m)
  })
})
