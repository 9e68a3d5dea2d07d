/*
 * What a message may show of a value that a user passed (an argument, an environment
 * variable): every layer that words a message about one shows it through here, so that a
 * secret passed by mistake, or a huge value, appears only as its length.
 */

/**
 * Whether an argument may appear in a message as it was given: short, plain words, nothing that
 * looks like a key or a token (a long run of letters and digits, a key's prefix). Anything else
 * may be a secret passed by mistake, or is too long to be useful, and is shown by its length.
 *
 * @example
 * ```ts
 * mayShowArgument('ten') // true
 * mayShowArgument('sk-or-v1-0123456789abcdef…') // false
 * ```
 */
export function mayShowArgument(value: string): boolean {
  return (
    value.length <= 40 &&
    /^[\w.,:=+/-]*$/.test(value) &&
    !/[A-Za-z0-9]{17,}/.test(value) &&
    !/^-*(sk|pk|rk)[-_]/i.test(value)
  )
}

/**
 * An argument as a message shows it: quoted where {@link mayShowArgument} allows it, else only
 * its length.
 *
 * @example
 * ```ts
 * describeArgument('ten') // '"ten"'
 * describeArgument('a'.repeat(100_000)) // '(100000 characters, not shown)'
 * ```
 */
export function describeArgument(value: string): string {
  return mayShowArgument(value) ? `"${value}"` : `(${value.length} characters, not shown)`
}
