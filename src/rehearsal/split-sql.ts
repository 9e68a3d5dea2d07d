/**
 * Splits an SQL script into its statements at the semicolons that end them, leaving alone those
 * inside quotes, dollar-quoted bodies and comments. Comments between statements are dropped.
 *
 * @example
 * ```ts
 * splitSqlStatements("BEGIN; SELECT ';'; COMMIT;") // ['BEGIN', "SELECT ';'", 'COMMIT']
 * ```
 */
export function splitSqlStatements(script: string): string[] {
  const statements: string[] = []
  let current = ''
  let index = 0
  const flush = () => {
    const statement = current.trim()
    if (statement) statements.push(statement)
    current = ''
  }
  while (index < script.length) {
    const rest = script.slice(index)
    const char = script[index]!
    if (rest.startsWith('--')) {
      const end = script.indexOf('\n', index)
      index = end === -1 ? script.length : end + 1
      current += '\n'
    } else if (rest.startsWith('/*')) {
      const end = script.indexOf('*/', index + 2)
      index = end === -1 ? script.length : end + 2
      current += ' '
    } else if (char === "'" || char === '"') {
      let end = index + 1
      for (;;) {
        end = script.indexOf(char, end)
        if (end === -1)
          throw new Error(`The SQL script has an unclosed ${char} quote: ${rest.slice(0, 60)}`)
        if (script[end + 1] === char) end += 2
        else break
      }
      current += script.slice(index, end + 1)
      index = end + 1
    } else if (char === '$' && /^\$[A-Za-z_]\w*\$|^\$\$/.test(rest)) {
      const tag = /^\$(?:[A-Za-z_]\w*)?\$/.exec(rest)![0]
      const end = script.indexOf(tag, index + tag.length)
      if (end === -1) throw new Error(`The SQL script has an unclosed ${tag} body.`)
      current += script.slice(index, end + tag.length)
      index = end + tag.length
    } else if (char === ';') {
      flush()
      index++
    } else {
      current += char
      index++
    }
  }
  flush()
  return statements
}
