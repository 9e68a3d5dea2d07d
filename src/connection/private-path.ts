import { readFileSync, type Stats } from 'node:fs'

import { shownShortOnTerminal } from './shown-argument.js'

/**
 * What keeps `stat` (a file or folder) from being this user's alone, or undefined where it is:
 * owned by another user (where the platform has uids), or a mode with any of the bits of
 * `forbidden` set. One rule for what the module trusts on disk: its cache key (0o077: a secret,
 * for no one else) and an embedded database folder (0o027: PostgreSQL's rule for a data
 * directory, 0700 or 0750).
 *
 * @example
 * ```ts
 * notPrivate(statSync('.data/pglite'), 0o027) // undefined, or 'has mode 0777: …'
 * ```
 */
export function notPrivate(stat: Stats, forbidden: number): string | undefined {
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid)
    return `is owned by user ${userName(stat.uid)} (uid ${stat.uid}), not by ${userName(uid)} (uid ${uid}), the user this process runs as`
  const mode = stat.mode & 0o777
  if ((mode & forbidden) !== 0)
    return `has mode 0${mode.toString(8)}: ${[
      mode & 0o020 & forbidden ? 'its group may write it' : '',
      mode & 0o050 & forbidden ? 'its group may read it' : '',
      mode & 0o007 & forbidden ? 'other users may use it' : '',
    ]
      .filter(Boolean)
      .join(', ')}`
  return undefined
}

/**
 * Refuses an embedded database folder (`stat` of `folder`, by its real path) as PostgreSQL
 * refuses a data directory: one of another user, or one its group may write or others may use
 * (it accepts 0700 and 0750). In a folder anyone may write, anyone may put a postgresql.auto.conf
 * (session_replication_role = replica turns every trigger and foreign key off) or change the
 * data itself, which the module would then open, migrate and trust.
 *
 * @example
 * ```ts
 * assertPrivateDataFolder('/home/me/app/.data/pglite', statSync('/home/me/app/.data/pglite'))
 * ```
 */
export function assertPrivateDataFolder(folder: string, stat: Stats): void {
  const problem = notPrivate(stat, 0o027)
  if (problem === undefined) return
  const owned = problem.startsWith('is owned')
  throw new Error(
    `The embedded database folder ${folder} ${problem}, and was not opened: what another user can ` +
      'write there (its configuration, its data) the database would run with. It must be owned by the user ' +
      'this process runs as, with mode 0700 or 0750, as PostgreSQL requires of a data directory. ' +
      (owned
        ? 'Point PGLITE_DATA_DIR (or dataDir) at a folder you created; if this one was made for you, have its owner or an ' +
          'administrator check its contents and give it to you (chown).'
        : `If you made it, chmod 700 ${folder} after checking that its contents are yours; otherwise point ` +
          'PGLITE_DATA_DIR (or dataDir) at a folder you created.'),
  )
}

/**
 * The name of the user `uid`, from /etc/passwd; `#<uid>` where it has none.
 *
 * @example
 * ```ts
 * userName(65534) // 'nobody'
 * ```
 */
export function userName(uid: number): string {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((entry) => entry.split(':')[2] === String(uid))
    const name = line?.split(':')[0]
    if (name) return shownShortOnTerminal(name)
  } catch {
    // No /etc/passwd (not Unix): the number says it.
  }
  return `#${uid}`
}
