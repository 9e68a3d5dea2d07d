import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

import { migrations } from '../src/migrations/index.js'

// The provider lists migrations explicitly; a file that is not listed would never run.

const folder = fileURLToPath(new URL('../src/migrations/', import.meta.url))

describe('the migration registry', () => {
  it('lists every migration file in src/migrations under its file name, and nothing else', () => {
    const files = readdirSync(folder)
      .filter((file) => file.endsWith('.ts') && file !== 'index.ts')
      .map((file) => file.replace(/\.ts$/, ''))
    expect(Object.keys(migrations).sort()).toEqual(files.sort())
  })

  it('gives every migration an up and a down', () => {
    for (const [name, migration] of Object.entries(migrations)) {
      expect(typeof migration.up, name).toBe('function')
      expect(typeof migration.down, name).toBe('function')
    }
  })

  it('names migrations NNN_words, so that their order is the order of their names', () => {
    for (const name of Object.keys(migrations)) expect(name).toMatch(/^\d{3}_[a-z0-9_]+$/)
  })
})
