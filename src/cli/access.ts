/**
 * `npm run db:access`: measures who may do what with every object of the module's schemas, on a
 * scratch in-memory database built from the migrations, and writes docs/access-matrix.md.
 * `npm run db:access:check` (`db:access -- --check`) writes nothing and fails when the committed
 * file differs from what the migrations produce now, printing the lines that differ.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { ACCESS_MATRIX_FILE } from '../types/command-defaults.js'
import { type CommandSpec, runCommand, withHelp } from './run-command.js'

const spec = {
  script: 'db:access',
  summary: `measures who may do what with every object of the module's schemas, as each API role, and writes ${ACCESS_MATRIX_FILE}.`,
  options: {
    check: {
      type: 'boolean',
      description: `writes nothing; fails when ${ACCESS_MATRIX_FILE} differs (npm run db:access:check)`,
    },
  },
  notes: ['It runs on a scratch embedded database built by the migrations, never on DATABASE_URL.'],
} as const satisfies CommandSpec

/** From src/cli and from dist/cli alike, two folders up is the repository. */
const MATRIX_PATH = fileURLToPath(new URL(`../../${ACCESS_MATRIX_FILE}`, import.meta.url))

async function main(check: boolean): Promise<number> {
  // Loaded once the arguments are checked: --help and a refused argument do not wait for them.
  const { buildAccessMatrix, compareAccessMatrix } = await import('../access/access-matrix.js')
  const current = await buildAccessMatrix()
  if (!check) {
    writeFileSync(MATRIX_PATH, current)
    console.error(`Wrote ${ACCESS_MATRIX_FILE}: review its diff, and commit it with the migration.`)
    return 0
  }
  let committed: string
  try {
    committed = readFileSync(MATRIX_PATH, 'utf8')
  } catch {
    throw new Error(`${ACCESS_MATRIX_FILE} is missing. Run \`npm run db:access\` and commit it.`)
  }
  const differences = compareAccessMatrix(committed, current)
  if (differences.length === 0) {
    console.error(`${ACCESS_MATRIX_FILE} is current.`)
    return 0
  }
  console.log(differences.join('\n'))
  throw new Error(
    `${ACCESS_MATRIX_FILE} differs from the access the migrations give now (lines above: - committed, + now). ` +
      'If the change of access is intended, run `npm run db:access` and commit the file with the migration, for review.',
  )
}

runCommand(process.argv.includes('--check') ? 'db:access --check' : 'db:access', (args) =>
  withHelp(spec, args, ({ values }) => main(values.check)),
)
