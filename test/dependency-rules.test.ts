import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

// The dependency rules (.dependency-cruiser.cjs), run by `npm run lint:deps` in CI: they pass on
// the tree as it is, and fail on a copy of it with a cycle or an upward import added.
const root = join(import.meta.dirname, '..')
const depcruise = join(root, 'node_modules', '.bin', 'depcruise')
const copies: string[] = []

function cruise(cwd: string) {
  return spawnSync(depcruise, ['src', '--config', '.dependency-cruiser.cjs'], {
    cwd,
    encoding: 'utf8',
  })
}

function copyOfTheTree(): string {
  const dir = mkdtempSync(join(root, '.scratch-deps-'))
  copies.push(dir)
  cpSync(join(root, 'src'), join(dir, 'src'), { recursive: true })
  for (const file of ['tsconfig.json', '.dependency-cruiser.cjs', 'package.json'])
    cpSync(join(root, file), join(dir, file))
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  return dir
}

/**
 * One copy of the tree with every fault the tests below look for (a cycle, an upward import, a
 * migration importing the module, a folder outside the layer list), cruised once: a run of
 * depcruise costs 3 CPU-s, and each test checks that its rule reports its fault.
 */
let faulty: ReturnType<typeof cruise> | undefined
function cruiseFaultyTree(): ReturnType<typeof cruise> {
  if (faulty) return faulty
  const dir = copyOfTheTree()
  // A cycle: query-error.ts imports sql-state.ts.
  writeFileSync(
    join(dir, 'src/connection/sql-state.ts'),
    "import { QueryError } from './query-error.js'\nexport const probe = QueryError\n",
    { flag: 'a' },
  )
  // An upward import, and a migration importing the module.
  writeFileSync(join(dir, 'src/connection/sql-state.ts'), "import '../migrator/history.js'\n", {
    flag: 'a',
  })
  writeFileSync(
    join(dir, 'src/migrations/002_add_claude_integration.ts'),
    "import '../connection/sql-state.js'\n",
    { flag: 'a' },
  )
  // A folder outside the layer list, as a bridge from a lower layer to a higher one.
  mkdirSync(join(dir, 'src/util'))
  writeFileSync(
    join(dir, 'src/util/bridge.ts'),
    "export { createDb } from '../connection/create-db.js'\n",
  )
  writeFileSync(join(dir, 'src/types/upward.ts'), "import '../util/bridge.js'\n")
  faulty = cruise(dir)
  return faulty
}

afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true })
})

// dependency-cruiser 18 needs Node.js 22 (its engines): on 20 this file is skipped, and CI runs
// it on 22.
const nodeMajor = Number(process.versions.node.split('.')[0])
const skipReason =
  nodeMajor < 22 ? `dependency-cruiser needs Node.js 22; this is ${process.version}` : undefined

describe.skipIf(skipReason)(
  `import directions${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('the tree passes', () => {
      const result = cruise(root)
      expect(result.stdout + result.stderr).toContain('no dependency violations found')
      expect(result.status).toBe(0)
    })

    it('fails on an import cycle', () => {
      const result = cruiseFaultyTree()
      expect(result.status).not.toBe(0)
      expect(result.stdout).toMatch(/error no-circular: src\/connection\/query-error\.ts/)
    })

    it('fails on an import from a lower layer to a higher one, and on a migration importing the module', () => {
      const result = cruiseFaultyTree()
      expect(result.status).not.toBe(0)
      expect(result.stdout).toMatch(
        /error no-upward-from-connection: src\/connection\/sql-state\.ts → src\/migrator\/history\.ts/,
      )
      expect(result.stdout).toMatch(
        /error migrations-import-only-kysely: src\/migrations\/002_add_claude_integration\.ts/,
      )
    })

    it('fails on a folder that is not in the layer list, which would escape every direction rule', () => {
      const result = cruiseFaultyTree()
      expect(result.status).not.toBe(0)
      expect(result.stdout).toMatch(/error no-unlisted-folder: src\/util\/bridge\.ts/)
      expect(result.stdout).toMatch(
        /error no-import-of-unlisted-folder: src\/types\/upward\.ts → src\/util\/bridge\.ts/,
      )
    })

    it('reports no other rule on the faulty copy than the ones its faults break', () => {
      const rules = new Set(
        [...cruiseFaultyTree().stdout.matchAll(/error ([\w-]+):/g)].map((match) => match[1]),
      )
      expect([...rules].sort()).toEqual(
        [
          'migrations-import-only-kysely',
          'no-circular',
          'no-import-of-unlisted-folder',
          'no-unlisted-folder',
          'no-upward-from-connection',
        ].sort(),
      )
    })
  },
)
