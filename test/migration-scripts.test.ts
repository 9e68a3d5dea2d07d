import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { scriptFolderDifferences } from '../src/export/migration-scripts.js'

// docs:migrations --check fails on what scriptFolderDifferences finds: a file whose text is not
// the export's, a missing file, and a file no migration exports.

const folders: string[] = []
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true })
})

function folderWith(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), 'x402-migration-docs-'))
  folders.push(folder)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(folder, name), text)
  return folder
}

const SCRIPTS = new Map([
  ['001_a.up.sql', 'BEGIN;\nCREATE TABLE a ();\nCOMMIT;\n'],
  ['001_a.down.sql', 'BEGIN;\nDROP TABLE a;\nCOMMIT;\n'],
])

describe('the exported scripts kept in a folder', () => {
  it('are current when every file holds exactly its export', () => {
    expect(scriptFolderDifferences(folderWith(Object.fromEntries(SCRIPTS)), SCRIPTS)).toEqual({
      stale: [],
      extra: [],
    })
  })

  it('are stale where a file differs by one character, or is missing', () => {
    const folder = folderWith({ '001_a.up.sql': 'BEGIN;\nCREATE TABLE a ();\nCOMMIT;' })
    expect(scriptFolderDifferences(folder, SCRIPTS)).toEqual({
      stale: ['001_a.up.sql', '001_a.down.sql'],
      extra: [],
    })
  })

  it('name a script that no migration exports, and ignore files that are not SQL', () => {
    const folder = folderWith({
      ...Object.fromEntries(SCRIPTS),
      '000_gone.up.sql': 'SELECT 1;',
      'notes.txt': '',
    })
    expect(scriptFolderDifferences(folder, SCRIPTS)).toEqual({
      stale: [],
      extra: ['000_gone.up.sql'],
    })
  })

  it('are all stale where the folder does not exist', () => {
    expect(scriptFolderDifferences(join(tmpdir(), 'x402-no-such-folder'), SCRIPTS).stale).toEqual([
      '001_a.up.sql',
      '001_a.down.sql',
    ])
  })
})
