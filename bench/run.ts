/**
 * `npm run bench`: runs every bench/*.bench.ts in turn, each in a process of its own with its
 * default options. `npm run bench -- <name> [options]` runs bench/<name>.bench.ts alone with
 * those options. Exits with 1 if a benchmark failed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url))
const SUFFIX = '.bench.ts'

let running: ChildProcess | undefined

function runBench(file: string, args: string[]): Promise<number> {
  console.error(`\n=== ${file}${args.length > 0 ? ` ${args.join(' ')}` : ''}`)
  // Node with tsx's loader, with no tsx process in between, so that a signal passed on arrives.
  const child = spawn(process.execPath, ['--import', 'tsx', `${BENCH_DIR}${file}`, ...args], {
    stdio: 'inherit',
  })
  running = child
  return new Promise((resolve, reject) =>
    child.on('error', reject).on('close', (code) => resolve(code ?? 1)),
  )
}

async function main([name, ...args]: string[]): Promise<number> {
  const benches = readdirSync(BENCH_DIR)
    .filter((file) => file.endsWith(SUFFIX))
    .sort()
  if (name === undefined) {
    const failed: string[] = []
    for (const file of benches) if ((await runBench(file, [])) !== 0) failed.push(file)
    if (failed.length > 0) console.error(`\nFailed: ${failed.join(', ')}`)
    return failed.length > 0 ? 1 : 0
  }
  const file = name.endsWith(SUFFIX) ? name : `${name}${SUFFIX}`
  if (!benches.includes(file)) {
    const known = benches.map((bench) => bench.slice(0, -SUFFIX.length)).join(', ')
    console.error(
      `No benchmark "${name}" in bench/. Expected one of: ${known}; usage: npm run bench [-- <name> [options]]`,
    )
    return 1
  }
  return runBench(file, args)
}

// Ctrl-C reaches the benchmark directly (same process group): it drops its databases and
// exits, and this runner then exits with its code. A SIGTERM sent to the runner alone is passed on.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => running?.kill('SIGTERM'))
main(process.argv.slice(2)).then((code) => process.exit(code))
