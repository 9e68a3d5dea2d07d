import { lstatSync, readdirSync, readFileSync, realpathSync, type Stats } from 'node:fs'
import { join } from 'node:path'

import { isPlainFolder, shownFolder, shownEntry, shownShortOnTerminal } from './shown-argument.js'
import { errorCode } from './sql-state.js'

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
  if (problem === undefined) return assertGroupCannotWrite(folder, stat)
  const owned = problem.startsWith('is owned')
  // Whoever chose the folder's name (a link in a shared folder, a key in PGLITE_DATA_DIR by
  // mistake) chose what is printed: shown only where it plainly looks like a path (review revj
  // J10, revq Q3), and quoted for the shell in the advice.
  const shown = shownFolder(folder)
  throw new Error(
    `The embedded database folder ${shown} ${problem}, and was not opened: what another user can ` +
      'write there (its configuration, its data) the database would run with. It must be owned by the user ' +
      'this process runs as, with mode 0700 or 0750, as PostgreSQL requires of a data directory. ' +
      (owned
        ? 'Point PGLITE_DATA_DIR (or dataDir) at a folder you created; if this one was made for you, have its owner or an ' +
          'administrator check its contents and give it to you (chown).'
        : `If you made it, ${chmod700(folder)} (its contents are checked when it is opened next); ` +
          'otherwise point PGLITE_DATA_DIR (or dataDir) at a folder you created.'),
  )
}

/**
 * Where the group may pass through the folder (0750, 0710), refuses a process whose umask lets
 * the group write what it makes: PGlite writes its files with the process's umask (PostgreSQL
 * sets its own), so under umask 002 every file would be the group's to change, and the next
 * open would refuse them all (review revk K3). Refused before anything is written there.
 */
function assertGroupCannotWrite(folder: string, stat: Stats): void {
  const umask = process.umask()
  if ((stat.mode & 0o010) === 0 || (umask & 0o020) !== 0) return
  throw new Error(
    `The embedded database folder ${shownFolder(folder)} has mode 0${(stat.mode & 0o777).toString(8)}, which lets its ` +
      `group in, and this process's umask 0${umask.toString(8).padStart(3, '0')} lets the group write the files the ` +
      'database makes there: a member of that group could change its configuration or its data. It was not opened, and ' +
      `nothing was written. ${chmod700(folder)} (only you may enter it), or start the ` +
      'process with umask 022 (or 027).',
  )
}

/**
 * Refuses an embedded database folder (by its real path, `stat` its stat) that holds, at any
 * depth, an entry another user may have written: one owned by another user, a symbolic link
 * (which leads where the check does not look), a file with another name (a hard link, made while
 * the folder let someone in: review revl F3), one other users may write, or, where the folder
 * lets its group through (0750, 0710), one its group may write. The folder's own mode is no proof of its
 * contents: a file another user put there, or opened, while the folder was open to them stays
 * theirs, and a descriptor they kept writes it still once the folder is 0700 (review revj J4).
 * A group-writable entry of a 0700 folder is accepted: PGlite makes every file so under umask 002.
 * `skip` leaves out entries that have a rule of their own (the folder's lock files).
 *
 * @example
 * ```ts
 * assertPrivateDataContents(folder, statSync(folder), (entry) => entry.startsWith('x402-db.lock'))
 * ```
 */
export function assertPrivateDataContents(
  folder: string,
  stat: Stats,
  skip: (entry: string) => boolean,
): void {
  // The group reaches a file by its name where it may pass through the folder (0750, 0710).
  const forbidden = 0o002 | (stat.mode & 0o010 ? 0o020 : 0)
  const problems: string[] = []
  let entries: string[]
  try {
    entries = (readdirSync(folder, { recursive: true }) as string[]).sort()
  } catch (error) {
    entries = []
    problems.push(`its contents could not be listed (${errorCode(error) ?? 'error'})`)
  }
  for (const entry of entries) {
    if (skip(entry)) continue
    let problem: string | undefined
    try {
      const entryStat = lstatSync(join(folder, entry))
      problem = entryStat.isSymbolicLink()
        ? 'is a symbolic link, which leads where this check does not look'
        : !entryStat.isDirectory() && entryStat.nlink > 1
          ? `has ${entryStat.nlink} names (hard links): it is written through the others, where this check does not look`
          : notPrivate(entryStat, forbidden)
    } catch (error) {
      // Gone meanwhile, or a name the listing could not spell: what cannot be looked at is refused.
      problem = `could not be looked at (${errorCode(error) ?? 'error'})`
    }
    if (problem !== undefined) problems.push(`${shownEntry(entry)} ${problem}`)
  }
  if (problems.length === 0) return
  const shown = problems.slice(0, SHOWN_ENTRIES)
  throw new Error(
    `The embedded database folder ${shownFolder(folder)} holds what another user may have written, and was not ` +
      `opened: ${shown.join('; ')}${problems.length > shown.length ? `; and ${problems.length - shown.length} more` : ''}. ` +
      'The database would run with what is written there (its configuration, its data), and a file of another user, or one ' +
      'they opened while they could, they may write still, whatever the modes are now. Leave the folder as it is and point ' +
      'PGLITE_DATA_DIR (or dataDir) at a new folder you created; have an administrator check these entries, and how they ' +
      'came to be, before the data is used again.',
  )
}

/** The most entries a refusal of {@link assertPrivateDataContents} names. */
const SHOWN_ENTRIES = 5

/**
 * The advice to chmod `folder` (by its real path): the command with the folder quoted for the shell
 * where shownFolder shows it; else with "$PGLITE_DATA_DIR" where that variable names it, or in words.
 */
function chmod700(folder: string): string {
  if (isPlainFolder(folder)) return `chmod 700 ${shellQuoted(folder)}`
  const named = process.env.PGLITE_DATA_DIR
  let fromVariable = false
  try {
    fromVariable = named !== undefined && named !== '' && realpathSync(named) === folder
  } catch {
    // Gone, or not this folder: said in words.
  }
  return fromVariable ? 'chmod 700 "$PGLITE_DATA_DIR"' : 'chmod 700 that folder'
}

/** `path` as a shell reads it back: as it is where it holds only plain characters, else in single quotes. */
function shellQuoted(path: string): string {
  return /^[\w./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`
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
