import { parseArgs } from 'node:util'

/**
 * Reads `--name <whole number>` options from the command line, each with its default, and
 * rejects anything else with a message that lists what the benchmark takes. Digits may be
 * grouped with `_` or `,` (`--rows 5_000_000`).
 *
 * @example
 * ```ts
 * const { rows } = wholeNumberOptions('lock-stall', { rows: 1_000_000 }) // argv: --rows 100000
 * ```
 */
export function wholeNumberOptions<Name extends string>(
  bench: string,
  defaults: Record<Name, number>,
  argv: string[] = process.argv.slice(2),
): Record<Name, number> {
  const names = Object.keys(defaults) as Name[]
  const usage = `usage: npm run bench -- ${bench} ${names.map((name) => `[--${name} ${defaults[name]}]`).join(' ')}`
  let values: Record<string, string | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }))
  } catch (error) {
    throw new Error(`${(error as Error).message}. ${usage}`)
  }
  return Object.fromEntries(
    names.map((name) => {
      const given = values[name]?.replace(/[_,]/g, '')
      if (given === undefined) return [name, defaults[name]]
      if (!/^\d+$/.test(given) || Number(given) === 0) {
        throw new Error(`--${name} is "${values[name]}", expected a whole number above 0. ${usage}`)
      }
      return [name, Number(given)]
    }),
  ) as Record<Name, number>
}
