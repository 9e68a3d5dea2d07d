import { describe, expect, it } from 'vitest'

import { cli } from './support/cli.js'

// Issue 13 #9, "no secret in any output": a password holding an unencoded "#" or "?" ends the
// host part of the URL early, and the part of the password before it was printed as the port
// ("Database: PostgreSQL at postgres:2024/(default database)"). Such a string is refused without
// being shown, asking for percent-encoding, as one with "/" already was.

describe('a password with an unencoded "#" or "?" in DATABASE_URL', () => {
  for (const url of [
    'postgres://postgres:2024#Hunter2Secret@127.0.0.1:5432/db',
    'postgres://postgres:2024?Hunter2Secret@127.0.0.1:5432/db',
  ]) {
    it(`is refused, and no part of the password is printed: ${url}`, async () => {
      const { code, stdout, stderr } = await cli(['list'], { DATABASE_URL: url, PGLITE_DATA_DIR: '' })
      const output = `${stdout}\n${stderr}`
      expect(output).not.toContain('2024')
      expect(output).not.toContain('Hunter2Secret')
      expect(code).toBe(1)
      expect(output).toContain('Percent-encode the password')
    })
  }
})
